import Equivariant
import Foundation

/// The EGNN of a diffusion sampler as the samplers see it: a vector field with a reverse pass,
/// in Double at its interface whatever the engine's precision. `EGNN<Double>` is one (tests
/// compare it with finite differences); `SinglePrecisionField` runs `EGNN<Float>` — the SIMD
/// micro-kernels the benchmarks measure — behind the same interface, converting at the
/// boundary (Adam keeps its moments in Double; the weights are stored in Float).
public protocol NetworkField: AnyObject {
    var parameters: [Double] { get set }
    var gradients: [Double] { get set }
    var parameterCount: Int { get }
    func zeroGradients()
    /// `conditions`: [batch, conditionCount] conditioning scalars (ln β); empty: zeros.
    func forward(positions: [Double], times: [Double], conditions: [Double]) -> [Double]
    @discardableResult func backward(outputGradient: [Double]) -> [Double]
}

extension NetworkField {
    /// The field with no conditioning (zeros: the target temperature of a conditioned network).
    public func forward(positions: [Double], times: [Double]) -> [Double] {
        forward(positions: positions, times: times, conditions: [])
    }
}

/// Network precision of a diffusion sampler.
public enum NetworkPrecision: String, Codable, Sendable, CaseIterable {
    /// EGNN<Float> with the SIMD kernels (what `ensemble train` runs by default).
    case float
    /// EGNN<Double> (finite-difference tests; checkpoints written before the field existed).
    case double
}

extension EGNN: NetworkField where Scalar == Double {}

/// `EGNN<Float>` behind the Double interface.
public final class SinglePrecisionField: NetworkField {
    public let network: EGNN<Float>

    public init(configuration: EGNNConfiguration, seed: UInt64, threads: Int) throws {
        network = try EGNN<Float>(configuration: configuration, seed: seed, threads: threads)
    }

    public var parameters: [Double] {
        get { network.parameters.map(Double.init) }
        set { network.parameters = newValue.map(Float.init) }
    }
    public var gradients: [Double] {
        get { network.gradients.map(Double.init) }
        set { network.gradients = newValue.map(Float.init) }
    }
    public var parameterCount: Int { network.parameterCount }
    public func zeroGradients() { network.zeroGradients() }

    public func forward(positions: [Double], times: [Double], conditions: [Double]) -> [Double] {
        network.forward(positions: positions.map(Float.init), times: times.map(Float.init),
                        conditions: conditions.map(Float.init)).map(Double.init)
    }

    @discardableResult
    public func backward(outputGradient: [Double]) -> [Double] {
        network.backward(outputGradient: outputGradient.map(Float.init)).map(Double.init)
    }
}
