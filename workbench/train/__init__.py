"""Training: the engine (a generator of typed events), imbalance handling, metrics, run records."""
