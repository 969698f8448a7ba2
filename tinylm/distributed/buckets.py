"""Flat gradient buckets: the parameters' gradients (and, for ZeRO, their values) as views
into a few contiguous buffers, reduced across ranks in place (chapter 11).

A model's gradient is dozens of arrays of every size. Reducing each on its own would pay
the latency of one collective per array; copying them into one buffer and back would pay
two passes over memory. Instead every ``p.grad`` *is* a slice of a flat buffer: the
backward pass adds into the buffer directly, and one ``Allreduce`` per bucket reduces it
where it lies (MPI_IN_PLACE). Buckets hold consecutive parameters, in the optimizer's order,
up to ``bucket_bytes`` each (a larger parameter is a bucket of its own), as PyTorch's DDP
buckets (25 MB) and llm.c's single flat buffer do.

For ZeRO (tinylm/distributed/zero.py) bucket b's n_b entries are split into N contiguous
slices, rank r owning [n_b r // N, n_b (r + 1) // N): ``Reduce_scatter`` gives each rank the
sum of its slice only, and ``Allgatherv`` of the parameter values sends each rank's updated
slice to every other.

On a GPU the buffers live in device memory; MPI is not assumed to read it (that needs a
CUDA-aware MPI build), so each collective copies its bucket to host memory and back: one
device-to-host copy, and so one synchronisation, per bucket per step.

``CommStats`` counts what moved: the payload bytes of every collective and the seconds spent
in them (waiting for the slowest rank included).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

import numpy

from tinylm.backend import get_array_module, to_numpy

DEFAULT_BUCKET_BYTES = 4 * 2 ** 20


@dataclasses.dataclass
class CommStats:
    """Collectives since the last ``reset``: how many, their payload bytes, their seconds."""

    calls: int = 0
    payload_bytes: int = 0
    seconds: float = 0.0

    def reset(self) -> None:
        self.calls, self.payload_bytes, self.seconds = 0, 0, 0.0


def partition(sizes: list, itemsize: int, bucket_bytes: int) -> list:
    """Parameter sizes (entries) -> buckets [[index, ...], ...] of consecutive parameters,
    each at most ``bucket_bytes`` unless a single parameter is larger."""
    buckets, current, held = [], [], 0
    for i, size in enumerate(sizes):
        if current and (held + size) * itemsize > bucket_bytes:
            buckets.append(current)
            current, held = [], 0
        current.append(i)
        held += size
    return buckets + [current] if current else buckets


def rank_slices(n: int, size: int) -> tuple[list, list]:
    """(counts, offsets) of the N contiguous slices of n entries: slice r is
    [n r // N, n (r + 1) // N)."""
    offsets = [n * r // size for r in range(size)]
    return [n * (r + 1) // size - offsets[r] for r in range(size)], offsets


class FlatBuckets:
    """``params`` (one dtype, one device) laid out in flat buckets; every ``p.grad`` becomes
    a view into ``grads[b]`` and, with ``flat_values``, every ``p.data`` into ``values[b]``.

    Bind after the model has its final dtype, device and values (``Module.to`` and
    ``load_state_dict`` give a parameter new arrays, which would no longer be the views)."""

    def __init__(self, params, world, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                 flat_values: bool = False):
        self.params, self.world, self.stats = list(params), world, CommStats()
        first = self.params[0].data
        odd = [tuple(p.shape) for p in self.params if p.dtype != first.dtype
               or get_array_module(p.data) is not get_array_module(first)]
        if odd:
            raise ValueError(f"FlatBuckets: every parameter must share dtype {first.dtype} and "
                             f"device; parameters of shapes {odd[:3]} differ.")
        self.xp, self.dtype = get_array_module(first), first.dtype
        self.members = partition([p.size for p in self.params], first.itemsize, bucket_bytes)
        self.sizes = [sum(self.params[i].size for i in m) for m in self.members]
        self.start_of = {}                     # parameter index -> its first entry in its bucket
        for members in self.members:
            start = 0
            for i in members:
                self.start_of[i], start = start, start + self.params[i].size
        self.grads = [self._bind(m, n, "grad") for m, n in zip(self.members, self.sizes)]
        self.values = ([self._bind(m, n, "data") for m, n in zip(self.members, self.sizes)]
                       if flat_values else None)

    def _bind(self, members: list, n: int, field: str):
        """A flat buffer of n entries holding ``field`` of the member parameters, each
        parameter's array replaced by its view (its current values copied in)."""
        flat = self.xp.empty(n, dtype=self.dtype)
        for i in members:
            p, start = self.params[i], self.start_of[i]
            view = flat[start:start + p.size].reshape(p.shape)
            view[...] = getattr(p, field)
            setattr(p, field, view)
        return flat

    def pieces(self, b: int, lo: int, hi: int):
        """(parameter index, start, stop) of each parameter overlapping entries [lo, hi) of
        bucket b, start/stop counted in the bucket."""
        for i in self.members[b]:
            start, stop = self.start_of[i], self.start_of[i] + self.params[i].size
            if start < hi and stop > lo:
                yield i, max(start, lo), min(stop, hi)

    def own_slice(self, b: int) -> tuple[int, int]:
        """[lo, hi) of bucket b owned by this rank (ZeRO)."""
        counts, offsets = rank_slices(self.sizes[b], self.world.size)
        return offsets[self.world.rank], offsets[self.world.rank] + counts[self.world.rank]

    @property
    def bytes_per_bucket(self) -> list:
        return [n * self.dtype.itemsize for n in self.sizes]

    # -- the collectives, each through host memory when the buffers are on a device ---------
    def allreduce_grads(self) -> None:
        """grads[b] <- sum over ranks of grads[b], in place, bucket by bucket."""
        from mpi4py import MPI
        for flat in self.grads:
            host = _on_host(flat)
            with self._timed(host.nbytes):
                self.world.comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
            _write_back(flat, host)

    def reduce_scatter_grads(self, shards: list) -> None:
        """shards[b] <- this rank's slice of the sum over ranks of grads[b]."""
        from mpi4py import MPI
        for flat, shard, n in zip(self.grads, shards, self.sizes):
            counts, _ = rank_slices(n, self.world.size)
            host, mine = _on_host(flat), _on_host(shard)
            with self._timed(host.nbytes):
                self.world.comm.Reduce_scatter(host, mine, recvcounts=counts, op=MPI.SUM)
            _write_back(shard, mine)

    def allgather_values(self) -> None:
        """values[b] <- every rank's own slice of values[b] (Allgatherv, in place)."""
        from mpi4py import MPI
        for flat, n in zip(self.values, self.sizes):
            counts, offsets = rank_slices(n, self.world.size)
            host = _on_host(flat)
            with self._timed(host.nbytes):
                self.world.comm.Allgatherv(MPI.IN_PLACE, [host, (counts, offsets)])
            _write_back(flat, host)

    def gather_to_root(self, b: int, mine):
        """Bucket b's slices ``mine`` of every rank, concatenated on rank 0 (None elsewhere):
        a checkpoint of ZeRO's sharded optimizer state."""
        counts, offsets = rank_slices(self.sizes[b], self.world.size)
        whole = numpy.empty(self.sizes[b], dtype=self.dtype) if self.world.is_root else None
        receive = None if whole is None else [whole, (counts, offsets)]
        self.world.comm.Gatherv(to_numpy(mine), receive, root=0)
        return whole

    @contextlib.contextmanager
    def _timed(self, payload_bytes: int):
        started = time.perf_counter()
        yield
        self.stats.calls += 1
        self.stats.payload_bytes += payload_bytes
        self.stats.seconds += time.perf_counter() - started


def _on_host(flat):
    """``flat`` itself when it is a NumPy array, else a host copy of the device buffer."""
    return flat if isinstance(flat, numpy.ndarray) else to_numpy(flat)


def _write_back(flat, host) -> None:
    """The reduced host copy back into the device buffer (nothing for a host buffer)."""
    if host is not flat:
        flat[...] = get_array_module(flat).asarray(host)
