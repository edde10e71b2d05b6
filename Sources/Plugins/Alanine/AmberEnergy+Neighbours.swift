import Foundation

extension AmberEnergy {
    /// Whether neighbour rows pay for themselves: when the molecule's bounding box is not
    /// much larger than the cutoff sphere, most pairs are within r_c anyway and the runs of
    /// j > i, cut per lane, skip the cell list. GB pairs cost ~5× LJ + Coulomb ones, so GB
    /// takes rows sooner. Either way the same pairs are summed.
    func usesNeighbourList(_ s: Scratch, cutoff rc: Double) -> Bool {
        guard n > 0 else { return false }
        var lo = SIMD3(s.x[0], s.y[0], s.z[0]), hi = lo
        for a in 1..<n {
            let p = SIMD3(s.x[a], s.y[a], s.z[a])
            lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p)
        }
        let span = hi - lo + rc
        let sphere = 4 / 3 * Double.pi * rc * rc * rc
        return span.x * span.y * span.z > (solvent == .vacuum ? 24 : 6) * sphere
    }

    /// Half shell: the 13 neighbour cells after a cell in (z, y, x) order.
    static let halfShell: [SIMD3<Int>] = {
        var shell: [SIMD3<Int>] = []
        for dz in -1...1 { for dy in -1...1 { for dx in -1...1 where (dz, dy, dx) > (0, 0, 0) {
            shell.append(SIMD3(dx, dy, dz))
        } } }
        return shell
    }()

    /// Neighbour rows for a cutoff r_c, rebuilt for every configuration (the configurations
    /// of a batch are unrelated): a cell list with cells of edge ≥ r_c, then, for each atom
    /// in cell order, the partners within r_c from the rest of its own cell and the 13
    /// cells of a half shell, so each pair lands in exactly one row. O(n) for a fixed density.
    ///
    /// Fills the scratch's `rowAtom`, `rowStart`, `rowCount` and `list` (rows padded to a
    /// multiple of 4 with the dummy index n).
    func buildNeighbours(_ s: Scratch, cutoff rc: Double) {
        sortIntoCells(s, cutoff: rc)
        buildRows(from: s, into: s, cells: 0..<s.cellCount, cutoff: rc)
    }

    /// The cell list: atoms sorted by cell (`sorted`, their positions `sx`, `sy`, `sz`, padded
    /// with 4 infinitely far entries), each cell's first sorted index (`cellStart`), the grid.
    func sortIntoCells(_ s: Scratch, cutoff rc: Double) {
        let n = self.n
        var lo = SIMD3(s.x[0], s.y[0], s.z[0]), hi = lo
        for a in 1..<max(1, n) {
            let p = SIMD3(s.x[a], s.y[a], s.z[a])
            lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p)
        }
        // Cells of edge ≥ r_c; coarser when the molecule is spread thin (at most ~2n cells).
        // (Counted in doubles first, so atoms far apart cannot overflow an Int.)
        var edge = rc
        while true {
            let span = (hi - lo) / edge
            if (span.x + 1) * (span.y + 1) * (span.z + 1) <= Double(max(64, 2 * n)) { break }
            edge *= 1.25
        }
        let span = (hi - lo) / edge
        let dims = SIMD3(Int(span.x) + 1, Int(span.y) + 1, Int(span.z) + 1)
        let cells = dims.x * dims.y * dims.z
        s.cellDims = dims
        if s.cellOf.count < n { s.cellOf = [Int32](repeating: 0, count: n) }
        if s.sorted.count < n + 4 { s.sorted = [Int32](repeating: 0, count: n + 4) }
        if s.sx.count < n + 4 {
            s.sx = [Double](repeating: 0, count: n + 4); s.sy = s.sx; s.sz = s.sx
        }
        if s.cellStart.count < cells + 1 { s.cellStart = [Int32](repeating: 0, count: cells + 1) }
        let inverseEdge = 1 / edge
        s.cellOf.withUnsafeMutableBufferPointer { cellOf in
        s.cellStart.withUnsafeMutableBufferPointer { start in
        s.sorted.withUnsafeMutableBufferPointer { sorted in
        s.sx.withUnsafeMutableBufferPointer { sx in
        s.sy.withUnsafeMutableBufferPointer { sy in
        s.sz.withUnsafeMutableBufferPointer { sz in
            // Counting sort of the atoms by cell.
            for c in 0...cells { start[c] = 0 }
            for a in 0..<n {
                let cx = min(dims.x - 1, Int((s.x[a] - lo.x) * inverseEdge))
                let cy = min(dims.y - 1, Int((s.y[a] - lo.y) * inverseEdge))
                let cz = min(dims.z - 1, Int((s.z[a] - lo.z) * inverseEdge))
                let c = (cz * dims.y + cy) * dims.x + cx
                cellOf[a] = Int32(c)
                start[c + 1] += 1
            }
            for c in 0..<cells { start[c + 1] += start[c] }
            for a in 0..<n {
                let c = Int(cellOf[a])
                let slot = Int(start[c])
                sorted[slot] = Int32(a)
                sx[slot] = s.x[a]; sy[slot] = s.y[a]; sz[slot] = s.z[a]
                start[c] += 1
            }
            for c in Swift.stride(from: cells, to: 0, by: -1) { start[c] = start[c - 1] }
            start[0] = 0
            for k in n..<(n + 4) { sx[k] = .infinity; sy[k] = .infinity; sz[k] = .infinity }
        }}}}}}
    }

    /// The cells (in grid order) whose atoms worker `worker` of `workers` takes: contiguous,
    /// split at the cell boundaries nearest to equal numbers of atoms.
    func cellShare(_ s: Scratch, worker: Int, of workers: Int) -> Range<Int> {
        func boundary(_ w: Int) -> Int {
            if w == 0 { return 0 }
            if w == workers { return s.cellCount }
            let atoms = Int32(n * w / workers)
            var c = 0
            while c < s.cellCount && s.cellStart[c] < atoms { c += 1 }
            return c
        }
        return boundary(worker)..<boundary(worker + 1)
    }

    /// The neighbour rows of the atoms in `cells` of the cell list in `s`, written into `w`'s
    /// `rowAtom`, `rowStart`, `rowCount` and `list` (`w` may be `s`).
    func buildRows(from s: Scratch, into w: Scratch, cells: Range<Int>, cutoff rc: Double) {
        let n = self.n
        let dims = s.cellDims
        if w.rowAtom.count != n { w.rowAtom = [Int32](repeating: 0, count: n) }
        if w.rowStart.count != n + 1 { w.rowStart = [Int32](repeating: 0, count: n + 1) }
        s.cellStart.withUnsafeBufferPointer { start in
        s.sorted.withUnsafeBufferPointer { sorted in
        s.sx.withUnsafeBufferPointer { sx in
        s.sy.withUnsafeBufferPointer { sy in
        s.sz.withUnsafeBufferPointer { sz in
            let rc2 = rc * rc
            var count = 0
            var row = 0
            let shell = AmberEnergy.halfShell
            var ranges = w.ranges          // moved out and back, so never copied
            w.ranges = []
            ranges.removeAll(keepingCapacity: true)
            defer { w.ranges = ranges }
            for c in cells {
                let cx = c % dims.x, cy = c / dims.x % dims.y, cz = c / (dims.x * dims.y)
                let begin = Int(start[c]), end = Int(start[c + 1])
                guard begin < end else { continue }
                ranges.removeAll(keepingCapacity: true)
                var candidates = 0
                for o in shell {
                    let nx = cx + o.x, ny = cy + o.y, nz = cz + o.z
                    guard nx >= 0, nx < dims.x, ny >= 0, ny < dims.y, nz >= 0, nz < dims.z else { continue }
                    let d = (nz * dims.y + ny) * dims.x + nx
                    let b = Int(start[d]), e = Int(start[d + 1])
                    if b < e { ranges.append((b, e)); candidates += e - b }
                }
                for p in begin..<end {
                    let need = count + candidates + (end - p) + 8
                    if w.list.count < need { w.list.append(contentsOf: [Int32](repeating: 0, count: max(need, w.list.count))) }
                    w.rowAtom[row] = sorted[p]
                    w.rowStart[row] = Int32(count)
                    let xi = V4(repeating: sx[p]), yi = V4(repeating: sy[p]), zi = V4(repeating: sz[p])
                    w.list.withUnsafeMutableBufferPointer { list in
                        @inline(__always) func scan(_ b: Int, _ e: Int) {
                            var q = b
                            while q < e {
                                let dx = xi - UnsafeRawPointer(sx.baseAddress! + q).loadUnaligned(as: V4.self)
                                let dy = yi - UnsafeRawPointer(sy.baseAddress! + q).loadUnaligned(as: V4.self)
                                let dz = zi - UnsafeRawPointer(sz.baseAddress! + q).loadUnaligned(as: V4.self)
                                let inside = (dx * dx + dy * dy + dz * dz) .< V4(repeating: rc2)
                                if any(inside) {
                                    for lane in 0..<min(4, e - q) where inside[lane] {
                                        list[count] = sorted[q + lane]; count += 1
                                    }
                                }
                                q += 4
                            }
                        }
                        scan(p + 1, end)
                        for (b, e) in ranges { scan(b, e) }
                        while count & 3 != 0 { list[count] = Int32(n); count += 1 }
                    }
                    row += 1
                }
            }
            w.rowStart[row] = Int32(count)
            w.rowCount = row
        }}}}}
    }
}
