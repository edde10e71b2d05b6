import Distributed
import Foundation

/// Replica exchange for a temperature ladder split over MPI ranks: rank r holds the levels
/// `MCMCRunner.block(levels, parts: ranks, part: r)` of every ladder (one or more per rank).
///
/// At each exchange every rank gathers all energies and decides every neighbouring pair of
/// the round (even or odd pairs, alternating) with min(1, exp((β_m − β_{m+1})(u_m − u_{m+1})))
/// from a generator seeded alike on all ranks: the same inputs, the same arithmetic, so the
/// same decisions everywhere without a broadcast. Pairs inside a rank are swapped
/// in place; pairs across a rank boundary swap configurations (positions, gradients, energy)
/// with the neighbouring rank, so the β = 1 walkers always stay on rank 0.
final class RankLadderExchange {
    let communicator: Communicator
    let betas: [Double]
    let ladders: Int
    /// Levels of each rank.
    let blocks: [Range<Int>]
    private var rng: SeededGenerator
    private var parity = 0
    private var accepted: [Int]
    private var attempted: [Int]

    init(communicator: Communicator, betas: [Double], ladders: Int, seed: UInt64) {
        self.communicator = communicator
        self.betas = betas
        self.ladders = ladders
        blocks = (0..<communicator.size).map { MCMCRunner.block(betas.count, parts: communicator.size, part: $0) }
        rng = SeededGenerator(seed: SeededGenerator.derivedSeed(seed, 0x5054))  // "PT"
        accepted = Array(repeating: 0, count: betas.count - 1)
        attempted = accepted
    }

    func owner(of level: Int) -> Int { blocks.firstIndex { $0.contains(level) }! }

    /// One exchange round. Collective.
    func exchange(_ ensemble: LangevinEnsemble) throws {
        let levels = betas.count
        let parts = try communicator.allGather(ensemble.energies)
        // energy[ladder][level] from each rank's [ladder, local level] block.
        var energy = [[Double]](repeating: [Double](repeating: 0, count: levels), count: ladders)
        for (r, part) in parts.enumerated() {
            let block = blocks[r]
            for ladder in 0..<ladders {
                for (i, level) in block.enumerated() { energy[ladder][level] = part[ladder * block.count + i] }
            }
        }
        var decisions: [Double] = []  // accepted pairs as (ladder, m)
        for ladder in 0..<ladders {
            var m = parity
            while m + 1 < levels {
                let logAccept = (betas[m] - betas[m + 1]) * (energy[ladder][m] - energy[ladder][m + 1])
                attempted[m] += 1
                if log(rng.uniform()) < logAccept {
                    accepted[m] += 1
                    decisions += [Double(ladder), Double(m)]
                }
                m += 2
            }
        }
        parity ^= 1
        apply(decisions, to: ensemble)
    }

    /// Swaps the accepted pairs: locally, or with the rank on the other side of a boundary
    /// (one message each way per neighbour, right neighbour first, so no rank waits in a cycle).
    private func apply(_ decisions: [Double], to ensemble: LangevinEnsemble) {
        let rank = communicator.rank, mine = blocks[rank]
        var toRight: [(ladder: Int, level: Int)] = [], toLeft: [(ladder: Int, level: Int)] = []
        for i in Swift.stride(from: 0, to: decisions.count, by: 2) {
            let ladder = Int(decisions[i]), m = Int(decisions[i + 1])
            let a = owner(of: m), b = owner(of: m + 1)
            if a == rank && b == rank {
                ensemble.swapWalkers(ladder * mine.count + (m - mine.lowerBound),
                                     ladder * mine.count + (m + 1 - mine.lowerBound))
            } else if a == rank {
                toRight.append((ladder, m))
            } else if b == rank {
                toLeft.append((ladder, m + 1))
            }
        }
        func swap(_ walkers: [(ladder: Int, level: Int)], with peer: Int) {
            guard !walkers.isEmpty else { return }
            let indices = walkers.map { $0.ladder * mine.count + ($0.level - mine.lowerBound) }
            let outgoing = indices.flatMap { ensemble.walker($0) }
            let incoming = communicator.exchange(outgoing, with: peer)
            let size = outgoing.count / indices.count
            for (k, w) in indices.enumerated() { ensemble.setWalker(w, incoming[(k * size)..<((k + 1) * size)]) }
        }
        swap(toRight, with: rank + 1)
        swap(toLeft, with: rank - 1)
    }

    func resetCounters() {
        accepted = accepted.map { _ in 0 }
        attempted = attempted.map { _ in 0 }
    }

    /// Exchange acceptance of each neighbouring pair (m, m+1) since the last reset.
    var acceptance: [Double] {
        zip(accepted, attempted).map { $1 > 0 ? Double($0) / Double($1) : .nan }
    }
}
