import Foundation
import PluginHost
import Synchronization

/// A fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) while a plugin is loaded ends the
/// run with one line that names the plugin and its file, instead of a runtime backtrace, and
/// leaves no empty output that would block the rerun (`abandonOutput`).
///
/// The handler runs in signal context, so everything it prints is prepared beforehand as C
/// strings, and it calls only async-signal-safe functions (`write`, `unlink`, `_exit`), plus
/// `dladdr` and glibc's `backtrace` (loaded before any signal) to tell whether the faulting
/// instruction, or a caller of it (abort() is called from the plugin but runs in libc), lies in
/// the plugin's library.
enum FatalSignals {
    /// "'name' (/path/libname.so)", set by `watch(plugin:)`.
    nonisolated(unsafe) static var pluginText: UnsafeMutablePointer<CChar>?
    /// The plugin library's path, compared with `dladdr`'s file name of the faulting address.
    nonisolated(unsafe) static var pluginPath: UnsafeMutablePointer<CChar>?
    /// The trajectory being written and its PDB, set by `TrajectoryOutput`: the files
    /// themselves, or their temporary siblings when `replacedPath` is being replaced.
    nonisolated(unsafe) static var outputPath: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) static var topologyPath: UnsafeMutablePointer<CChar>?
    /// The file an `--overwrite` run replaces (left as it was when the run ends early), or nil.
    nonisolated(unsafe) static var replacedPath: UnsafeMutablePointer<CChar>?
    /// Frames appended to `outputPath` so far, and how often the writer syncs them to disk.
    nonisolated(unsafe) static var framesWritten = 0
    nonisolated(unsafe) static var syncEvery = 10
    nonisolated(unsafe) private static var installed = false
    nonisolated(unsafe) private static var alternateStack: UnsafeMutableRawPointer?
    /// Room for `backtrace` in the handler (no allocation there).
    nonisolated(unsafe) static var frames = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 64)

    /// Installs the handler (once) and remembers `plugin` for its message.
    static func watch(plugin: Plugin) {
        free(pluginText)
        free(pluginPath)
        pluginText = strdup("'\(plugin.name)' (\(plugin.path))")
        pluginPath = strdup(plugin.path)  // as passed to dlopen, which dladdr reports
        install()
    }

    /// The output files a crash must not leave behind empty (nil: none); `replacing` is the
    /// file they will replace when complete (then both are temporaries, always removed).
    static func watch(output: String?, topology: String?, replacing: String?) {
        let old = (outputPath, topologyPath, replacedPath)
        outputPath = nil  // a signal between these lines sees no output rather than a freed one
        framesWritten = 0
        topologyPath = topology.map { strdup($0) }
        replacedPath = replacing.map { strdup($0) }
        outputPath = output.map { strdup($0) }
        free(old.0)
        free(old.1)
        free(old.2)
    }

    private static func install() {
        guard !installed else { return }
        installed = true
        _ = dynamicAddressLookup  // resolve before any signal
        if let backtrace = stackTrace { _ = backtrace(frames, 64) }  // loads the unwinder now, not in the handler
        // An alternate stack, so that a stack overflow in a plugin still reaches the handler.
        let size = 1 << 16
        alternateStack = malloc(size)
        var stack = stack_t(ss_sp: alternateStack, ss_flags: 0, ss_size: size)
        sigaltstack(&stack, nil)
        var action = sigaction()
        action.__sigaction_handler.sa_sigaction = fatalSignalHandler
        action.sa_flags = SA_SIGINFO | SA_ONSTACK
        sigemptyset(&action.sa_mask)
        for signal in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT] { sigaction(signal, &action, nil) }
    }
}

/// glibc's `backtrace`, looked up once before any signal arrives.
private let stackTrace: (@convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int32) -> Int32)? =
    dlsym(nil, "backtrace").map { unsafeBitCast($0, to: (@convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int32) -> Int32).self) }

/// glibc's `Dl_info` (which Swift's Glibc module hides behind _GNU_SOURCE).
private struct DynamicLibraryInfo {
    var fileName: UnsafePointer<CChar>? = nil
    var fileBase: UnsafeRawPointer? = nil
    var symbolName: UnsafePointer<CChar>? = nil
    var symbolAddress: UnsafeRawPointer? = nil
}

/// `dladdr`, looked up once before any signal arrives.
private let dynamicAddressLookup: (@convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?) -> Int32)? =
    dlsym(nil, "dladdr").map { unsafeBitCast($0, to: (@convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?) -> Int32).self) }

/// Set by the first thread that enters the handler; a second thread that faults at the same
/// time (both halves of a batch in the same plugin) waits for the first one's `_exit`.
private let handlingFatalSignal = Atomic<Bool>(false)

