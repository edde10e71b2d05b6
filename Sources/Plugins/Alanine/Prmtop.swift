import Foundation

/// An error reading an AMBER file: the message names the file, the section
/// (`%FLAG`) and the line where it went wrong.
struct AmberFileError: Error, CustomStringConvertible {
    var description: String
}

/// The raw sections of an AMBER parameter/topology file (prmtop, format
/// version 7 with `%FLAG` / `%FORMAT` headers).
///
/// Numbers are read by their Fortran field widths (`10I8`, `5E16.8`, `20a4`),
/// so fields that touch each other (`-1.0E+00-2.0E+00`) still parse; every
/// malformed field is reported with its section and 1-based line number.
struct Prmtop {
    /// One `%FLAG` section: its fixed-width fields and the line of each field.
    struct Section {
        var name: String
        var fields: [Substring] = []
        var lines: [Int] = []
        /// Line of the `%FLAG` header (for messages about a missing field).
        var headerLine: Int
    }

    let path: String
    private(set) var sections: [String: Section] = [:]

    /// Read and split a prmtop into sections.
    /// - Throws: `AmberFileError` for an unreadable file, a section without
    ///   `%FORMAT`, or an unknown format.
    init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AmberFileError(description: "cannot read prmtop file '\(path)'")
        }
        let text = String(decoding: data, as: UTF8.self)
        var current: Section?
        var width = 0
        var perLine = 0
        var lineNumber = 0
        func finish() { if let s = current { sections[s.name] = s } }
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.hasPrefix("%VERSION") || line.hasPrefix("%COMMENT") { continue }
            if line.hasPrefix("%FLAG") {
                finish()
                let name = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
                current = Section(name: name, headerLine: lineNumber)
                width = 0
                continue
            }
            if line.hasPrefix("%FORMAT") {
                guard current != nil else {
                    throw AmberFileError(description: "\(path):\(lineNumber): %FORMAT outside a %FLAG section")
                }
                guard let (count, w) = Prmtop.parseFormat(line) else {
                    throw AmberFileError(description:
                        "\(path):\(lineNumber): unsupported format '\(line)' in section %FLAG \(current!.name)")
                }
                perLine = count
                width = w
                continue
            }
            guard current != nil else {
                if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                throw AmberFileError(description:
                    "\(path):\(lineNumber): data before the first %FLAG: not an AMBER prmtop (format version 7)")
            }
            guard width > 0 else {
                throw AmberFileError(description:
                    "\(path):\(lineNumber): section %FLAG \(current!.name) has no %FORMAT line")
            }
            // Fixed-width fields; a short last line holds fewer.
            var start = line.startIndex
            var n = 0
            while start < line.endIndex && n < perLine {
                let end = line.index(start, offsetBy: width, limitedBy: line.endIndex) ?? line.endIndex
                let field = line[start..<end]
                if !field.allSatisfy({ $0 == " " }) || width == 4 || width == 80 {
                    current!.fields.append(field)
                    current!.lines.append(lineNumber)
                }
                start = end
                n += 1
            }
        }
        finish()
    }

    /// `%FORMAT(10I8)` → (10, 8); `(5E16.8)` → (5, 16); `(20a4)` → (20, 4).
    private static func parseFormat(_ line: Substring) -> (Int, Int)? {
        guard let open = line.firstIndex(of: "("), let close = line.firstIndex(of: ")") else { return nil }
        let spec = line[line.index(after: open)..<close].uppercased()
        guard let letterIndex = spec.firstIndex(where: { "IEAF".contains($0) }) else { return nil }
        let count = spec[..<letterIndex].isEmpty ? 1 : Int(spec[..<letterIndex])
        let rest = spec[spec.index(after: letterIndex)...]
        let widthText = rest.split(separator: ".", maxSplits: 1).first.map(String.init) ?? ""
        guard let count, let width = Int(widthText), count > 0, width > 0 else { return nil }
        return (count, width)
    }

    func has(_ flag: String) -> Bool { sections[flag] != nil }

    /// The section, or an error naming the missing flag.
    func section(_ flag: String) throws -> Section {
        guard let s = sections[flag] else {
            throw AmberFileError(description: "\(path): required section %FLAG \(flag) is missing")
        }
        return s
    }

    /// Integer fields of a section, at least `count` of them when given.
    func integers(_ flag: String, count: Int? = nil) throws -> [Int] {
        let s = try section(flag)
        var out: [Int] = []
        out.reserveCapacity(s.fields.count)
        for (k, field) in s.fields.enumerated() {
            guard let v = Int(field.trimmingCharacters(in: .whitespaces)) else {
                throw AmberFileError(description:
                    "\(path):\(s.lines[k]): malformed integer '\(field)' in section %FLAG \(flag) (entry \(k + 1))")
            }
            out.append(v)
        }
        try checkCount(s, out.count, count)
        return out
    }

    /// Floating-point fields of a section (Fortran `E`/`D` exponents accepted).
    func doubles(_ flag: String, count: Int? = nil) throws -> [Double] {
        let s = try section(flag)
        var out: [Double] = []
        out.reserveCapacity(s.fields.count)
        for (k, field) in s.fields.enumerated() {
            let text = field.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "D", with: "E")
            guard let v = Double(text), v.isFinite else {
                throw AmberFileError(description:
                    "\(path):\(s.lines[k]): malformed number '\(field)' in section %FLAG \(flag) (entry \(k + 1))")
            }
            out.append(v)
        }
        try checkCount(s, out.count, count)
        return out
    }

    /// Character fields (`20a4`), trimmed.
    func strings(_ flag: String, count: Int? = nil) throws -> [String] {
        let s = try section(flag)
        let out = s.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        try checkCount(s, out.count, count)
        return out
    }

    private func checkCount(_ s: Section, _ have: Int, _ want: Int?) throws {
        guard let want, have < want else { return }
        let line = s.lines.last ?? s.headerLine
        throw AmberFileError(description:
            "\(path):\(line): section %FLAG \(s.name) has \(have) entries, POINTERS require \(want)")
    }

    /// Line of the `k`-th field of a section (for messages about its value).
    func line(_ flag: String, entry k: Int) -> Int {
        guard let s = sections[flag] else { return 0 }
        return k < s.lines.count ? s.lines[k] : s.headerLine
    }
}
