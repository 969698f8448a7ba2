"""ZeRO stage 1: the optimizer state sharded across the ranks (Rajbhandari et al. 2020; as
llm.c's ``zero_stage 1``). Chapter 11.

Plain data parallelism keeps N identical copies of everything: parameters, gradients and
the optimizer state, which for Adam is two more arrays of the parameters' size (m and v).
But after the gradients are averaged, every rank computes the *same* update of every
weight: N - 1 of those computations, and their state, are redundant. Stage 1 removes them:

    1. Reduce_scatter(g): rank r receives only its slice of the summed gradient,
       g[s_r] = sum_k g_k[s_r], for its slice s_r (1/N of every bucket);
    2. clip: ||g||^2 = Allreduce(sum over own slices of g[s_r]^2), the same on every rank;
    3. rank r updates theta[s_r] with its m[s_r], v[s_r] (the ordinary update rule, applied
       to slices: every rule of tinylm/optim is elementwise, so the numbers are those of
       the unsharded update);
    4. Allgatherv(theta): every rank's updated slice to every rank.

A ring Reduce_scatter and Allgather each move (N - 1)/N of the buffer per rank, together
exactly what one ring Allreduce moves, so stage 1 costs no extra communication; the
optimizer state per rank falls from 2P to 2P/N numbers for Adam.

Each rank's slice of a bucket may cut parameters in two; each piece is an optimizer
``Parameter`` of its own (a view into the flat buffers), in the parameter group of the
weight it comes from, so weight decay still applies to matrices only. The checkpoint holds
the state in the unsharded optimizer's format (gathered on rank 0): a ZeRO run resumes
with or without ZeRO, on any number of ranks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from tinylm.distributed.world import sum_over_ranks
from tinylm.nn.parameter import Parameter
from tinylm.optim.clip import EPS


class Piece(NamedTuple):
    """Entries [start, stop) of bucket ``bucket`` belong to optimizer parameter ``index``."""

    index: int
    bucket: int
    start: int
    stop: int


class ZeroOptimizer:
    """The update of this rank's slices of ``buckets`` (built with ``flat_values``) by the
    rule of ``optimizer``, whose state (a resumed run's) is moved into the slices."""

    def __init__(self, optimizer, buckets):
        self.full, self.buckets = optimizer, buckets
        xp, dtype = buckets.xp, buckets.dtype
        self.slices = [buckets.own_slice(b) for b in range(len(buckets.sizes))]
        self.grads = [xp.zeros(hi - lo, dtype=dtype) for lo, hi in self.slices]
        self.pieces, groups = self._pieces_by_group(optimizer.param_groups)
        if not self.pieces:
            raise ValueError(f"ZeRO-1: {buckets.world} owns no parameter entries (the model "
                             f"has {sum(buckets.sizes)}); use fewer ranks or no ZeRO.")
        self.shard = type(optimizer)(groups, **optimizer.defaults)
        self.names = sorted({name for group in self.shard.param_groups
                             for name in self.shard._state_names(group)})
        self.moments = {n: [xp.zeros(hi - lo, dtype=dtype) for lo, hi in self.slices]
                        for n in self.names}
        self._take_state(optimizer)

    def _pieces_by_group(self, param_groups):
        """The pieces of this rank's slices, group by group, and the optimizer's groups of
        piece parameters (views into the flat values and the reduced gradient slices)."""
        group_of = [g for g, group in enumerate(param_groups) for _ in group["params"]]
        pieces = [[] for _ in param_groups]
        for b, (lo, hi) in enumerate(self.slices):
            for i, start, stop in self.buckets.pieces(b, lo, hi):
                pieces[group_of[i]].append(Piece(i, b, start, stop))
        groups = []
        for group, own in zip(param_groups, pieces):
            if own:
                params = [self._piece_parameter(piece) for piece in own]
                groups.append({**{k: v for k, v in group.items() if k != "params"},
                               "params": params})
        return [piece for own in pieces for piece in own], groups

    def _piece_parameter(self, piece: Piece) -> Parameter:
        lo = self.slices[piece.bucket][0]
        p = Parameter(self.buckets.values[piece.bucket][piece.start:piece.stop])
        p.grad = self.grads[piece.bucket][piece.start - lo:piece.stop - lo]
        return p

    def _views(self, piece: Piece, names) -> dict:
        lo = self.slices[piece.bucket][0]
        return {n: self.moments[n][piece.bucket][piece.start - lo:piece.stop - lo] for n in names}

    def _take_state(self, optimizer) -> None:
        """Each piece's state as views into the flat moments, filled from the unsharded
        optimizer's buffers (a resumed run), which are then released."""
        self.shard.step_count = optimizer.step_count
        j = 0
        for group in self.shard.param_groups:
            names = self.shard._state_names(group)
            for _ in group["params"]:
                piece = self.pieces[j]
                self.shard.state[j] = views = self._views(piece, names)
                saved = optimizer.state[piece.index]
                offset = self.buckets.start_of[piece.index]
                for n, view in views.items():
                    if n in saved:
                        view[...] = saved[n].reshape(-1)[piece.start - offset:piece.stop - offset]
                j += 1
        optimizer.state = [dict() for _ in optimizer.params]

    # -- one step ----------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self.shard.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.shard.lr = self.full.lr = value

    def reduce_gradients(self) -> None:
        """Step 1: this rank's slices of the gradient summed over the ranks."""
        self.buckets.reduce_scatter_grads(self.grads)

    def clip_grad_norm(self, max_norm: float) -> float:
        """Step 2: global-norm clipping of the sharded gradient (tinylm/optim/clip.py's rule,
        the norm summed over the ranks' slices); returns the norm before clipping."""
        xp = self.buckets.xp
        own = sum(float(xp.vdot(g, g)) for g in self.grads)
        total = math.sqrt(sum_over_ranks(self.buckets.world, [own])[0])
        scale = max_norm / (total + EPS)
        if scale < 1.0 or math.isnan(scale):
            for g in self.grads:
                g *= scale
        return total

    def step(self) -> None:
        """Steps 3 and 4: update the own slices, then gather every rank's."""
        self.shard.step()
        self.buckets.allgather_values()

    # -- checkpoints and memory --------------------------------------------------------------
    def state_dict(self) -> dict:
        """The unsharded optimizer's state dict on rank 0 ({} elsewhere); a collective: every
        rank must call it."""
        full, buckets = self.full, self.buckets
        full.step_count = self.shard.step_count
        out = full.state_dict() if buckets.world.is_root else {}     # step, settings, shapes
        if full.step_count == 0:
            return out
        group_of = [g for g, group in enumerate(full.param_groups) for _ in group["params"]]
        for n in self.names:
            for b, members in enumerate(buckets.members):
                whole = buckets.gather_to_root(b, self.moments[n][b])
                if whole is None:
                    continue
                for i in members:
                    if n in full._state_names(full.param_groups[group_of[i]]):
                        p, start = buckets.params[i], buckets.start_of[i]
                        out[f"{n}.{i}"] = whole[start:start + p.size].reshape(p.shape)
        return out

    def state_bytes(self) -> int:
        """Bytes of optimizer state this rank holds."""
        return sum(m.nbytes for buffers in self.moments.values() for m in buffers)