func say(_ text: UnsafePointer<CChar>?) {
    guard let text else { return }
    _ = write(STDERR_FILENO, text, strlen(text))
}

/// The address of the faulting instruction, from the signal's machine context (x86_64, aarch64).
private func faultingInstruction(_ context: UnsafeMutableRawPointer?) -> UnsafeRawPointer? {
    guard let context else { return nil }
    let ucontext = context.assumingMemoryBound(to: ucontext_t.self)
    #if arch(x86_64)
    let pc = withUnsafeBytes(of: &ucontext.pointee.uc_mcontext.gregs) { $0.load(fromByteOffset: 16 * 8, as: Int64.self) }  // REG_RIP
    return UnsafeRawPointer(bitPattern: Int(pc))
    #elseif arch(arm64)
    return UnsafeRawPointer(bitPattern: UInt(ucontext.pointee.uc_mcontext.pc))
    #else
    return nil
    #endif
}

/// Whether `address` lies in the watched plugin's library (signal context).
private func inPluginLibrary(_ address: UnsafeRawPointer?) -> Bool {
    var info = DynamicLibraryInfo()
    guard let address, let dladdr = dynamicAddressLookup, dladdr(address, &info) != 0,
          let file = info.fileName, let plugin = FatalSignals.pluginPath else { return false }
    return strcmp(file, plugin) == 0
}

private let fatalSignalHandler: @convention(c) (Int32, UnsafeMutablePointer<siginfo_t>?, UnsafeMutableRawPointer?) -> Void = {
    signal, _, context in
    guard handlingFatalSignal.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged else {
        while true { pause() }
    }
    var inPlugin = inPluginLibrary(faultingInstruction(context))
    if !inPlugin, FatalSignals.pluginPath != nil, let backtrace = stackTrace {
        // abort(), or a fault in libc called by the plugin: look for the plugin among the callers.
        let count = Int(backtrace(FatalSignals.frames, 64))
        for i in 0..<count where inPluginLibrary(UnsafeRawPointer(FatalSignals.frames[i])) {
            inPlugin = true
            break
        }
    }
    say("Error: ")
    switch signal {  // string literals: immortal, contiguous, NUL-terminated (no allocation here)
    case SIGSEGV: say("SIGSEGV (segmentation fault)")
    case SIGBUS: say("SIGBUS (bus error)")
    case SIGFPE: say("SIGFPE (arithmetic exception)")
    case SIGABRT: say("SIGABRT (abort() was called)")
    default: say("SIGILL (illegal instruction or a failed check)")
    }
    if FatalSignals.pluginText != nil {
        say(inPlugin ? " in plugin " : " while running plugin ")
        say(FatalSignals.pluginText)
        if !inPlugin { say(" (the fault is outside the plugin's library)") }
    }
    abandonOutput()
    say("\n")
    _exit(1)
}

/// Signal context: removes what must not stay behind when the process ends now, and says on
/// stderr (continuing the current line) what became of the output:
/// - replacing (`--overwrite` of an existing file): the temporaries are removed, the old file is unchanged;
/// - fewer frames than one sync: the trajectory and its topology are removed (nothing readable
///   was in them, and they would block the rerun);
/// - else the trajectory keeps every frame up to the last sync.
func abandonOutput() {
    guard let output = FatalSignals.outputPath else { return }
    if let replaced = FatalSignals.replacedPath {
        unlink(output)
        if let topology = FatalSignals.topologyPath { unlink(topology) }
        say("; the run was replacing ")
        say(replaced)
        say(", which is left as it was (the unfinished new file was removed)")
    } else if FatalSignals.framesWritten < FatalSignals.syncEvery {
        unlink(output)
        if let topology = FatalSignals.topologyPath { unlink(topology) }
        say("; removed the output ")
        say(output)
        say(" (no frame had reached the disk), so the same command can run again")
    } else {
        say("; the output ")
        say(output)
        say(" keeps every frame up to the last sync (every 10 frames) and is readable; pass --overwrite to replace it")
    }
}

/// SIGINT and SIGTERM (`Interrupt.install`): the first asks the run to stop at the next safe
/// point and says so; the second ends the process at once, even inside a plugin call that does
/// not return, after `abandonOutput`.
let interruptHandler: @convention(c) (Int32) -> Void = { signal in
    if Interrupt.requested == 0 {
        Interrupt.requested = signal
        if let notice = Interrupt.notice { say(notice) }
        return
    }
    say("\nError: a second ")
    say(signal == SIGTERM ? "SIGTERM" : "SIGINT")
    say(": stopped at once")
    abandonOutput()
    if let note = Interrupt.secondSignalNote { say(note) }
    say("\n")
    _exit(128 + signal)
}
