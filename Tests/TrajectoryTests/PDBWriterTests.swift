import Foundation
import TestSupport
import Trajectory
import XCTest

final class PDBWriterTests: XCTestCase {
    /// Columns `first...last` (1-based, inclusive, as the PDB specification numbers them).
    func columns(_ line: String, _ first: Int, _ last: Int) -> String {
        let chars = Array(line)
        guard chars.count >= last else { return "<line too short: \(chars.count)>" }
        return String(chars[(first - 1)..<last])
    }

    func testAtomRecordColumns() throws {
        let atom = PDBAtom(name: "CA", element: "C", residueName: "ALA", residueNumber: 2)
        let line = try PDBWriter.atomRecord(serial: 2, atom: atom, x: 11.104, y: 6.134, z: -6.504)
        XCTAssertEqual(line, "ATOM      2  CA  ALA A   2      11.104   6.134  -6.504  1.00  0.00           C  ")
        XCTAssertEqual(line.count, 80)
        XCTAssertEqual(columns(line, 1, 6), "ATOM  ")
        XCTAssertEqual(columns(line, 7, 11), "    2")
        XCTAssertEqual(columns(line, 13, 16), " CA ")
        XCTAssertEqual(columns(line, 18, 20), "ALA")
        XCTAssertEqual(columns(line, 22, 22), "A")
        XCTAssertEqual(columns(line, 23, 26), "   2")
        XCTAssertEqual(columns(line, 31, 38), "  11.104")
        XCTAssertEqual(columns(line, 39, 46), "   6.134")
        XCTAssertEqual(columns(line, 47, 54), "  -6.504")
        XCTAssertEqual(columns(line, 55, 60), "  1.00")
        XCTAssertEqual(columns(line, 61, 66), "  0.00")
        XCTAssertEqual(columns(line, 77, 78), " C")
    }

    func testNameAlignmentAndTwoLetterElements() throws {
        let argon = try PDBWriter.atomRecord(serial: 12345, atom: PDBAtom(name: "AR", element: "Ar", residueName: "AR",
                                                                           residueNumber: 13, chain: "B", isHetero: true),
                                             x: -999.5, y: 0, z: 1234.5678)
        XCTAssertEqual(columns(argon, 1, 6), "HETATM")
        XCTAssertEqual(columns(argon, 7, 11), "12345")
        XCTAssertEqual(columns(argon, 13, 16), "AR  ", "two-letter element: name starts in column 13")
        XCTAssertEqual(columns(argon, 18, 20), " AR")
        XCTAssertEqual(columns(argon, 22, 22), "B")
        XCTAssertEqual(columns(argon, 31, 38), "-999.500")
        XCTAssertEqual(columns(argon, 47, 54), "1234.568")
        XCTAssertEqual(columns(argon, 77, 78), "AR")
        let methyl = try PDBWriter.atomRecord(serial: 1, atom: PDBAtom(name: "HH31", element: "H", residueName: "ACE",
                                                                        residueNumber: 1), x: 0, y: 0, z: 0)
        XCTAssertEqual(columns(methyl, 13, 16), "HH31", "four-character name starts in column 13")
        XCTAssertThrowsError(try PDBWriter.atomRecord(serial: 1, atom: PDBAtom(name: "TOOLONG", element: "C",
                                                                                residueName: "X", residueNumber: 1),
                                                      x: 0, y: 0, z: 0))
        XCTAssertThrowsError(try PDBWriter.atomRecord(serial: 1, atom: PDBAtom(name: "C", element: "C",
                                                                                residueName: "X", residueNumber: 1),
                                                      x: 1e5, y: 0, z: 0), "does not fit 8.3f")
    }

    func testCryst1Columns() {
        let line = PDBWriter.cryst1(.orthorhombic(20, 21.5, 22.75))
        XCTAssertEqual(line, "CRYST1   20.000   21.500   22.750  90.00  90.00  90.00 P 1           1")
        XCTAssertEqual(columns(line, 7, 15), "   20.000")
        XCTAssertEqual(columns(line, 34, 40), "  90.00")
        XCTAssertEqual(columns(line, 56, 66), "P 1        ")
        XCTAssertEqual(columns(line, 67, 70), "   1")
    }

