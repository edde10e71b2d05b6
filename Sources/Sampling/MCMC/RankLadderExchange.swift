import Distributed
import Foundation

/// Replica exchange for a temperature ladder split over MPI ranks: rank r holds the levels
/// `ChainRunner.block(levels, parts: ranks, part: r)` of every ladder (one or more per rank).
///
/// At each exchange every rank gathers all energies and decides every neighbouring pair of
/// the round (even or odd pairs, alternating) with min(1, exp((β_m − β_{m+1})(u_m − u_{m+1})))
/// from a generator seeded alike on all ranks: the same inputs, the same arithmetic, so the
/// same decisions everywhere without a broadcast. Pairs inside a rank are swapped
/// in place; pairs across a rank boundary swap configurations (positions, gradients, energy)
/// with the neighbouring rank, so the β = 1 walkers always stay on rank 0.
final class RankLadderExchange {
    let communicator: Communicator
    /// Levels of each rank.
    let blocks: [Range<Int>]
    private var rng: SeededGenerator
    private var rule: ReplicaExchange

    init(communicator: Communicator, betas: [Double], ladders: Int, seed: UInt64) {
        self.communicator = communicator
        blocks = (0..<communicator.size).map { ChainRunner.block(betas.count, parts: communicator.size, part: $0) }
        rng = SeededGenerator(seed: SeededGenerator.derivedSeed(seed, 0x5054))  // "PT"
        rule = ReplicaExchange(betas: betas, ladders: ladders)
    }

    func owner(of level: Int) -> Int { blocks.firstIndex { $0.contains(level) }! }

    /// One exchange round of this rank's walkers `state` ([ladder, local level]). Collective.
    func exchange<S: WalkerState>(_ state: inout S) throws {
        let levels = rule.betas.count, ladders = rule.ladders
        let parts = try communicator.allGather(state.energies)
        // Every walker's energy, [ladder, level], from each rank's [ladder, local level] block.
        var energy = [Double](repeating: 0, count: ladders * levels)
        for (r, part) in parts.enumerated() {
            let block = blocks[r]
            for ladder in 0..<ladders {
                for (i, level) in block.enumerated() { energy[ladder * levels + level] = part[ladder * block.count + i] }
            }
        }
        var decisions: [(ladder: Int, level: Int)] = []  // accepted pairs (ladder, m)
        rule.sweep(energies: energy, rng: &rng) { a, _ in decisions.append((a / levels, a % levels)) }
        apply(decisions, to: &state)
    }

    /// Swaps the accepted pairs: locally, or with the rank on the other side of a boundary
    /// (one message each way per neighbour, right neighbour first, so no rank waits in a cycle).
    private func apply<S: WalkerState>(_ decisions: [(ladder: Int, level: Int)], to state: inout S) {
        let rank = communicator.rank, mine = blocks[rank], betas = rule.betas
        var toRight: [(ladder: Int, level: Int)] = [], toLeft: [(ladder: Int, level: Int)] = []
        for (ladder, m) in decisions {
            let a = owner(of: m), b = owner(of: m + 1)
            if a == rank && b == rank {
                state.swapWalkers(ladder * mine.count + (m - mine.lowerBound),
                                  ladder * mine.count + (m + 1 - mine.lowerBound), betas: (betas[m], betas[m + 1]))
            } else if a == rank {
                toRight.append((ladder, m))
            } else if b == rank {
                toLeft.append((ladder, m + 1))
            }
        }
        func swap(_ walkers: [(ladder: Int, level: Int)], with peer: Int, levelShift: Int) {
            guard !walkers.isEmpty else { return }
            let indices = walkers.map { $0.ladder * mine.count + ($0.level - mine.lowerBound) }
            let outgoing = indices.flatMap { state.packedWalker($0) }
            let incoming = communicator.exchange(outgoing, with: peer)
            let size = outgoing.count / indices.count
            for (k, w) in indices.enumerated() {
                let level = walkers[k].level
                state.setWalker(w, incoming[(k * size)..<((k + 1) * size)], from: betas[level + levelShift], beta: betas[level])
            }
        }
        swap(toRight, with: rank + 1, levelShift: 1)
        swap(toLeft, with: rank - 1, levelShift: -1)
    }

    func resetCounters() { rule.counter.reset() }

    /// The ladder's inverse temperatures (all levels), moved during burn-in (`LadderAdaptation`).
    var betas: [Double] {
        get { rule.betas }
        set { rule.betas = newValue }
    }

    /// Exchange acceptance of each neighbouring pair (m, m+1) since the last reset.
    var acceptance: [Double] { rule.counter.rates }
}
