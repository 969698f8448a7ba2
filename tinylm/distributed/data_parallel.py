"""One rank's part in a data-parallel run: what the training loop calls instead of the
optimizer (chapter 11).

Why averaging gradients is training on the big batch. The loss of a global batch of n
targets is their mean, L = (1/n) sum_i l_i. Rank r holds n_r of them, with mean
L_r = (1/n_r) sum_{i in r} l_i, so

    L = sum_r (n_r / n) L_r          and, the gradient being linear,
    dL/dtheta = sum_r (n_r / n) dL_r/dtheta.

So each rank back-propagates its own loss with the upstream gradient n_r / n (instead of 1)
and the ranks' gradients are *summed* (Allreduce): every rank then holds the gradient of the
global batch, clips it by the same global norm and takes the same optimizer step. With B/N
rows of T targets each, n_r / n = 1/N and this is the plain average; the weights matter when
a loss skips targets (an ignore_index), where the n_r differ. n = sum_r n_r and L come from
one Allreduce of the pair (n_r L_r, n_r) before the backward pass.

    parallel = DataParallel(world, zero=1)
    optimizer, batcher = parallel.distribute(model, optimizer, batcher, cfg.batch_size)
    loss, share = optimizer.global_loss(local_loss, targets)   # after model.forward
    model.backward(share)
    optimizer.reduce_gradients()                                # Allreduce / Reduce_scatter
    optimizer.clip_grad_norm(1.0); optimizer.step(); optimizer.zero_grad()

``tinylm.train.loop.data_parallel_step`` is that sequence.
"""

from __future__ import annotations

from tinylm.backend import to_numpy
from tinylm.distributed.buckets import DEFAULT_BUCKET_BYTES, FlatBuckets
from tinylm.distributed.evaluation import evaluate_lm_sharded
from tinylm.distributed.sharding import ShardedBatcher, rows_of_rank, shard_dropout
from tinylm.distributed.world import check_same_run, sum_over_ranks
from tinylm.distributed.zero import ZeroOptimizer
from tinylm.optim import clip_grad_norm

ZERO_STAGES = (0, 1)


