import Foundation

/// One atom of a PDB topology.
public struct PDBAtom: Equatable, Sendable {
    /// Atom name, at most 4 characters (e.g. "CA", "AR", "HH31").
    public var name: String
    /// Element symbol, 1–2 letters (e.g. "C", "Ar"); written upper-case in columns 77–78.
    public var element: String
    /// Residue name, at most 3 characters (e.g. "ALA", "ARG" for argon-like particles).
    public var residueName: String
    /// Residue number (wrapped modulo 10000 to fit the column).
    public var residueNumber: Int
    /// Chain identifier, one character.
    public var chain: Character
    /// Write a HETATM record instead of ATOM.
    public var isHetero: Bool

    public init(name: String, element: String, residueName: String, residueNumber: Int,
                chain: Character = "A", isHetero: Bool = false) {
        self.name = name
        self.element = element
        self.residueName = residueName
        self.residueNumber = residueNumber
        self.chain = chain
        self.isHetero = isHetero
    }
}

/// Writes a PDB topology file (one model) to sit beside a trajectory, so that
/// `vmd top.pdb traj.nc`, `MDAnalysis.Universe(pdb, nc)` and `mdtraj.load(nc, top=pdb)` work.
///
/// Records (fixed columns per the wwPDB 3.3 format): optional `TITLE`, `CRYST1` when a cell is
/// given (a, b, c in Å, α, β, γ in degrees, space group "P 1", Z = 1), one `ATOM`/`HETATM`
/// per atom, `TER` after each chain, `CONECT` for bonds, `END`.
///
/// ATOM columns: 1–6 record, 7–11 serial, 13–16 name (a name shorter than 4 with a
/// one-letter element starts in column 14), 17 altLoc, 18–20 residue name, 22 chain,
/// 23–26 residue number, 31–38/39–46/47–54 x/y/z (8.3f Å), 55–60 occupancy, 61–66
/// B-factor, 77–78 element (right-justified, upper-case).
public enum PDBWriter {
    /// The PDB text.
    ///
    /// - Parameters:
    ///   - atoms: the atoms, in trajectory order.
    ///   - coordinates: positions in Å, flat [atom][3] (the first frame); 2-D systems pad z with 0.
    ///   - cell: periodic cell, written as CRYST1; nil for free space.
    ///   - bonds: pairs of 0-based atom indices, written as CONECT records (both directions).
    ///   - title: optional TITLE line text.
    /// - Throws: `.invalidArgument` for mismatched counts, bad bond indices, names too long, or
    ///   coordinates that do not fit the 8.3f columns (|x| ≥ 10⁴ Å).
    public static func string(atoms: [PDBAtom], coordinates: [Double], cell: UnitCell? = nil,
                              bonds: [(Int, Int)] = [], title: String? = nil) throws -> String {
        guard coordinates.count == 3 * atoms.count else {
            throw TrajectoryError.invalidArgument(
                "PDB: \(coordinates.count) coordinates for \(atoms.count) atoms (expected \(3 * atoms.count))")
        }
        var lines: [String] = []
        if let title, !title.isEmpty {
            lines.append(pad("TITLE     " + String(title.prefix(70)), 80))
        }
        if let cell { lines.append(cryst1(cell)) }
        var serial = 0
        var serials: [Int] = []  // serial number written for each atom (TER records take one too)
        for (i, atom) in atoms.enumerated() {
            serial += 1
            serials.append(serial)
            let x = coordinates[3 * i], y = coordinates[3 * i + 1], z = coordinates[3 * i + 2]
            lines.append(try atomRecord(serial: serial, atom: atom, x: x, y: y, z: z))
            let endOfChain = i == atoms.count - 1 || atoms[i + 1].chain != atom.chain
            if endOfChain {
                serial += 1
                lines.append(terRecord(serial: serial, atom: atom))
            }
        }
        if !bonds.isEmpty {
            var partners = [[Int]](repeating: [], count: atoms.count)
            for (a, b) in bonds {
                guard atoms.indices.contains(a), atoms.indices.contains(b), a != b else {
                    throw TrajectoryError.invalidArgument("PDB: bond (\(a), \(b)) is not between two of \(atoms.count) atoms")
                }
                partners[a].append(b)
                partners[b].append(a)
            }
            for (i, list) in partners.enumerated() where !list.isEmpty {
                for start in stride(from: 0, to: list.count, by: 4) {
                    let chunk = list[start..<min(start + 4, list.count)]
                    lines.append(pad("CONECT" + field(serials[i] % 100_000, 5)
                                     + chunk.map { field(serials[$0] % 100_000, 5) }.joined(), 80))
                }
            }
        }
        lines.append(pad("END", 80))
        return lines.map { $0.replacingOccurrences(of: " +$", with: "", options: .regularExpression) }
            .joined(separator: "\n") + "\n"
    }

