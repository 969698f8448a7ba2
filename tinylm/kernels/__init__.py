"""Hot loops (layer 2): numba CPU versions of the operations whose plain code is too slow.

This package holds accelerated code only. The specification of each operation -- its
derivation, and the reference forward and backward in array-module code that runs on NumPy
and CuPy alike -- lives in the layer above, in tinylm/functional/<op>.py (the Adam update in
tinylm/optim/adam.py). That file calls the kernel here when ``tinylm.backend.use_numba(...)``
says so (NumPy arrays, numba installed, ``$TINYLM_KERNELS`` not ``reference``); the kernel
must agree with the reference, and tests run both and compare.

A numba kernel here is a serial function over a range of rows (or columns, or elements),
plus a ``parallel=True`` driver that hands chunks of the range to numba's threads. Small
problems call the serial function directly: see ``parallel_chunks``. A kernel that mixes
BLAS products with numba loops (attention) splits its rows over threads of its own
instead, with BLAS single-threaded inside them: see ``threads.py``.
"""

# Below this many elements of work a kernel runs serially in the calling thread.
PARALLEL_MIN_WORK = 1 << 16

# numba fastmath flags of the kernels: reorder sums (so reductions vectorise), fuse
# multiply-adds, use faster libm variants -- but never assume NaN or inf away ('nnan',
# 'ninf'), so a diverging run still shows a non-finite loss.
FASTMATH = {"afn", "reassoc", "contract", "arcp"}

# The options of every numba kernel here: compiled code cached on disk (no recompilation in
# a new process), FASTMATH, and NumPy's error model -- a division by zero gives inf or nan,
# as in the NumPy reference, instead of Python's ZeroDivisionError. The Python model puts a
# zero test in front of every division, and that branch alone stops LLVM from turning a loop
# into SIMD code: an element-wise kernel with one division ran 8x slower.
JIT = {"cache": True, "fastmath": FASTMATH, "error_model": "numpy"}


def parallel_chunks(work: int, units: int) -> int:
    """Into how many chunks a numba kernel splits ``units`` rows/columns/elements holding
    ``work`` elements of work; 1 means "call the serial kernel, launch no threads".

    Waking numba's worker threads costs about 10 us on an idle machine and milliseconds on a
    busy one (a worker that is not scheduled holds up the whole parallel region), so small
    problems stay serial. Larger ones get one chunk per thread: the work per row, column or
    element is uniform, and numba hands each thread an equal share of the ``prange``
    iterations, so more chunks would only add passes (and partial sums).
    """
    import numba

    threads = numba.get_num_threads()
    if work < PARALLEL_MIN_WORK or threads == 1:
        return 1
    return max(1, min(units, threads))
