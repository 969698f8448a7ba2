"""tinylm: language models from theory to practice, every gradient written by hand.

Layers of the house (each imports only from those below):
  1. backend      -- array module (NumPy/CuPy), dtype, random generators, numba switch
  2. kernels      -- hot loops: plain reference + numba version
  3. functional   -- pure forward/backward pairs with their derivations
  4. nn, models   -- Parameter, Module, layers, language models
  5. optim, data, train, generate, evaluate, checkpoint
  6. cli, notebooks/, chapters/, tests/
"""

__version__ = "0.1.0"
