import ArgumentParser
import Distributed
import Foundation

/// Runs a subcommand's work on every rank of `world` so that a failure on any rank stops
/// them all, none hangs: a rank whose `body` throws tells the others (`Communicator.fail`),
/// which then throw from the collective they wait in (at the latest the closing
/// `synchronize`, so `body` may throw anywhere, after its own last collective too). Rank 0 prints its own error (its own
/// failure, or the failing rank's message it received) before every rank finalises MPI and
/// exits with status 1 (130 for an interrupt). One rank without mpirun: `body` as is.
func onEveryRank<T>(_ world: Communicator, _ body: () throws -> T) throws -> T {
    let result: T
    do {
        result = try body()
        try world.synchronize()  // the last collective: a rank failing late still stops the others
    } catch {
        guard world.isDistributed else { throw error }
        let code = error as? ExitCode
        _ = world.fail(code != nil ? "stopped (exit code \(code!.rawValue))" : "\(error)")
        if world.isRoot && code == nil {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
        }
        world.finish()
        throw code ?? ExitCode.failure
    }
    world.finish()
    return result
}

extension Communicator {
    /// Threads of a diffusion sampler's network for `--threads T`: T per rank under mpirun;
    /// alone at most 2, the network's threads before ranks existed (single-process runs unchanged).
    func networkThreads(_ threads: Int) -> Int { isDistributed ? threads : min(2, threads) }
}
