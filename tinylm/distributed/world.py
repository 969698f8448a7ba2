"""The processes of a job and what they must agree on (chapter 11).

``mpiexec -n N tinylm train ...`` starts N copies of the same program; each is a *rank*
0..N-1 of one MPI communicator. ``World`` is that communicator as tinylm uses it: the rank,
the size and mpi4py's communicator (``None`` in one process, where nothing is imported).

    world = init_world()              # one process unless a launcher's variables say otherwise
    check_same_run(world, parts)      # every rank has the same settings, model and data
    with stop_every_rank_on_error(world, report):
        ...                           # an error on one rank ends the whole job

The launcher is recognised by the variables it sets for its processes (``LAUNCHER_SIZE``),
so a plain ``tinylm train`` never imports mpi4py; under ``mpiexec`` mpi4py is required, and
an mpi4py built against another MPI than the ``mpiexec`` (each process then sees a world of
one) is refused. Only mpi4py's buffer methods (upper-case: ``Allreduce``, ``Allgather``) are
used: no Python object is ever pickled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import signal
import sys

import numpy

from tinylm.checkpoint import canonical_json

# The variables a launcher sets to the number of processes: MPICH's and Intel MPI's Hydra
# (PMI), Open MPI, MVAPICH.
LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
INSTALL_HINT = "pip install 'tinylm[mpi]' (mpi4py and the MPICH library)"


@dataclasses.dataclass(frozen=True)
class World:
    """rank in [0, size) of the job; ``comm`` is mpi4py's COMM_WORLD, None in one process."""

    rank: int = 0
    size: int = 1
    comm: object = None

    @property
    def is_root(self) -> bool:
        """Rank 0 writes checkpoints, logs and the progress bar."""
        return self.rank == 0

    def __str__(self) -> str:
        return f"rank {self.rank} of {self.size}"


def launched_size(environ=os.environ) -> int:
    """The number of processes the launcher started (1 when no launcher's variable is set)."""
    for name in LAUNCHER_SIZE:
        if environ.get(name, "").strip():
            try:
                return int(environ[name])
            except ValueError:
                raise RuntimeError(f"{name}={environ[name]!r} is not a number of processes; "
                                   "was this process started by mpiexec?") from None
    return 1


def init_world() -> World:
    """The job this process belongs to: ``World()`` when run alone, else MPI's world.

    Raises RuntimeError naming the fix when mpiexec started several processes but mpi4py
    is missing, or when mpi4py's MPI library is not the launcher's."""
    launched = launched_size()
    if launched <= 1:
        return World()
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError(f"this process is one of {launched} started by mpiexec, but mpi4py "
                           f"cannot be imported ({e}); install it with {INSTALL_HINT}, or "
                           "run tinylm without mpiexec.") from e
    comm = MPI.COMM_WORLD
    if comm.Get_size() != launched:
        raise RuntimeError(f"mpiexec started {launched} processes but MPI sees a world of "
                           f"{comm.Get_size()}: mpi4py is linked to another MPI library "
                           f"({MPI.Get_library_version().splitlines()[0].strip()}) than the "
                           "mpiexec that started it. Use the mpiexec of that library (for "
                           f"the PyPI wheels: {os.path.dirname(sys.executable)}/mpiexec).")
    return World(comm.Get_rank(), comm.Get_size(), comm)


def sum_over_ranks(world: World, values) -> numpy.ndarray:
    """The sums over the ranks of a few numbers (one Allreduce of float64), on every rank."""
    buffer = numpy.array(values, dtype=numpy.float64)
    if world.size > 1:
        from mpi4py import MPI
        world.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
    return buffer


def digest(value) -> bytes:
    """sha256 of bytes, of an array's bytes, or of anything else's canonical JSON text."""
    if isinstance(value, numpy.ndarray):
        value = numpy.ascontiguousarray(value).tobytes()
    elif not isinstance(value, bytes):
        value = canonical_json(value).encode()
    return hashlib.sha256(value).digest()


def check_same_run(world: World, parts: dict) -> None:
    """Every rank must hold the same ``parts`` (name -> bytes, array or JSON-able value).

    Each rank hashes each part; the digests [size, parts, 32] are gathered on every rank
    (Allgather of bytes), so every rank sees the same table and raises the same error, naming
    the parts that differ and which ranks hold which: a job started with different flags,
    data or tinylm versions on its machines stops before its first step."""
    if world.size == 1:
        return
    names = sorted(parts)
    mine = numpy.frombuffer(b"".join(digest(parts[n]) for n in names), dtype=numpy.uint8)
    table = numpy.empty((world.size, mine.size), dtype=numpy.uint8)
    world.comm.Allgather(mine, table)
    table = table.reshape(world.size, len(names), 32)
    differing = [f"{name} ({_holders(table[:, i])})" for i, name in enumerate(names)
                 if (table[:, i] != table[0, i]).any()]
    if differing:
        raise ValueError("the ranks of this job disagree on " + "; ".join(differing) +
                         ". Start every rank with the same command line, data, checkpoint "
                         "and tinylm version (on several machines: the same files on each).")


def _holders(digests) -> str:
    """'ranks 0, 2: 3f2a1b9c; rank 1: 77e0d4a1' for one part's digests [size, 32]."""
    groups = {}
    for rank, d in enumerate(digests):
        groups.setdefault(bytes(d).hex()[:8], []).append(rank)
    return "; ".join(f"rank{'s' if len(r) > 1 else ''} {', '.join(map(str, r))}: {h}"
                     for h, r in groups.items())


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill PID``) of one rank, turned into an interruption between two steps."""


def _raise_terminated(signum, frame):
    raise Terminated("terminated (SIGTERM)")


@contextlib.contextmanager
def stop_every_rank_on_error(world: World, report):
    """Within the block, an exception on one rank ends the job instead of hanging it.

    The other ranks would wait for the failed one in their next collective for ever; so the
    failing rank prints ``report(error)`` (its message) and calls MPI_Abort, which makes the
    launcher stop every process. SIGTERM is turned into ``Terminated`` (a KeyboardInterrupt)
    so that the training loop names the checkpoint that survives before the job ends. A
    rank killed outright (SIGKILL) says nothing: the launcher reports the lost process and
    stops the others itself. In one process the block runs unchanged."""
    if world.size == 1:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except BaseException as error:  # noqa: BLE001 - every error must stop every rank
        code = report(error)
        sys.stdout.flush()
        sys.stderr.flush()
        world.comm.Abort(code or 1)
    finally:
        signal.signal(signal.SIGTERM, previous)
