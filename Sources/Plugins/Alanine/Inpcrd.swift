import Foundation

/// Coordinates from an AMBER ASCII restart/inpcrd file (title, atom count, then
/// 6F12.7 coordinates in Å; velocities and box lines after them are ignored).
enum Inpcrd {
    /// - Returns: [n][3] positions in Å.
    /// - Throws: `AmberFileError` naming the line for a wrong atom count or malformed field.
    static func read(path: String, atoms n: Int) throws -> [Double] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AmberFileError(description: "cannot read start-coordinate file '\(path)'")
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 2,
              let count = lines[1].split(separator: " ", omittingEmptySubsequences: true).first.flatMap({ Int($0) }) else {
            throw AmberFileError(description: "\(path):2: expected the atom count on line 2 of an AMBER inpcrd file")
        }
        guard count == n else {
            throw AmberFileError(description: "\(path):2: the file holds \(count) atoms, the prmtop \(n)")
        }
        var out: [Double] = []
        out.reserveCapacity(3 * n)
        var lineIndex = 2
        while out.count < 3 * n {
            guard lineIndex < lines.count else {
                throw AmberFileError(description: "\(path): ends after \(out.count / 3) of \(n) atoms")
            }
            let line = lines[lineIndex]
            var start = line.startIndex
            while start < line.endIndex && out.count < 3 * n {
                let end = line.index(start, offsetBy: 12, limitedBy: line.endIndex) ?? line.endIndex
                let field = line[start..<end].trimmingCharacters(in: .whitespaces)
                if !field.isEmpty {
                    guard let v = Double(field), v.isFinite else {
                        throw AmberFileError(description: "\(path):\(lineIndex + 1): malformed coordinate '\(field)'")
                    }
                    out.append(v)
                }
                start = end
            }
            lineIndex += 1
        }
        return out
    }
}
