import Foundation
import Sampling
import TestSupport
import XCTest

final class RamachandranTests: XCTestCase {
    /// Four points with a known dihedral: p0 in the xy-plane, the p1→p2 axis along z,
    /// p3 rotated by `angle` about it.
    private func points(_ angle: Double) -> [SIMD3<Double>] {
        [SIMD3(1, 0, 0), SIMD3(0, 0, 0), SIMD3(0, 0, 1.5), SIMD3(1.3 * cos(angle), 1.3 * sin(angle), 1.5)]
    }

    func testDihedralOfHandBuiltGeometries() {
        for degrees in [0.0, 60, -60, 90, -120, 179.9, -179.9] {
            let p = points(degrees * .pi / 180)
            XCTAssertEqual(dihedralAngle(p[0], p[1], p[2], p[3]) * 180 / .pi, degrees, accuracy: 1e-10, "\(degrees)°")
        }
        let trans = points(.pi)
        XCTAssertEqual(abs(dihedralAngle(trans[0], trans[1], trans[2], trans[3])), .pi, accuracy: 1e-12)
        // Sign: p3 turned counter-clockwise from p0 seen from +z (looking back along p2→p1) is
        // positive, i.e. clockwise when looking along p1→p2: IUPAC, as MDTraj (testAgreesWithMDTraj).
    }

    func testIndicesOfAlanineDipeptide() throws {
        let names = ["HH31", "CH3", "HH32", "HH33", "C", "O", "N", "H", "CA", "HA", "CB", "HB1", "HB2", "HB3",
                     "C", "O", "N", "H", "CH3", "HH31", "HH32", "HH33"]
        let residues = Array(repeating: 1, count: 6) + Array(repeating: 2, count: 10) + Array(repeating: 3, count: 6)
        let indices = try ramachandranIndices(names: names, residueNumbers: residues)
        XCTAssertEqual(indices.phi, [4, 6, 8, 14])
        XCTAssertEqual(indices.psi, [6, 8, 14, 16])
        XCTAssertThrowsError(try ramachandranIndices(names: ["A", "B"], residueNumbers: [1, 1]))
    }

    /// φ/ψ of rotated alanine-dipeptide frames against MDTraj's compute_phi / compute_psi.
    func testAgreesWithMDTraj() throws {
        let python = try PythonTools.require(["mdtraj", "numpy"])
        let root = TestPaths.repositoryRoot
        let prmtop = root.appendingPathComponent("data/alanine-dipeptide-ff96.prmtop").path
        let inpcrd = try String(contentsOf: root.appendingPathComponent("data/alanine-dipeptide-ff96.inpcrd"), encoding: .utf8)
        let start = inpcrd.split(separator: "\n").dropFirst(2).flatMap { line in
            stride(from: 0, to: line.count, by: 12).map { k -> Double in
                let a = line.index(line.startIndex, offsetBy: k)
                let b = line.index(a, offsetBy: 12, limitedBy: line.endIndex) ?? line.endIndex
                return Double(line[a..<b].trimmingCharacters(in: .whitespaces))!
            }
        }
        XCTAssertEqual(start.count, 66)
        var rng = TestRandom(seed: 11)
        let frames = 12
        let positions = (0..<frames).flatMap { _ in start.map { $0 + 0.3 * rng.normal() } }
        let dir = TestPaths.temporaryDirectory("ramachandran")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("x.f64")
        try positions.withUnsafeBufferPointer { try Data(buffer: $0).write(to: file) }
        let script = """
            import sys, numpy as np, mdtraj as md
            top = md.load_prmtop(sys.argv[1])
            x = np.fromfile(sys.argv[2], dtype='<f8').reshape(-1, top.n_atoms, 3) / 10
            t = md.Trajectory(x, top)
            (ip, phi), (iq, psi) = md.compute_phi(t), md.compute_psi(t)
            print(' '.join(map(str, ip[0])), ' '.join(map(str, iq[0])))
            for a, b in zip(phi[:, 0], psi[:, 0]): print(repr(float(a)), repr(float(b)))
            """
        let out = try PythonTools.run(python, script: script, arguments: [prmtop, file.path])
        let lines = out.split(separator: "\n")
        XCTAssertEqual(lines.count, frames + 1)
        guard lines.count == frames + 1 else { return }
        let header = lines[0].split(separator: " ").map { Int($0)! }
        let indices: RamachandranIndices = (phi: [4, 6, 8, 14], psi: [6, 8, 14, 16])
        XCTAssertEqual(Array(header[0..<4]), indices.phi)
        XCTAssertEqual(Array(header[4..<8]), indices.psi)
        let angles = ramachandranAngles(positions: positions, frames: frames, atoms: 22, indices: indices)
        for (k, line) in lines.dropFirst().enumerated() {
            let ref = line.split(separator: " ").map { Double($0)! }
            // MDTraj works in float32.
            XCTAssertEqual(angles[k].phi, ref[0], accuracy: 1e-5, "frame \(k) φ")
            XCTAssertEqual(angles[k].psi, ref[1], accuracy: 1e-5, "frame \(k) ψ")
        }
    }

    func testHistogramBinsCoverMinusPiToPi() {
        let h = RamachandranHistogram(bins: 60)
        XCTAssertEqual(h.bin(.pi), 59)
        XCTAssertEqual(h.bin(-.pi), 59)             // −π ≡ π: the interval is (−π, π]
        XCTAssertEqual(h.bin(-.pi + 1e-12), 0)
        XCTAssertEqual(h.bin(0), 29)                // (−π + 29w, 0] with w = 2π/60
        XCTAssertEqual(h.bin(1e-12), 30)
        XCTAssertEqual(h.bin(3 * .pi), 59)          // wrapped
        let filled = RamachandranHistogram(angles: [(0.1, 0.2), (0.1, 0.2), (-2, 3)], bins: 60)
        XCTAssertEqual(filled.total, 3)
        XCTAssertEqual(filled.counts[filled.bin(0.1) * 60 + filled.bin(0.2)], 2)
        XCTAssertEqual(filled.probabilities.reduce(0, +), 1, accuracy: 1e-15)
    }

    func testKLAndTotalVariation() {
        var rng = TestRandom(seed: 5)
        let a = (0..<1000).map { _ in (phi: -1.5 + 0.3 * rng.normal(), psi: 2.5 + 0.3 * rng.normal()) }
        let b = (0..<1000).map { _ in (phi: 1.0 + 0.2 * rng.normal(), psi: 0.5 + 0.2 * rng.normal()) }
        let ha = RamachandranHistogram(angles: a), hb = RamachandranHistogram(angles: b)
        XCTAssertEqual(klDivergence(reference: ha, model: ha), 0)
        XCTAssertEqual(totalVariation(ha, ha), 0)
        XCTAssertEqual(totalVariation(ha, hb), 1, accuracy: 1e-12)   // disjoint supports
        XCTAssertGreaterThan(klDivergence(reference: ha, model: hb), 15)  // ≈ −ln(1e-10) per unit mass
        // Half the mass moved: TV = ½.
        let mixed = RamachandranHistogram(angles: Array(a.prefix(500)) + Array(b.prefix(500)))
        XCTAssertEqual(totalVariation(ha, mixed), 0.5, accuracy: 0.02)
        XCTAssertGreaterThan(klDivergence(reference: ha, model: mixed), 0)
    }
}
