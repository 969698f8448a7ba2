"""Pruning（剪枝）a trained GPT: set weights to zero, keep them zero while it is fine-tuned.

A mask is a bool array shaped like its parameter, True where the weight is kept; pruning
is W <- W * mask. Three ways to choose the masks:

* ``magnitude`` (unstructured, global). The prunable weights are the four Linear weight
  matrices of every block: attn.c_attn [D, 3D], attn.c_proj [D, D], mlp.c_fc [D, 4D] and
  mlp.c_proj [4D, D] -- 12 L D^2 numbers, the arithmetic of the blocks. Biases and LayerNorm
  gains are left alone (a few per mille of the parameters, and each shifts or scales a whole
  channel). The embeddings are optional (``include_embeddings``): wte is also the output
  head (tied) and wpe the only source of positions, so zeroing their entries removes rarely
  used characters and positions rather than redundant connections. With n prunable weights
  and sparsity s, the k = round(s n) of smallest |w| over all of them together are pruned
  (exactly k, whatever the ties), so a layer whose weights are small loses more.
  The criterion is the first-order intuition: removing w changes a pre-activation by
  w x, so small |w| means a small change (Han et al. 2015).

* ``heads`` (structured). Head h of a layer with H heads of width hd = D / H owns the
  columns h hd .. (h+1) hd - 1 of each of the query, key and value thirds of c_attn (weight
  and bias) and the same rows of attn.c_proj's weight. Zeroing them makes its q, k, v zero,
  hence its output softmax(0) v = 0, and c_proj ignores it anyway: the head is removed.
  Importance is the L2 norm of all its weights, sqrt(sum of squares of its c_attn columns
  and c_proj rows); in each layer the round(s H) least important heads go, so every layer
  keeps the same number (norms of different layers are not comparable: their inputs differ).

* ``neurons`` (structured). MLP neuron j of a layer owns column j of mlp.c_fc (weight and
  bias) and row j of mlp.c_proj's weight; zeroing them gives GELU(0) = 0 and removes it.
  Importance: sqrt(|c_fc[:, j]|^2 + |c_proj[j, :]|^2); round(s 4D) neurons per layer go.

Structured sparsity is the fraction of heads (neurons) removed; ``weight_sparsity`` reports
the fraction of the prunable weights that are zero in any case.

Masks survive training through ``MaskedOptimizer``, a wrapper around any tinylm optimizer:
its ``step()`` zeroes the masked gradients, lets the optimizer step, then multiplies the
weights and every per-parameter buffer (AdamW's two moments) by the mask. The pruned
entries are then exactly zero after any number of steps, whatever weight decay, momentum
or an earlier state would do. It is what the training loop's ``train_step`` is given, so
recovery fine-tuning (``finetune_pruned``) reuses the loop's step, batcher, optimizer and
checkpoint writer unchanged. One caveat: the loop clips the gradient's global norm before
``step()`` masks it, so the pruned entries' gradients count in the norm (the step can only
be clipped more, never less, than with them removed).

Zeros alone save nothing in a dense matrix product; the saving needs sparse kernels or,
for heads and neurons, smaller matrices. Chapter 11, section "Pruning".
"""

from __future__ import annotations

import dataclasses
import math

from tinylm.backend import array_module_for, get_array_module
from tinylm.compress.training import evaluate_into
from tinylm.train.loop import RunState, train_step
from tinylm.train.setup import build_batcher, build_optimizer

BLOCK_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
                 "mlp.c_proj.weight")
EMBEDDINGS = ("wte", "wpe")
STRUCTURED_KINDS = ("heads", "neurons")


def check_sparsity(sparsity: float) -> float:
    """The sparsity as a float; outside [0, 1) raises (1 would remove everything)."""
    s = float(sparsity)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"pruning: sparsity={sparsity!r} must lie in [0, 1) (the fraction "
                         "of weights, heads or neurons to remove; 0.5 removes half).")
    return s


def _check_kind(structured) -> None:
    """None (magnitude) or one of STRUCTURED_KINDS."""
    if structured is not None and structured not in STRUCTURED_KINDS:
        raise ValueError(f"pruning: structured={structured!r} is unknown; use 'heads' "
                         "(attention heads), 'neurons' (MLP neurons) or none (magnitude).")


