"""PyTorch twins of tinylm's models, with tinylm's parameter names: the oracle of the parity
tests and the other side of the benchmarks. torch is imported inside functions only."""