    func testWholeFile() throws {
        let atoms = [PDBAtom(name: "C1", element: "C", residueName: "MOL", residueNumber: 1),
                     PDBAtom(name: "O2", element: "O", residueName: "MOL", residueNumber: 1),
                     PDBAtom(name: "N3", element: "N", residueName: "MOL", residueNumber: 1)]
        let text = try PDBWriter.string(atoms: atoms, coordinates: [0, 0, 0, 1.2, 0, 0, 0, 1.4, 0],
                                        cell: .cubic(30), bonds: [(0, 1), (0, 2)], title: "three atoms")
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.map { String($0.prefix(6)) },
                       ["TITLE ", "CRYST1", "ATOM  ", "ATOM  ", "ATOM  ", "TER   ", "CONECT", "CONECT", "CONECT", "END"])
        XCTAssertEqual(lines[5], "TER       4      MOL A   1")
        XCTAssertEqual(lines[6], "CONECT    1    2    3")
        XCTAssertEqual(lines[7], "CONECT    2    1")
        XCTAssertTrue(text.hasSuffix("END\n"))
        XCTAssertFalse(try PDBWriter.string(atoms: atoms, coordinates: [Double](repeating: 0, count: 9)).contains("CRYST1"))
        XCTAssertThrowsError(try PDBWriter.string(atoms: atoms, coordinates: [0, 0, 0]))
        XCTAssertThrowsError(try PDBWriter.string(atoms: atoms, coordinates: [Double](repeating: 0, count: 9),
                                                  bonds: [(0, 3)]))
    }

    func testParticlesAndPadding() throws {
        let atoms = PDBAtom.particles(count: 3)
        XCTAssertEqual(atoms.map(\.name), ["AR", "AR", "AR"])
        XCTAssertEqual(atoms.map(\.residueNumber), [1, 2, 3])
        XCTAssertEqual(atoms[0].element, "Ar")
        XCTAssertEqual(try Coordinates.paddedTo3D([1, 2, 3, 4], dimension: 2, scale: 2), [2, 4, 0, 6, 8, 0])
        XCTAssertEqual(try Coordinates.paddedTo3D([1, 2, 3], dimension: 3), [1, 2, 3])
        XCTAssertThrowsError(try Coordinates.paddedTo3D([1, 2, 3], dimension: 2))
        XCTAssertThrowsError(try Coordinates.paddedTo3D([1, 2, 3, 4], dimension: 4))
    }

    /// MDAnalysis and mdtraj read atom count, names, elements, box and CONECT bonds.
    func testMDAnalysisAndMDTrajReadPDB() throws {
        let python = try PythonTools.require(["MDAnalysis", "mdtraj"])
        let dir = TestPaths.temporaryDirectory("pdb")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("lj.pdb").path
        let atoms = (0..<13).map { PDBAtom(name: "AR", element: "Ar", residueName: "AR", residueNumber: $0 + 1) }
        let coordinates = (0..<39).map { Double($0) * 0.37 - 5 }
        try PDBWriter.write(to: path, atoms: atoms, coordinates: coordinates, cell: .orthorhombic(30, 31, 32),
                            bonds: [(0, 1), (1, 2)])
        let out = try PythonTools.run(python, script: """
            import sys, warnings, numpy as np
            warnings.filterwarnings("ignore")
            import MDAnalysis as mda, mdtraj as md
            u = mda.Universe(sys.argv[1])
            assert len(u.atoms) == 13 and set(u.atoms.names) == {"AR"}, u.atoms.names
            assert set(e.upper() for e in u.atoms.elements) == {"AR"}, u.atoms.elements
            assert np.allclose(u.dimensions, [30, 31, 32, 90, 90, 90]), u.dimensions
            assert len(u.bonds) == 2, len(u.bonds)
            x = np.arange(39).reshape(13, 3) * 0.37 - 5
            assert np.abs(u.atoms.positions - x).max() < 1e-3
            t = md.load(sys.argv[1])
            assert t.n_atoms == 13 and t.n_residues == 13
            assert {a.element.symbol for a in t.topology.atoms} == {"Ar"}
            assert np.allclose(t.unitcell_lengths[0], [3.0, 3.1, 3.2])
            assert np.abs(t.xyz[0] - x / 10).max() < 1e-4
            print("PDB OK")
            """, arguments: [path])
        XCTAssertTrue(out.contains("PDB OK"), out)
    }
}