    /// Write the PDB text to `path` (replacing an existing file).
    /// - Throws: as `string(...)`, and `.notWritable` when the file cannot be written.
    public static func write(to path: String, atoms: [PDBAtom], coordinates: [Double], cell: UnitCell? = nil,
                             bonds: [(Int, Int)] = [], title: String? = nil) throws {
        let text = try string(atoms: atoms, coordinates: coordinates, cell: cell, bonds: bonds, title: title)
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw TrajectoryError.notWritable(path: path, reason: error.localizedDescription)
        }
    }

    /// `CRYST1` record: a, b, c (9.3f), α, β, γ (7.2f), space group (columns 56–66), Z (67–70).
    public static func cryst1(_ cell: UnitCell) -> String {
        "CRYST1" + fixed(cell.lengths.x, 9, 3) + fixed(cell.lengths.y, 9, 3) + fixed(cell.lengths.z, 9, 3)
            + fixed(cell.angles.x, 7, 2) + fixed(cell.angles.y, 7, 2) + fixed(cell.angles.z, 7, 2)
            + " " + pad("P 1", 11) + field(1, 4)
    }

    /// One `ATOM`/`HETATM` record, 80 columns.
    public static func atomRecord(serial: Int, atom: PDBAtom, x: Double, y: Double, z: Double) throws -> String {
        guard atom.name.count <= 4, !atom.name.isEmpty else {
            throw TrajectoryError.invalidArgument("PDB: atom name '\(atom.name)' must be 1–4 characters")
        }
        guard atom.residueName.count <= 3 else {
            throw TrajectoryError.invalidArgument("PDB: residue name '\(atom.residueName)' must be at most 3 characters")
        }
        guard (1...2).contains(atom.element.count) else {
            throw TrajectoryError.invalidArgument("PDB: element '\(atom.element)' must be 1–2 letters")
        }
        for v in [x, y, z] where !(v.isFinite && abs(v) < 9999.9995) {
            throw TrajectoryError.invalidArgument("PDB: coordinate \(v) Å does not fit the 8.3f column")
        }
        let element = atom.element.uppercased()
        // Alignment convention: a one-letter element's name starts in column 14.
        let name = atom.name.count < 4 && element.count == 1 ? " " + atom.name : atom.name
        var line = atom.isHetero ? "HETATM" : "ATOM  "
        line += field(serial % 100_000, 5)                 // 7–11
        line += " "                                        // 12
        line += pad(name, 4)                               // 13–16
        line += " "                                        // 17 altLoc
        line += field(atom.residueName, 3)                 // 18–20
        line += " "                                        // 21
        line += String(atom.chain)                         // 22
        line += field(atom.residueNumber % 10_000, 4)      // 23–26
        line += "    "                                     // 27 iCode, 28–30
        line += fixed(x, 8, 3) + fixed(y, 8, 3) + fixed(z, 8, 3)  // 31–54
        line += fixed(1, 6, 2) + fixed(0, 6, 2)            // 55–60 occupancy, 61–66 B
        line += String(repeating: " ", count: 10)          // 67–76
        line += field(element, 2)                          // 77–78
        line += "  "                                       // 79–80 charge
        return line
    }

    static func terRecord(serial: Int, atom: PDBAtom) -> String {
        "TER   " + field(serial % 100_000, 5) + "      " + field(atom.residueName, 3) + " "
            + String(atom.chain) + field(atom.residueNumber % 10_000, 4)
    }

    // MARK: - Fixed-width helpers

    /// Right-justify `value` in `width` columns.
    static func field(_ value: CustomStringConvertible, _ width: Int) -> String {
        let text = value.description
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }

    /// Left-justify `text` in `width` columns.
    static func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    /// `%width.precisionf`.
    static func fixed(_ value: Double, _ width: Int, _ precision: Int) -> String {
        field(String(format: "%.\(precision)f", value), width)
    }
}
