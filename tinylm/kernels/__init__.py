"""Hot loops (layer 2): each kernel has a plain array-module reference and, where it pays, a
numba CPU version that must agree with it.

The reference is the specification: readable, and it runs on NumPy and CuPy alike. The
numba version runs when ``tinylm.backend.use_numba(...)`` says so (NumPy arrays, numba
installed, ``$TINYLM_KERNELS`` not ``reference``). Tests run both and compare.
"""
