/// Helpers for turning a sampler's positions into what the file formats hold.
public enum Coordinates {
    /// Pad d-dimensional positions (flat [particle][d], d = 1, 2 or 3) to three components
    /// with zeros, and multiply by `scale` (e.g. the plugin's length unit in Å), giving the
    /// flat [particle][3] array that `AmberNetCDFWriter.append` and `PDBWriter` take.
    ///
    /// - Throws: `.invalidArgument` if `dimension` is not 1…3 or does not divide the count.
    public static func paddedTo3D(_ positions: [Double], dimension: Int, scale: Double = 1) throws -> [Double] {
        guard (1...3).contains(dimension), positions.count % dimension == 0 else {
            throw TrajectoryError.invalidArgument(
                "cannot pad \(positions.count) values of dimension \(dimension) to 3-D coordinates")
        }
        let n = positions.count / dimension
        var out = [Double](repeating: 0, count: 3 * n)
        for i in 0..<n {
            for d in 0..<dimension { out[3 * i + d] = positions[dimension * i + d] * scale }
        }
        return out
    }
}

extension PDBAtom {
    /// `count` identical particles, one residue each (numbered from 1), named after the
    /// element: e.g. 13 argon atoms for LJ-13 in units of argon's σ = 3.405 Å, so that
    /// VMD draws atoms rather than guessing bonds.
    public static func particles(count: Int, element: String = "Ar", residueName: String? = nil) -> [PDBAtom] {
        let name = String(element.uppercased().prefix(4))
        let residue = residueName ?? String(element.uppercased().prefix(3))
        return (0..<max(count, 0)).map {
            PDBAtom(name: name, element: element, residueName: residue, residueNumber: $0 + 1)
        }
    }
}
