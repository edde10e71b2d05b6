import ArgumentParser
import Foundation

/// `--config FILE`: a recipe of command-line options, one or more per line (`--batch 64`),
/// `#` starting a comment. The file's options take the place of `--config FILE`, so options
/// after it override the recipe's (an option given twice keeps its last value) and options
/// before it are overridden by the recipe. Shipped recipes live in data/recipes/.
enum RecipeFile {
    /// The arguments with every `--config FILE` (or `--config=FILE`) replaced by the file's options.
    static func expand(_ arguments: [String]) throws -> [String] {
        var out: [String] = [], i = 0
        while i < arguments.count {
            let a = arguments[i]
            var path: String? = nil
            if a == "--config" {
                guard i + 1 < arguments.count else { throw ValidationError("--config needs a recipe file (e.g. data/recipes/lj13-dsm.txt)") }
                path = arguments[i + 1]
                i += 2
            } else if a.hasPrefix("--config=") {
                path = String(a.dropFirst("--config=".count))
                i += 1
            } else {
                out.append(a)
                i += 1
                continue
            }
            out += try options(in: path!)
        }
        return out
    }

    /// The options of one recipe file, in order.
    static func options(in path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("--config \(path): cannot read the recipe file (shipped recipes: data/recipes/)")
        }
        var words: [String] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if let first = parts.first, !first.hasPrefix("--") {
                throw ValidationError("--config \(path), line \(number + 1): '\(first)' is not an option (lines hold options such as --batch 64)")
            }
            if parts.contains("--config") { throw ValidationError("--config \(path), line \(number + 1): a recipe cannot include another") }
            words += parts
        }
        return words
    }
}