def prunable_weights(model, include_embeddings: bool = False) -> dict:
    """name -> Parameter of the weights magnitude pruning ranks: every block's four Linear
    weights, and wte, wpe when ``include_embeddings``."""
    params = dict(model.named_parameters())
    names = [f"h.{i}.{w}" for i in range(model.config.n_layer) for w in BLOCK_WEIGHTS]
    if include_embeddings:
        names = [*EMBEDDINGS, *names]
    return {name: params[name] for name in names}


def _least_important(scores, fraction: float):
    """scores [K] -> keep [K] bool, False for the round(fraction K) smallest."""
    xp = get_array_module(scores)
    keep = xp.ones(scores.shape[0], dtype=bool)
    keep[xp.argsort(scores)[:round(fraction * scores.shape[0])]] = False
    return keep


def magnitude_masks(model, sparsity: float, include_embeddings: bool = False) -> dict:
    """name -> keep mask: the round(s n) smallest |w| of the n prunable weights are False."""
    weights = prunable_weights(model, include_embeddings)
    xp = get_array_module(next(iter(weights.values())).data)
    scores = xp.concatenate([xp.abs(p.data).reshape(-1) for p in weights.values()])   # [n]
    keep = _least_important(scores, check_sparsity(sparsity))                          # [n]
    masks, start = {}, 0
    for name, p in weights.items():
        masks[name] = keep[start:start + p.size].reshape(p.shape)
        start += p.size
    return masks


def head_masks(model, sparsity: float) -> dict:
    """Masks of c_attn (weight, bias) and attn.c_proj.weight removing round(s H) heads per
    layer, the ones whose weights have the smallest L2 norm."""
    s = check_sparsity(sparsity)
    H, D = model.config.n_head, model.config.n_embd
    hd = D // H
    masks = {}
    for i, block in enumerate(model.h):
        w_qkv = block.attn.c_attn.weight.data.reshape(D, 3, H, hd)                 # [D, 3, H, hd]
        w_out = block.attn.c_proj.weight.data.reshape(H, hd, D)                    # [H, hd, D]
        norms = ((w_qkv ** 2).sum(axis=(0, 1, 3)) + (w_out ** 2).sum(axis=(1, 2))) ** 0.5
        keep = _least_important(norms, s)                                          # [H]
        xp = get_array_module(keep)
        qkv_columns = xp.broadcast_to(keep[None, :, None], (3, H, hd)).reshape(3 * D)
        masks[f"h.{i}.attn.c_attn.weight"] = xp.broadcast_to(qkv_columns, (D, 3 * D)).copy()
        masks[f"h.{i}.attn.c_attn.bias"] = qkv_columns.copy()
        masks[f"h.{i}.attn.c_proj.weight"] = xp.broadcast_to(
            xp.repeat(keep, hd)[:, None], (D, D)).copy()
    return masks


def neuron_masks(model, sparsity: float) -> dict:
    """Masks of mlp.c_fc (weight, bias) and mlp.c_proj.weight removing round(s 4D) neurons
    per layer, the ones with the smallest sqrt(|c_fc column|^2 + |c_proj row|^2)."""
    s = check_sparsity(sparsity)
    masks = {}
    for i, block in enumerate(model.h):
        w_in, w_out = block.mlp.c_fc.weight.data, block.mlp.c_proj.weight.data    # [D, 4D], [4D, D]
        norms = ((w_in ** 2).sum(axis=0) + (w_out ** 2).sum(axis=1)) ** 0.5        # [4D]
        keep = _least_important(norms, s)                                          # [4D]
        xp = get_array_module(keep)
        masks[f"h.{i}.mlp.c_fc.weight"] = xp.broadcast_to(keep[None, :], w_in.shape).copy()
        masks[f"h.{i}.mlp.c_fc.bias"] = keep.copy()
        masks[f"h.{i}.mlp.c_proj.weight"] = xp.broadcast_to(keep[:, None], w_out.shape).copy()
    return masks


