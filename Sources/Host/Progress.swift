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
/// 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
enum Interrupt {
    nonisolated(unsafe) static var requested: Int32 = 0

    static func install() {
        signal(SIGINT) { _ in Interrupt.requested = SIGINT }
        signal(SIGTERM) { _ in Interrupt.requested = SIGTERM }
    }

    static var isRequested: Bool { requested != 0 }

    /// "SIGINT" or "SIGTERM", for messages.
    static var signalName: String { requested == SIGTERM ? "SIGTERM" : "SIGINT" }

    /// The exit code after an interrupt: 128 + the signal.
    static var exitCode: ExitCode { ExitCode(128 + (requested == 0 ? SIGINT : requested)) }
}