class DataParallel:
    """The gradient reduction, the (optionally sharded) optimizer step and the sharded
    evaluation of rank ``world.rank``; ``zero=1`` shards the optimizer state (ZeRO-1)."""

    def __init__(self, world, zero: int = 0, bucket_bytes: int = DEFAULT_BUCKET_BYTES):
        if zero not in ZERO_STAGES:
            raise ValueError(f"--zero {zero}: tinylm has ZeRO stage 1 (the optimizer state "
                             "sharded) and 0 (off); stages 2 and 3 are not implemented.")
        self.world, self.zero, self.bucket_bytes = world, zero, bucket_bytes
        self.optimizer = self.buckets = self.model_params = self.rows = None
        self.steps = 0

    def distribute(self, model, optimizer, batcher, batch_size: int):
        """Bind the gradients into buckets, shard dropout and the batch, and (ZeRO) the
        optimizer state -> (self, as the loop's optimizer; this rank's batcher). Call it
        after the model has its final device, dtype and values (a restored checkpoint's)."""
        self.rows = rows = rows_of_rank(batch_size, self.world)
        shard_dropout(model, rows, batch_size)
        self.model_params = model.parameters()
        self.buckets = FlatBuckets(optimizer.params, self.world, self.bucket_bytes,
                                   flat_values=self.zero == 1)
        self.optimizer = ZeroOptimizer(optimizer, self.buckets) if self.zero else optimizer
        return self, ShardedBatcher(batcher, rows)

    def check_same_start(self, model, batcher, **values) -> None:
        """Every rank starts from the same model (configuration and parameters: the same
        initialisation or checkpoint), batcher position and ``values`` (settings, data): one
        Allgather of their digests (``check_same_run``), before the first collective of a
        step could hang on a disagreement."""
        parameters = b"".join(to_numpy(p.data).tobytes() for p in model.parameters())
        check_same_run(self.world, {"model configuration": model.config_dict(),
                                    "model parameters": parameters,
                                    "batcher position": batcher.state_dict(),
                                    **{name.replace("_", " "): value
                                       for name, value in values.items()}})

    # -- one step ----------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self.optimizer.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.optimizer.lr = value

    def global_loss(self, loss, targets: int) -> tuple[float, float]:
        """(L, n_r / n): the global batch's mean loss and the upstream gradient of this
        rank's mean loss ``loss`` over its ``targets`` (module docstring)."""
        weighted, n = sum_over_ranks(self.world, [float(to_numpy(loss)) * targets, targets])
        return float(weighted / n), targets / float(n)

    def reduce_gradients(self) -> None:
        """Sum the ranks' weighted gradients: in place (Allreduce), or each rank's slices
        (ZeRO's Reduce_scatter)."""
        if self.zero:
            self.optimizer.reduce_gradients()
        else:
            self.buckets.allreduce_grads()

    def clip_grad_norm(self, max_norm: float):
        """Clip the global batch's gradient by its global norm (the same on every rank)."""
        if self.zero:
            return self.optimizer.clip_grad_norm(max_norm)
        return clip_grad_norm(self.model_params, max_norm)

    def step(self) -> None:
        self.optimizer.step()
        self.steps += 1

    def zero_grad(self) -> None:
        for flat in self.buckets.grads:
            flat[...] = 0

    # -- evaluation, checkpoints, reports ----------------------------------------------------
    def evaluate_lm(self, model, ids, batch_size: int, block_size: int, xp,
                    max_batches: int = 0) -> dict:
        """tinylm.evaluate.evaluate_lm, sharded over the ranks and reduced."""
        return evaluate_lm_sharded(self.world, model, ids, batch_size, block_size, xp,
                                   max_batches)

    def state_dict(self) -> dict:
        """The optimizer's state in the one-process format on rank 0, {} on the others (a
        collective under ZeRO: every rank calls it)."""
        if self.zero:
            return self.optimizer.state_dict()
        return self.optimizer.state_dict() if self.world.is_root else {}

    def memory(self) -> dict:
        """Bytes per rank: parameters, gradients, optimizer state; and the optimizer state
        one unsharded copy holds."""
        params = sum(p.data.nbytes for p in self.buckets.params)
        full = self.optimizer.full if self.zero else self.optimizer
        unsharded = sum(p.data.nbytes * len(full._state_names(group))
                        for group in full.param_groups for p in group["params"])
        state = self.optimizer.state_bytes() if self.zero else unsharded
        return {"parameters": params, "gradients": params, "optimizer_state": state,
                "optimizer_state_unsharded": unsharded}

    def describe(self) -> str:
        """One line: ranks, rows, buckets, optimizer state per rank."""
        mib = 2.0 ** 20
        memory, buckets = self.memory(), self.buckets
        sizes = ", ".join(f"{b / mib:.1f}" for b in buckets.bytes_per_bucket)
        zero = (f"ZeRO-1: optimizer state {memory['optimizer_state'] / mib:.2f} MiB per rank "
                f"({memory['optimizer_state_unsharded'] / mib:.2f} MiB unsharded)" if self.zero
                else f"optimizer state {memory['optimizer_state'] / mib:.2f} MiB per rank")
        rows = self.rows
        return (f"data parallel over {self.world.size} ranks, {rows.stop - rows.start} rows of "
                f"the global batch each; gradients in {len(buckets.sizes)} bucket(s) of "
                f"[{sizes}] MiB; {zero}")

    def communication(self) -> dict:
        """Per optimizer step so far: collectives, payload bytes and seconds in them."""
        stats, steps = self.buckets.stats, max(self.steps, 1)
        return {"steps": self.steps, "collectives_per_step": stats.calls / steps,
                "payload_bytes_per_step": stats.payload_bytes / steps,
                "seconds_per_step": stats.seconds / steps}
