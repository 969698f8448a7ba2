"""Data-parallel training over MPI (layer 5): N processes, one model each, the same losses
as one process with the same global batch. Chapter 11.

    mpiexec -n 2 tinylm train gpt --preset shakespeare-char-cpu [--zero 1]

Modules: world.py (the ranks of a job, the start-up agreement, stopping every rank on an
error), sharding.py (a rank's rows of the batch and of the dropout masks), buckets.py (flat
gradient buffers reduced in place), zero.py (ZeRO-1: the optimizer state sharded),
evaluation.py (validation sharded and reduced), data_parallel.py (what the training loop
calls: the derivation of why summing weighted gradients trains on the global batch).
mpi4py is an optional dependency (``pip install 'tinylm[mpi]'``), imported only when a
launcher started several processes.
"""

from tinylm.distributed.data_parallel import ZERO_STAGES, DataParallel
from tinylm.distributed.world import World, init_world, stop_every_rank_on_error

__all__ = ["DataParallel", "World", "ZERO_STAGES", "init_world", "stop_every_rank_on_error"]
