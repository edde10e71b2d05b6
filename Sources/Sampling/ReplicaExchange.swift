import Foundation

/// One sweep of replica exchanges between neighbouring temperature levels of every ladder, the
/// rule both MALA parallel tempering (`LangevinEnsemble`) and dynamics replica exchange
/// (`DynamicsReplicaExchange`) use: walker `ladder·levels + m` sits at level m; pairs (m, m+1)
/// with m ≡ `parity` (mod 2) swap with probability min(1, exp((β_m − β_{m+1})(u_m − u_{m+1}))).
///
/// - Parameters:
///   - energies: reduced energies u (at β = 1) of every walker; swapped walkers' entries too.
///   - attempted, accepted: per pair (m, m+1) counters, incremented.
///   - swap: exchanges the rest of two walkers' state (positions, gradients, velocities …).
func replicaExchangeSweep(betas: [Double], ladders: Int, parity: Int, energies: [Double],
                          attempted: inout [Int], accepted: inout [Int], rng: inout SeededGenerator,
                          swap: (_ a: Int, _ b: Int) -> Void) {
    let levels = betas.count
    for ladder in 0..<ladders {
        var m = parity
        while m + 1 < levels {
            let a = ladder * levels + m, b = a + 1
            let logAccept = (betas[m] - betas[m + 1]) * (energies[a] - energies[b])
            attempted[m] += 1
            if log(rng.uniform()) < logAccept {
                accepted[m] += 1
                swap(a, b)
            }
            m += 2
        }
    }
}