def pruning_masks(model, sparsity: float, structured: str | None = None,
                  include_embeddings: bool = False) -> dict:
    """The masks of magnitude pruning (``structured`` None) or of 'heads' / 'neurons'."""
    _check_kind(structured)
    check_sparsity(sparsity)
    if structured is not None and include_embeddings:
        raise ValueError("pruning: include_embeddings applies to magnitude pruning only; "
                         "structured pruning removes heads or neurons of the blocks.")
    if structured == "heads":
        return head_masks(model, sparsity)
    if structured == "neurons":
        return neuron_masks(model, sparsity)
    return magnitude_masks(model, sparsity, include_embeddings)


def apply_masks(model, masks: dict) -> None:
    """W <- W * mask for every masked parameter, in place."""
    params = dict(model.named_parameters())
    for name, keep in masks.items():
        p = params[name]
        p.data *= keep.astype(p.dtype)


def prune(model, sparsity: float, structured: str | None = None,
          include_embeddings: bool = False) -> dict:
    """Prune ``model`` in place; returns the masks (name -> keep [parameter's shape])."""
    masks = pruning_masks(model, sparsity, structured, include_embeddings)
    apply_masks(model, masks)
    return masks


def weight_sparsity(model, include_embeddings: bool = False) -> float:
    """The fraction of the prunable weights (``prunable_weights``) that are exactly zero."""
    weights = list(prunable_weights(model, include_embeddings).values())
    zeros = sum(int((p.data == 0).sum()) for p in weights)
    return zeros / sum(p.size for p in weights)


class MaskedOptimizer:
    """``optimizer`` whose ``step()`` keeps every masked entry exactly zero: masked
    gradients are zeroed before the step, weights and buffers (moments) after it."""

    def __init__(self, optimizer, model, masks: dict):
        params = dict(model.named_parameters())
        unknown = sorted(set(masks) - set(params))
        if unknown:
            raise ValueError(f"MaskedOptimizer: masks for {unknown[:3]}, which the model does "
                             "not have; build the masks from the same model.")
        self.optimizer = optimizer
        self.kept = {id(params[name]): keep.astype(params[name].dtype)
                     for name, keep in masks.items()}                  # id(p) -> 0/1 [p's shape]

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.optimizer.lr = value

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def _masked(self):
        """(parameter, its state buffers, keep) of every masked parameter."""
        opt = self.optimizer
        return [(p, state, self.kept[id(p)]) for p, state in zip(opt.params, opt.state)
                if id(p) in self.kept]

    def step(self) -> None:
        for p, _, keep in self._masked():
            p.grad *= keep
        self.optimizer.step()
        for p, state, keep in self._masked():
            p.data *= keep
            for buffer in state.values():
                buffer *= keep

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)


def recovery_config(cfg, steps: int, lr: float):
    """The run's TrainConfig for ``steps`` recovery steps at the constant learning rate ``lr``."""
    if steps < 0 or not (math.isfinite(lr) and lr > 0.0):
        raise ValueError(f"recovery fine-tuning: steps={steps} must be >= 0 and lr={lr} a "
                         "finite number > 0.")
    return dataclasses.replace(cfg, schedule="constant", lr=lr, warmup_iters=0,
                               max_iters=steps)


def finetune_pruned(model, masks: dict, cfg, train_ids, val_ids, steps: int, lr: float,
                    log=print) -> RunState:
    """Recovery fine-tuning: ``steps`` steps of the run's own optimizer (cfg's AdamW, betas,
    weight decay, clipping, batch) at the constant learning rate ``lr``, through a
    ``MaskedOptimizer``; the validation loss is measured before and after (``run.evals``)."""
    cfg = recovery_config(cfg, steps, lr)
    xp = array_module_for(cfg.device)
    run = RunState()
    evaluate_into(run, model, cfg, val_ids, xp, log)
    if steps == 0:
        return run
    optimizer = MaskedOptimizer(build_optimizer(model, cfg), model, masks)
    batcher = build_batcher(train_ids, cfg)
    model.train()
    for it in range(steps):
        run.train_losses.append((it, float(train_step(model, optimizer, batcher, cfg, lr, xp,
                                                      it))))
        run.iteration += 1
    evaluate_into(run, model, cfg, val_ids, xp, log)
    return run
