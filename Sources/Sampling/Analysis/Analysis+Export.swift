// Statistics, convergence diagnostics and the Ramachandran analysis live in the `Analysis`
// module (no project dependency, shared with later analyses); re-exported so that every
// `import Sampling` sees them as before.
@_exported import Analysis
