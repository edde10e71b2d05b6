print("benchmarks: see Sources/Benchmarks")
