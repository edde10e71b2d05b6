import Foundation

// Benchmarks, dispatched on the first argument. Add a subcommand by adding a
// case here and a file `NameBenchmark.swift` beside this one.
let arguments = Array(CommandLine.arguments.dropFirst())
let usage = """
    usage: Benchmarks <subcommand> [options]
      egnn [--threads N] [--case NAME] [--seconds S]
           EGNN forward / forward+backward / Adam training step per batch
           (cases: \(EGNNBenchmark.cases.map(\.name).joined(separator: ", ")))
    """
switch arguments.first {
case "egnn":
    EGNNBenchmark.run(Array(arguments.dropFirst()))
default:
    print(usage)
    exit(arguments.isEmpty || arguments.first == "--help" ? 0 : 2)
}
