"""The thread policy: BLAS's thread count, and kernels split over threads of our own.

Two places choose threads. (1) A kernel made of many small independent BLAS products
(attention) splits them over threads of ours, each running single-threaded BLAS:
``split_over_threads``. (2) A recurrent time loop (tinylm/functional/{rnn,lstm,gru}.py) makes
one small product per step, strictly in sequence, and keeps or drops BLAS's own threads by
the machine's load: ``time_loop_blas``, overridden by ``$TINYLM_LOOP_THREADS``. Both use the
one ``single_threaded_blas``.

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
import os
from concurrent.futures import ThreadPoolExecutor

from tinylm.kernels import parallel_chunks

_POOL: ThreadPoolExecutor | None = None
_POOL_WORKERS = 0
_BLAS_LIBRARIES: list | None = None      # threadpoolctl controllers of the loaded BLAS
LOOP_THREADS_ENV_VAR = "TINYLM_LOOP_THREADS"


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


def machine_is_oversubscribed() -> bool:
    """True when more threads want to run than there are cores (1-minute load average)."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1)
    except OSError:                  # no load average on this platform
        return False


def time_loop_blas():
    """The BLAS threading for a recurrent time loop: a context manager.

    Each step's product h_{t-1} W_h is small ([B, H] x [H, G*H]) and the steps are strictly
    sequential, so a BLAS thread team forks and joins on every step. On an idle machine that
    still pays (measured for [32, 256] x [256, 1024] on 2 cores: 155 us with two OpenBLAS
    threads, 274 us with one). On an oversubscribed machine it is a disaster: a team member
    that is not scheduled stalls the others, which spin while they wait, and the time loop
    ran ten times slower than on one thread. So the loop keeps BLAS's own threading unless
    the load average says the cores are oversubscribed; then it runs on one thread.
    ``$TINYLM_LOOP_THREADS`` overrides: ``1`` always one thread, ``blas`` always BLAS's own
    threading, ``auto`` (the default) decides by the load.
    """
    choice = os.environ.get(LOOP_THREADS_ENV_VAR, "auto").strip().lower()
    if choice not in ("auto", "1", "blas"):
        raise ValueError(f"{LOOP_THREADS_ENV_VAR}={choice!r} is not one of 'auto', '1', 'blas'.")
    if choice == "1" or (choice == "auto" and machine_is_oversubscribed()):
        return single_threaded_blas()
    return contextlib.nullcontext()
