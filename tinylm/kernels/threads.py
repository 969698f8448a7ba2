"""Splitting a kernel over threads of our own, with BLAS single-threaded inside them.

Some kernels are a sequence of many small BLAS products -- causal attention makes one
[T, hd] x [hd, T] product per (batch row, head) for each of its six matrix products. OpenBLAS
would spread every one of them over its own threads, which for products this small gains
little. Measured on 2 cores, the 96 products Q K^T of a [16, 6, 256, 64] batch: 16.1 ms
with one BLAS thread, 12.9 ms with OpenBLAS's two, 9.3 ms with two threads of ours each
running single-threaded BLAS on half of the batch. The last is what PyTorch's CPU
attention does too.

``numpy.matmul`` releases Python's GIL while BLAS works, and numba kernels compiled with
``nogil=True`` release it too, so the threads really run at the same time. BLAS's thread
count is set through threadpoolctl (the libraries' own ``set_num_threads``) and restored
afterwards.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

from tinylm.kernels import parallel_chunks

_POOL: ThreadPoolExecutor | None = None
_POOL_WORKERS = 0
_BLAS_LIBRARIES: list | None = None      # threadpoolctl controllers of the loaded BLAS


def _blas_libraries() -> list:
    global _BLAS_LIBRARIES
    if _BLAS_LIBRARIES is None:
        from threadpoolctl import ThreadpoolController
        _BLAS_LIBRARIES = ThreadpoolController().select(user_api="blas").lib_controllers
    return _BLAS_LIBRARIES


@contextlib.contextmanager
def single_threaded_blas():
    """Within the block every loaded BLAS library runs on the calling thread only."""
    libraries = _blas_libraries()
    saved = [lib.num_threads for lib in libraries]
    for lib in libraries:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libraries, saved):
            lib.set_num_threads(n)


def _pool(workers: int) -> ThreadPoolExecutor:
    """The shared pool, created on first use and re-created larger if more threads are asked."""
    global _POOL, _POOL_WORKERS
    if workers > _POOL_WORKERS:
        _POOL, _POOL_WORKERS = ThreadPoolExecutor(workers, thread_name_prefix="tinylm"), workers
    return _POOL


def split_over_threads(fn, n: int, work: int) -> None:
    """Call ``fn(lo, hi)`` on consecutive ranges covering [0, n): one range per thread
    (numba's thread count), BLAS single-threaded meanwhile; one call ``fn(0, n)`` in this
    thread when ``work`` (elements of work) is small. The ranges must touch disjoint data."""
    chunks = parallel_chunks(work, n)
    if chunks == 1:
        fn(0, n)
        return
    bounds = [(c * n // chunks, (c + 1) * n // chunks) for c in range(chunks)]
    with single_threaded_blas():
        others = [_pool(chunks - 1).submit(fn, lo, hi) for lo, hi in bounds[1:]]
        fn(*bounds[0])                                     # the first range in this thread
        for future in others:
            future.result()                                # re-raises a worker's error
