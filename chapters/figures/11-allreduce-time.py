"""Times MPI's Allreduce of the chapter's two gradient sizes between the ranks of one job,
after a barrier, so that waiting for a slower rank is left out (chapter 11).

    .venv/bin/mpiexec -n 2 .venv/bin/python chapters/figures/11-allreduce-time.py

Prints, for each size, the median seconds of one in-place float32 sum over 30 repetitions
and the bandwidth it implies under the ring model, 2 (N - 1) / N * bytes / seconds.
"""

import time

import numpy as np
from mpi4py import MPI

SIZES = [("GPT shakespeare-char-cpu", 809_856), ("LSTM ptb-small", 4_653_200)]
REPEATS = 30


def median_allreduce_seconds(comm, entries: int) -> float:
    buffer = np.ones(entries, dtype=np.float32)
    times = []
    for _ in range(REPEATS):
        comm.Barrier()
        started = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main():
    comm = MPI.COMM_WORLD
    n = comm.Get_size()
    for label, entries in SIZES:
        seconds = median_allreduce_seconds(comm, entries)
        if comm.Get_rank() == 0:
            moved = 2 * (n - 1) / n * entries * 4
            print(f"{label}: {entries * 4 / 1e6:.2f} MB, Allreduce over {n} ranks "
                  f"{1e3 * seconds:.2f} ms (median of {REPEATS}), ring-model bandwidth "
                  f"{moved / seconds / 1e9:.2f} GB/s")


if __name__ == "__main__":
    main()
