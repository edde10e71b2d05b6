import ArgumentParser
import Distributed
import Foundation

/// A one-line progress bar on stderr, drawn only when stderr is a terminal, and under mpirun
/// by rank 0 alone.
final class ProgressBar {
    let label: String
    let total: Int
    let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast

    init(label: String, total: Int, enabled: Bool = Communicator.world.isRoot && isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.total = max(total, 1)
        self.enabled = enabled
    }

    /// Redraw at most 10 times a second; `detail` is appended (e.g. loss, acceptance).
    func update(_ done: Int, detail: String = "") {
        guard enabled else { return }
        let now = Date()
        guard done >= total || now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        let fraction = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = now.timeIntervalSince(start)
        let eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let line = String(format: "\r\u{1B}[2K%@ %@ %3.0f%% %d/%d  %.0fs elapsed, eta %.0fs %@",
                          label, bar, fraction * 100, done, total, elapsed, eta, detail)
        FileHandle.standardError.write(Data(line.utf8))
        if done >= total { finish() }
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }
}

/// Set by SIGINT (Ctrl-C) or SIGTERM (what batch schedulers send before killing a job): long
/// loops stop at the next safe point, checkpoint or close their files, say so, and exit with
/// 128 + the signal number (130 for SIGINT, 143 for SIGTERM). The first signal prints `notice`
/// at once; a second one ends the process immediately (`interruptHandler`), even while a plugin
/// call hangs, leaving the output as `abandonOutput` describes and printing `secondSignalNote`.
enum Interrupt {
    nonisolated(unsafe) static var requested: Int32 = 0
    /// Printed on stderr by the first signal (C string, prepared before any signal).
    nonisolated(unsafe) static var notice: UnsafeMutablePointer<CChar>?
    /// Appended to the message of a second signal, e.g. where the last checkpoint is.
    nonisolated(unsafe) static var secondSignalNote: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) private static var installed = false

    /// Installs the handlers of SIGINT and SIGTERM (once; later calls only change the texts).
    /// - Parameters:
    ///   - notice: what the first signal prints (under mpirun rank 0 alone prints it).
    ///   - secondSignalNote: appended to the message of a second signal.
    static func install(notice text: String = "stopping after the current step…",
                        secondSignalNote note: String? = nil) {
        free(notice)
        free(secondSignalNote)
        notice = Communicator.world.isRoot ? strdup("\n\(text) (Ctrl-C again to stop at once)\n") : nil
        secondSignalNote = note.map { strdup($0) }
        guard !installed else { return }
        installed = true
        var action = sigaction()
        action.__sigaction_handler.sa_handler = interruptHandler
        action.sa_flags = SA_RESTART  // as signal() had it: file writes in progress are not cut short
        sigemptyset(&action.sa_mask)
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
    }

    static var isRequested: Bool { requested != 0 }

    /// "SIGINT" or "SIGTERM", for messages.
    static var signalName: String { requested == SIGTERM ? "SIGTERM" : "SIGINT" }

    /// The exit code after an interrupt: 128 + the signal.
    static var exitCode: ExitCode { ExitCode(128 + (requested == 0 ? SIGINT : requested)) }
}
