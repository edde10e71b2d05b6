import ArgumentParser
import Foundation
import Trajectory

extension Ensemble {
    /// `ensemble plot-training`: loss and ESS/N curves of a training run, from its log.
    struct PlotTraining: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "plot-training",
            abstract: "Draw the loss and on-policy ESS/N of a training run (its <checkpoint>.log.jsonl) as SVG.",
            discussion: """
                `ensemble train --out M.ckpt` writes one JSON line per step to M.ckpt.log.jsonl (step, loss, \
                ess_fraction on on-policy steps, log_z for tb, energy and gradient evaluations, wall_seconds, \
                learning_rate). This draws two panels side by side: the loss per step (log scale when every loss \
                is positive) with a running median and, for dsm, the validation loss of the held-out data under the \
                averaged parameters (validation_loss, every --validation-every steps: "trained enough" is where it \
                stops falling), and ESS/N of the on-policy batches.

                Example:
                  ensemble train --plugin double-well --method tb --steps 200 --out dw4.ckpt
                  ensemble plot-training dw4.ckpt --plot dw4-training.svg
                """)

        @Argument(help: ArgumentHelp("A checkpoint (its .log.jsonl is read) or a .log.jsonl file.", valueName: "checkpoint"))
        var checkpoint: String
        @Option(help: ArgumentHelp("Output SVG (default: <checkpoint>.training.svg).", valueName: "path.svg"))
        var plot: String?
        @Flag(help: "Replace an existing SVG (never the checkpoint or its log).")
        var overwrite = false

        var logPath: String { checkpoint.hasSuffix(".jsonl") ? checkpoint : TrainingLog.path(for: checkpoint) }
        var output: String { plot ?? (checkpoint.hasSuffix(".jsonl") ? String(checkpoint.dropLast(6)) : checkpoint) + ".training.svg" }

        func validate() throws {
            var files = OutputFiles()
            files.output(plot == nil ? "the plot" : "--plot", output)
            files.input("the checkpoint", checkpoint)
            files.input("its training log", logPath)
            try files.check(overwrite: overwrite)
        }

        func run() throws {
            guard FileManager.default.fileExists(atPath: logPath) else {
                throw FailureMessage("no training log at \(logPath): it is written by `ensemble train --out \(checkpoint)` (since issue 14)")
            }
            let lines = try TrainingLog.read(logPath)
            guard !lines.isEmpty else { throw FailureMessage("\(logPath) holds no steps yet") }
            try SVGPlot.write(Self.chart(lines, name: URL(fileURLWithPath: checkpoint).lastPathComponent), to: output)
            print("wrote \(output) (\(lines.count) steps, up to step \(lines.last!.step))")
        }

        /// The two-panel chart of a log.
        static func chart(_ lines: [TrainingLogLine], name: String) -> String {
            let steps = lines.map { Double($0.step) }, losses = lines.map(\.loss)
            let positive = losses.allSatisfy { $0 > 0 || !$0.isFinite }
            let window = max(1, lines.count / 25)
            let smooth: [Double] = losses.indices.map { i in
                let part = losses[max(0, i - window + 1)...i].filter(\.isFinite).sorted()
                return part.isEmpty ? .nan : part[part.count / 2]
            }
            let validation = lines.compactMap { line in line.validationLoss.map { (Double(line.step), $0) } }
            var series: [SVGPlot.LineSeries] = [.init(label: "loss per step", x: steps, y: losses),
                                            .init(label: "running median (\(window) steps)", x: steps, y: smooth)]
            if !validation.isEmpty {
                series.append(.init(label: "validation (held-out data, averaged parameters)", x: validation.map(\.0), y: validation.map(\.1)))
            }
            let lossChart = SVGPlot.linePlot(
                series,
                title: "loss", xLabel: "training step", yLabel: positive ? "loss (log scale)" : "loss", logY: positive,
                width: 600, height: 420)
            let ess = lines.compactMap { line in line.essFraction.map { (Double(line.step), $0) } }
            let essChart = SVGPlot.linePlot(
                [.init(label: "on-policy batch ESS/N", x: ess.map(\.0), y: ess.map(\.1))],
                title: "ESS/N", xLabel: "training step", yLabel: "ESS / N (1 = perfect importance weights)",
                legendCorner: .topLeft, width: 600, height: 420)
            let last = lines.last!
            var notes = [String(format: "%@: %d steps, %d energy and %d gradient evaluations, %.1f s of training, learning rate %.3g",
                                name, last.step, last.energyEvaluations, last.gradientEvaluations, last.wallSeconds, last.learningRate)]
            if let v = validation.last { notes.append(String(format: "validation loss at step %d: %.4g (lowest %.4g)", Int(v.0), v.1, validation.map(\.1).min()!)) }
            if let logZ = last.logZ { notes.append(String(format: "learned log Z at the last step: %.4f", logZ)) }
            if ess.isEmpty { notes.append("no on-policy ESS/N in this log (iDEM regression steps, or replay only)") }
            return SVGPlot.row(ess.isEmpty ? [lossChart] : [lossChart, essChart], title: "training of \(name)", notes: notes)
        }
    }
}
