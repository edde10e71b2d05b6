import Foundation
import Sampling

/// One line of the training log `<checkpoint>.log.jsonl` (snake_case keys).
struct TrainingLogLine: Codable {
    var step: Int
    var loss: Double
    /// ESS/N of the step's on-policy batch (absent on replay or regression steps).
    var essFraction: Double?
    /// Mean log-weight (ELBO) of the same batch (on-policy path steps, iDEM refills).
    var elbo: Double?
    /// The learned log Z (trajectory balance only).
    var logZ: Double?
    var energyEvaluations: Int
    var gradientEvaluations: Int
    /// Training wall time of the whole run so far (resumed runs included), seconds.
    var wallSeconds: Double
    var learningRate: Double
    /// The validation loss of held-out data under the averaged parameters (dsm with
    /// --validation-fraction; only on the steps where it is computed).
    var validationLoss: Double? = nil
}

/// The per-step training log: one JSON object per line, beside the checkpoint, so that a run
/// can be watched (`tail -f`), plotted (`ensemble plot-training`) and resumed with its history.
/// The checkpoint keeps the loss of every step too (`lossHistory`); this file has the rest. On --resume, lines of
/// steps after the checkpoint's (steps done after the last save, then lost) are dropped first.
/// Off a terminal, a plain progress line goes to stderr every `printEvery` steps.
/// A new run that replaces an old log (`train --overwrite`) writes to a temporary sibling until
/// the first checkpoint is saved (`commit()`), so a run that fails before leaves the old
/// checkpoint and its log as they were.
final class TrainingLog {
    let path: String
    /// Where lines go until `commit()` renames it to `path` (nil: `path` itself).
    private var pending: String?
    let printEvery: Int
    let totalSteps: Int?
    private let handle: FileHandle
    private let encoder: JSONEncoder
    private let interactive: Bool

    /// The log of checkpoint `checkpoint`: `<checkpoint>.log.jsonl`.
    static func path(for checkpoint: String) -> String { checkpoint + ".log.jsonl" }

    /// - Parameters:
    ///   - resumeAt: the checkpoint's step when resuming (older lines kept), nil for a new run (file replaced).
    init(checkpoint: String, resumeAt: Int?, printEvery: Int, totalSteps: Int?) throws {
        path = Self.path(for: checkpoint)
        self.printEvery = printEvery
        self.totalSteps = totalSteps
        var kept = ""
        if let resumeAt, let old = try? String(contentsOfFile: path, encoding: .utf8) {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            for line in old.split(separator: "\n") {
                if let entry = try? decoder.decode(TrainingLogLine.self, from: Data(line.utf8)), entry.step <= resumeAt {
                    kept += line + "\n"
                }
            }
        }
        let writing = resumeAt == nil && FileManager.default.fileExists(atPath: path) ? temporarySibling(of: path) : path
        pending = writing == path ? nil : writing
        do { try kept.write(toFile: writing, atomically: true, encoding: .utf8) } catch {
            throw FailureMessage("cannot write the training log \(path): \(error.localizedDescription)")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: writing))
        try handle.seekToEnd()
        encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        interactive = isatty(STDERR_FILENO) == 1
    }

    deinit {
        try? handle.close()
        if let pending { unlink(pending) }  // no checkpoint was saved: the old log stays
    }

    /// Moves a replacing log into place (once; the open handle follows the file).
    func commit() throws {
        guard let pending else { return }
        guard rename(pending, path) == 0 else {
            throw FailureMessage("cannot move the training log \(pending) to \(path): \(String(cString: strerror(errno)))")
        }
        self.pending = nil
    }

    /// Appends one step; prints a progress line off a terminal every `printEvery` steps.
    func record(_ report: StepReport, trainer: DiffusionTrainer) {
        let line = TrainingLogLine(
            step: report.step, loss: report.loss, essFraction: report.essFraction.isFinite ? report.essFraction : nil,
            elbo: report.elbo.isFinite ? report.elbo : nil,
            logZ: trainer.model.learnedLogZ,
            energyEvaluations: report.energyEvaluations, gradientEvaluations: report.gradientEvaluations,
            wallSeconds: trainer.state.trainingSeconds,
            learningRate: trainer.configuration.learningRate(atStep: report.step - 1),
            validationLoss: trainer.state.validationHistory?.last.flatMap { $0.step == report.step ? $0.loss : nil })
        if var data = try? encoder.encode(line) {
            data.append(0x0A)
            handle.write(data)
        }
        if !interactive && printEvery > 0 && report.step % printEvery == 0 {
            let of = totalSteps.map { "/\($0)" } ?? ""
            FileHandle.standardError.write(Data(String(
                format: "step %d%@  loss %.6g%@  energy evaluations %d  %.1f s\n", report.step, of, report.loss,
                line.essFraction.map { String(format: "  ESS/N %.3f", $0) } ?? "", report.energyEvaluations,
                trainer.state.trainingSeconds).utf8))
        }
    }

    /// Every line of a training log, in order.
    static func read(_ path: String) throws -> [TrainingLogLine] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw FailureMessage("cannot read the training log \(path): \(error.localizedDescription)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try text.split(separator: "\n").enumerated().map { number, line in
            do { return try decoder.decode(TrainingLogLine.self, from: Data(line.utf8)) } catch {
                throw FailureMessage("\(path), line \(number + 1): not a training-log line (\(error))")
            }
        }
    }
}

/// What `ensemble train` prints at the end, as JSON (`--json`).
struct TrainReport: Codable {
    var command = "train"
    var method: String
    var plugin: String
    var pluginParameters: String
    var checkpoint: String
    var trainingLog: String
    var step: Int
    var lastLoss: Double
    var lastEssFraction: Double
    var learnedLogZ: Double?
    var space: String
    var box: [Double]?
    var networkParameters: Int
    var energyEvaluations: Int
    var gradientEvaluations: Int
    var wallSeconds: Double
    var trainingSeconds: Double
    var ranks: Int
}

extension Ensemble.Train {
    func writeTrainReport(trainer: DiffusionTrainer, lastLoss: Double, lastESS: Double, seconds: Double, ranks: Int,
                          to path: String) throws {
        let model = trainer.model
        try writeJSON(TrainReport(
            method: model.configuration.method.rawValue, plugin: trainer.system.plugin.name,
            pluginParameters: trainer.system.parameters, checkpoint: out, trainingLog: TrainingLog.path(for: out),
            step: trainer.state.step, lastLoss: lastLoss, lastEssFraction: lastESS,
            learnedLogZ: model.learnedLogZ, space: model.space.kind.rawValue,
            box: model.space.box, networkParameters: model.networkParameterCount,
            energyEvaluations: trainer.state.energyEvaluations, gradientEvaluations: trainer.state.gradientEvaluations,
            wallSeconds: seconds, trainingSeconds: trainer.state.trainingSeconds, ranks: ranks), to: path)
        print("wrote \(path)")
    }
}
