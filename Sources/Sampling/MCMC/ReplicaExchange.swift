import Foundation

/// Replica exchange between neighbouring temperature levels of every ladder: the one exchange
/// rule of MALA parallel tempering and of dynamics replica exchange, local (`ChainRunner`) or
/// with the ladder split over ranks (`RankLadderExchange`). Walker `ladder·levels + m` sits at
/// level m; each sweep takes the pairs (m, m+1) with m ≡ parity (mod 2), alternating, and swaps
/// a pair with probability min(1, exp((β_m − β_{m+1})(u_m − u_{m+1}))).
struct ReplicaExchange {
    /// Changed only during burn-in (`LadderAdaptation`).
    var betas: [Double]
    let ladders: Int
    private(set) var parity = 0
    /// Per pair (m, m+1).
    var counter: AcceptanceCounter

    init(betas: [Double], ladders: Int) {
        self.betas = betas
        self.ladders = ladders
        counter = AcceptanceCounter(groups: betas.count - 1)
    }

    /// One sweep.
    /// - Parameters:
    ///   - energies: reduced energies u (at β = 1) of every walker [ladders·levels].
    ///   - swap: exchanges two walkers' configurations (positions, gradients, velocities …).
    mutating func sweep(energies: [Double], rng: inout SeededGenerator, swap: (_ a: Int, _ b: Int) -> Void) {
        let levels = betas.count
        for ladder in 0..<ladders {
            var m = parity
            while m + 1 < levels {
                let a = ladder * levels + m, b = a + 1
                let logAccept = (betas[m] - betas[m + 1]) * (energies[a] - energies[b])
                let ok = log(rng.uniform()) < logAccept
                counter.count(ok, group: m)
                if ok { swap(a, b) }
                m += 2
            }
        }
        parity ^= 1
    }

    /// One sweep of a state held whole on this rank.
    mutating func sweep<S: WalkerState>(_ state: inout S, rng: inout SeededGenerator) {
        let levels = betas.count, betas = self.betas
        sweep(energies: state.energies, rng: &rng) { a, b in
            state.swapWalkers(a, b, betas: (betas[a % levels], betas[b % levels]))
        }
    }
}
