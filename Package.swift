// swift-tools-version:6.0
//
// ensemble — equilibrium (Boltzmann) sampling of particle systems:
// energy plugins behind a C ABI, MCMC and neural diffusion samplers,
// AMBER NetCDF output.
import PackageDescription

/// Release builds of the numeric targets use AVX2/FMA (every machine of this
/// project has them, see ../shared/RECIPES.md) and drop overflow checks.
let fast: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"], .when(configuration: .release)),
]

let package = Package(
    name: "ensemble",
    platforms: [.macOS(.v13)],
    // MARK: - Products
    products: [
        .executable(name: "ensemble", targets: ["Host"]),
        .library(name: "Equivariant", targets: ["Equivariant"]),
        .library(name: "Sampling", targets: ["Sampling"]),
        .library(name: "Trajectory", targets: ["Trajectory"]),
        .library(name: "Analysis", targets: ["Analysis"]),
        // Energy plugins: shared libraries loaded with dlopen by the host.
        .library(name: "LennardJones", type: .dynamic, targets: ["LennardJones"]),
        .library(name: "DoubleWell", type: .dynamic, targets: ["DoubleWell"]),
        .library(name: "Alanine", type: .dynamic, targets: ["Alanine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // MARK: - Public contract
        .target(name: "EnsemblePluginABI", path: "Sources/EnsemblePluginABI"),

        // MARK: - System libraries
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CNetCDF", path: "Sources/CNetCDF", pkgConfig: "netcdf",
                       providers: [.apt(["libnetcdf-dev"])]),
        // Open MPI; the predefined handles come through inline accessors in shim.h.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),

        // MARK: - Libraries
        // Statistics of sample sets: batch means, convergence diagnostics (τ, ESS, split-R̂),
        // Ramachandran histograms and basin populations; no project dependency (Sampling re-exports it).
        .target(name: "Analysis", swiftSettings: fast),
        .target(name: "Equivariant", dependencies: ["CBLAS"], swiftSettings: fast),
        .target(name: "Trajectory", dependencies: ["CNetCDF"], swiftSettings: fast),
        .target(name: "PluginHost", dependencies: ["EnsemblePluginABI"], swiftSettings: fast),
        // Ranks of one run: one process alone, or the ranks of mpirun (`Communicator`).
        .target(name: "Distributed", dependencies: ["CMPI"], swiftSettings: fast),
        .target(name: "Sampling", dependencies: ["Analysis", "Equivariant", "PluginHost", "Distributed"], swiftSettings: fast),

        // MARK: - Command-line host
        .executableTarget(
            name: "Host",
            dependencies: [
                "PluginHost", "Sampling", "Trajectory", "Equivariant", "Distributed", "Analysis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: fast),

        // MARK: - Shipped energy plugins (import only the ABI)
        .target(name: "LennardJones", dependencies: ["EnsemblePluginABI"],
                path: "Sources/Plugins/LennardJones", swiftSettings: fast),
        .target(name: "DoubleWell", dependencies: ["EnsemblePluginABI"],
                path: "Sources/Plugins/DoubleWell", swiftSettings: fast),
        .target(name: "Alanine", dependencies: ["EnsemblePluginABI"],
                path: "Sources/Plugins/Alanine", swiftSettings: fast),

        // MARK: - Benchmarks
        .executableTarget(name: "Benchmarks",
                          dependencies: ["Equivariant", "PluginHost", "Sampling"],
                          swiftSettings: fast),

        // MARK: - Tests
        .target(name: "TestSupport", dependencies: ["PluginHost"], path: "Tests/TestSupport"),
        .testTarget(name: "PluginHostTests", dependencies: ["PluginHost", "Sampling", "TestSupport"]),
        .testTarget(name: "TrajectoryTests", dependencies: ["Trajectory", "TestSupport"]),
        .testTarget(name: "SamplingTests", dependencies: ["Sampling", "PluginHost", "TestSupport"]),
        .testTarget(name: "EquivariantTests", dependencies: ["Equivariant", "TestSupport"]),
        .testTarget(name: "AlanineTests", dependencies: ["PluginHost", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["Trajectory", "TestSupport"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "TestSupport"]),
        .testTarget(name: "MPITests", dependencies: ["Distributed", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
