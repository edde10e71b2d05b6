import CMPI
import Foundation

/// MPI_COMM_WORLD of Open MPI. Initialised once (MPI_THREAD_FUNNELED: only the main thread
/// calls MPI; energy worker threads never do) and finalised by `Communicator.finish()`, not at
/// exit: a rank that exits without finalising (an error before the first collective) makes
/// mpirun end the whole job instead of leaving the others waiting in MPI_Finalize. MPI's
/// default error handler aborts the job on a communication error, so calls return no status.
final class MPITransport: Transport {
    let rank: Int
    let size: Int
    private let comm = ensemble_mpi_comm_world()

    private init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
    }

    static func initialize() -> MPITransport {
        var provided: Int32 = 0
        let status = MPI_Init_thread(nil, nil, ensemble_mpi_thread_funneled(), &provided)
        guard status == ensemble_mpi_success() else {
            FileHandle.standardError.write(Data("MPI_Init_thread failed (code \(status))\n".utf8))
            exit(1)
        }
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(ensemble_mpi_comm_world(), &rank)
        MPI_Comm_size(ensemble_mpi_comm_world(), &size)
        return MPITransport(rank: Int(rank), size: Int(size))
    }

    func gather(_ values: [Double], root: Int) -> [[Double]] {
        var count = Int32(values.count)
        var counts = [Int32](repeating: 0, count: rank == root ? size : 0)
        counts.withUnsafeMutableBufferPointer { c in
            _ = MPI_Gather(&count, 1, ensemble_mpi_int(), c.baseAddress, 1, ensemble_mpi_int(), Int32(root), comm)
        }
        var displacements = [Int32](repeating: 0, count: counts.count)
        for i in counts.indices.dropFirst() { displacements[i] = displacements[i - 1] + counts[i - 1] }
        let total = Int(counts.reduce(0, +))
        var received = [Double](repeating: 0, count: rank == root ? max(total, 1) : 0)
        values.withUnsafeBufferPointer { v in
            received.withUnsafeMutableBufferPointer { r in
                _ = MPI_Gatherv(v.baseAddress, count, ensemble_mpi_double(), r.baseAddress, counts, displacements,
                                ensemble_mpi_double(), Int32(root), comm)
            }
        }
        guard rank == root else { return [] }
        return counts.indices.map {
            Array(received[Int(displacements[$0])..<Int(displacements[$0] + counts[$0])])
        }
    }

    func allGather(_ values: [Double]) -> [[Double]] {
        var count = Int32(values.count)
        var counts = [Int32](repeating: 0, count: size)
        MPI_Allgather(&count, 1, ensemble_mpi_int(), &counts, 1, ensemble_mpi_int(), comm)
        var displacements = [Int32](repeating: 0, count: size)
        for i in counts.indices.dropFirst() { displacements[i] = displacements[i - 1] + counts[i - 1] }
        var received = [Double](repeating: 0, count: max(Int(counts.reduce(0, +)), 1))
        values.withUnsafeBufferPointer { v in
            received.withUnsafeMutableBufferPointer { r in
                _ = MPI_Allgatherv(v.baseAddress, count, ensemble_mpi_double(), r.baseAddress, counts, displacements,
                                   ensemble_mpi_double(), comm)
            }
        }
        return counts.indices.map { Array(received[Int(displacements[$0])..<Int(displacements[$0] + counts[$0])]) }
    }

    func broadcast(_ values: [Double], root: Int) -> [Double] {
        broadcast(values, datatype: ensemble_mpi_double(), root: root)
    }

    func broadcast(bytes: [UInt8], root: Int) -> [UInt8] {
        broadcast(bytes, datatype: ensemble_mpi_byte(), root: root)
    }

    /// The root's array on every rank: its length first, then the elements.
    private func broadcast<T: Numeric>(_ values: [T], datatype: MPI_Datatype, root: Int) -> [T] {
        var count = Int32(values.count)
        MPI_Bcast(&count, 1, ensemble_mpi_int(), Int32(root), comm)
        var buffer = rank == root ? values : [T](repeating: 0, count: Int(count))
        if count > 0 {
            buffer.withUnsafeMutableBufferPointer { b in
                _ = MPI_Bcast(b.baseAddress, count, datatype, Int32(root), comm)
            }
        }
        return buffer
    }

    func allMinimum(_ value: Int) -> Int {
        var mine = Int32(value), result: Int32 = 0
        MPI_Allreduce(&mine, &result, 1, ensemble_mpi_int(), ensemble_mpi_min(), comm)
        return Int(result)
    }

    func sendReceive(_ values: [Double], peer: Int) -> [Double] {
        // Counts first, then the data (both directions at once, so no ordering deadlock).
        var count = Int32(values.count), peerCount: Int32 = 0
        MPI_Sendrecv(&count, 1, ensemble_mpi_int(), Int32(peer), 1, &peerCount, 1, ensemble_mpi_int(), Int32(peer), 1,
                     comm, ensemble_mpi_status_ignore())
        var received = [Double](repeating: 0, count: Int(peerCount))
        values.withUnsafeBufferPointer { v in
            received.withUnsafeMutableBufferPointer { r in
                _ = MPI_Sendrecv(v.baseAddress, count, ensemble_mpi_double(), Int32(peer), 2,
                                 r.baseAddress, peerCount, ensemble_mpi_double(), Int32(peer), 2,
                                 comm, ensemble_mpi_status_ignore())
            }
        }
        return received
    }

    func finalize() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }

    func abort(code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }
}
