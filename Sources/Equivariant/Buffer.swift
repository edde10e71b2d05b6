/// A growable, uninitialised scratch buffer reused across calls (no
/// per-call allocation once the largest batch has been seen).
final class Buffer<S> {
    private(set) var p: UnsafeMutablePointer<S>
    private(set) var capacity: Int

    init(_ count: Int = 0) {
        capacity = max(count, 1)
        p = .allocate(capacity: capacity)
    }

    /// Make room for `count` elements; contents are undefined afterwards
    /// when the buffer grew.
    func reserve(_ count: Int) {
        if count > capacity {
            p.deallocate()
            capacity = count
            p = .allocate(capacity: count)
        }
    }

    deinit { p.deallocate() }
}

extension Buffer where S: BinaryFloatingPoint {
    func clear(_ count: Int) { p.update(repeating: 0, count: count) }
}
