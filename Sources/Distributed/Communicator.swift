import Foundation

/// A rank stopped the run: which rank, and its message. Every rank throws the same value
/// (the failure is agreed at a collective), so every rank stops, none hangs.
public struct RankFailure: Error, CustomStringConvertible {
    /// The lowest rank that failed.
    public var rank: Int
    public var message: String
    public var description: String { message }
}

/// The processes of one run: one rank alone (no MPI), or the ranks of `mpirun`.
///
/// Every collective operation first agrees on failure: each rank contributes whether it has
/// failed (one `MPI_Allreduce`, min of the failing rank), so a rank that hit a plugin error
/// or a NaN calls `fail(_:)` and the others, waiting in their next collective, throw the same
/// `RankFailure` with its message instead of waiting forever. Collectives must be called in
/// the same order on every rank (the MPI rule).
///
/// Reductions are deterministic: `sum` gathers to rank 0, adds in rank order and broadcasts,
/// so the result is bit-identical on every rank and from run to run (an `MPI_Allreduce` may
/// add in any order).
public final class Communicator {
    /// This process's rank, 0 ..< size.
    public let rank: Int
    /// The number of ranks.
    public let size: Int
    private let transport: Transport?
    /// The failure agreed at a collective, once there was one; later `fail` calls return it
    /// without communicating (the other ranks have stopped calling collectives).
    public private(set) var agreedFailure: RankFailure?

    /// One rank, no MPI.
    public init() {
        rank = 0
        size = 1
        transport = nil
    }

    init(transport: Transport) {
        self.transport = transport
        rank = transport.rank
        size = transport.size
    }

    /// All processes of this run: MPI's world when started by `mpirun` (Open MPI, PMIx or
    /// PMI variables in the environment), otherwise one rank without touching MPI.
    public static let world: Communicator = {
        guard launchedByMPI(ProcessInfo.processInfo.environment) else { return Communicator() }
        return Communicator(transport: MPITransport.initialize())
    }()

    /// True when the environment says this process is an MPI rank.
    public static func launchedByMPI(_ environment: [String: String]) -> Bool {
        ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"].contains { environment[$0] != nil }
    }

    /// Rank 0: the one that prints, writes files and decides.
    public var isRoot: Bool { rank == 0 }
    /// More than one rank.
    public var isDistributed: Bool { size > 1 }

    // MARK: - Failure agreement

    /// Collective: throws `RankFailure` when any rank has called `fail(_:)` instead.
    public func synchronize() throws { try agree(failure: nil) }

    /// Collective: this rank has failed with `message`. Returns the agreed failure (the
    /// lowest failing rank's message), which every other rank throws from the collective it
    /// is waiting in.
    public func fail(_ message: String) -> RankFailure {
        if let agreedFailure { return agreedFailure }
        do {
            try agree(failure: message)
        } catch let failure as RankFailure {
            return failure
        } catch {}
        return RankFailure(rank: rank, message: message)
    }

    private func agree(failure: String?) throws {
        guard let transport else {
            if let failure { throw RankFailure(rank: 0, message: failure) }
            return
        }
        let first = transport.allMinimum(failure == nil ? size : rank)
        guard first < size else { return }
        let bytes = transport.broadcast(bytes: Array((failure ?? "").utf8), root: first)
        let text = String(decoding: bytes, as: UTF8.self)
        let failure = RankFailure(rank: first, message: first > 0 ? "rank \(first): \(text)" : text)
        agreedFailure = failure
        throw failure
    }

    // MARK: - Collectives

    /// Collective: rank 0 receives every rank's array (lengths may differ), in rank order;
    /// the other ranks receive [].
    public func gather(_ values: [Double]) throws -> [[Double]] {
        try agree(failure: nil)
        guard let transport else { return [values] }
        return transport.gather(values, root: 0)
    }

    /// Collective: `root`'s array on every rank (the others' `values` are ignored).
    public func broadcast(_ values: [Double], from root: Int = 0) throws -> [Double] {
        try agree(failure: nil)
        guard let transport else { return values }
        return transport.broadcast(values, root: root)
    }

    /// Collective: every rank's array (lengths may differ), in rank order, on every rank.
    public func allGather(_ values: [Double]) throws -> [[Double]] {
        try agree(failure: nil)
        guard let transport else { return [values] }
        return transport.allGather(values)
    }

    /// Collective: the element-wise sum over ranks, added in rank order on rank 0 and
    /// broadcast, so every rank holds the same bits.
    public func sum(_ values: [Double]) throws -> [Double] {
        try agree(failure: nil)
        guard let transport else { return values }
        var total: [Double] = []
        if isRoot {
            let parts = transport.gather(values, root: 0)
            total = parts[0]
            for part in parts.dropFirst() {
                precondition(part.count == total.count, "sum: ranks hold arrays of different lengths")
                for i in total.indices { total[i] += part[i] }
            }
        } else {
            _ = transport.gather(values, root: 0)
        }
        return transport.broadcast(total, root: 0)
    }

    /// Collective: the sum over ranks of integer counters (exact).
    public func sum(_ values: [Int]) throws -> [Int] {
        try sum(values.map(Double.init)).map { Int($0) }
    }

    /// Point to point: sends `values` to `peer` and returns what `peer` sent. No failure
    /// agreement: call it right after a collective, with nothing in between that can fail.
    public func exchange(_ values: [Double], with peer: Int) -> [Double] {
        guard let transport, peer != rank else { return values }
        return transport.sendReceive(values, peer: peer)
    }

    /// Collective, last: ends MPI on this rank (MPI_Finalize waits for every rank to get here).
    /// No communicator call may follow.
    public func finish() {
        transport?.finalize()
    }

    /// Ends the run on every rank at once (MPI_Abort), after printing `message`; for
    /// failures that cannot wait for a collective. One rank: prints and exits.
    public func abort(_ message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("\(size > 1 ? "rank \(rank): " : "")\(message)\n".utf8))
        guard let transport else { exit(code) }
        transport.abort(code: code)
    }
}

/// The message-passing operations a `Communicator` builds on (no failure agreement).
protocol Transport: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Variable-length gather to `root`, in rank order; [] on the other ranks.
    func gather(_ values: [Double], root: Int) -> [[Double]]
    /// Variable-length gather to every rank, in rank order.
    func allGather(_ values: [Double]) -> [[Double]]
    /// Variable-length broadcast from `root`.
    func broadcast(_ values: [Double], root: Int) -> [Double]
    func broadcast(bytes: [UInt8], root: Int) -> [UInt8]
    func allMinimum(_ value: Int) -> Int
    func sendReceive(_ values: [Double], peer: Int) -> [Double]
    func finalize()
    func abort(code: Int32) -> Never
}
