extension MCMCSettings {
    /// Settings from the values a command line gives; a nil keeps the default.
    public init(chains: Int, burnIn: Int, thin: Int, samples: Int, seed: UInt64, replicas: Int? = nil,
                maxTemperature: Double? = nil, exchangeEvery: Int? = nil, initialStepSize: Double? = nil) {
        self.init()
        self.chains = chains
        self.burnIn = burnIn
        self.thin = thin
        self.samples = samples
        self.seed = seed
        if let replicas { self.replicas = replicas }
        if let maxTemperature { self.maxTemperature = maxTemperature }
        if let exchangeEvery { self.exchangeEvery = exchangeEvery }
        if let initialStepSize { self.initialStepSize = initialStepSize }
    }
}
