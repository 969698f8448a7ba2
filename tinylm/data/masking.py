"""Masked-language-model inputs: BERT's 15 % / 80-10-10 rule (chapter 09).

From a batch of token ids, choose the positions the model must predict and corrupt them:

1. **Choose.** In each row b, k_b = max(1, round(p n_b)) of its n_b maskable positions,
   uniformly without replacement (p = ``mask_prob`` = 0.15). Special tokens ([CLS],
   [SEP], [PAD]) are never chosen (``maskable`` False). A fixed count per row, as the
   original create_pretraining_data.py draws it, rather than an independent coin per token,
   so that no row is left without a target and the number of targets per batch is known.
2. **Corrupt** each chosen position independently: with probability 0.8 it becomes [MASK],
   with 0.1 a token drawn uniformly from the ordinary vocabulary (ids ``first_normal_id``
   .. V-1; not a special token, which would never occur mid-text), with 0.1 it is left
   unchanged.
3. **Targets**: the original id at the chosen positions, -100 (ignored by the loss)
   elsewhere.

Why not always [MASK]? The token [MASK] never occurs when the model is fine-tuned or used,
so a model that only ever predicts at [MASK] would learn nothing useful about the
representation of a *visible* token. Leaving 10 % unchanged makes the model predict at
positions that look like any other, so it must keep a good representation of every token;
replacing 10 % by a random token stops it from trusting the visible token blindly (it
cannot know which visible tokens are corrupted). Only 1.5 % of all tokens are random, too few
to hurt the model's language understanding (Devlin et al. 2019, section 3.1 and appendix C.2).

The draws come from a NumPy generator the caller owns: the same generator state gives the
same masks, so a resumed pre-training run masks exactly as the uninterrupted one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy

IGNORE_INDEX = -100


class MaskedBatch(NamedTuple):
    inputs: numpy.ndarray      # [B, T] ids with the chosen positions corrupted
    targets: numpy.ndarray     # [B, T] the original ids where chosen, -100 elsewhere


def _check(ids, maskable, vocab_size, mask_id, first_normal_id, mask_prob, split):
    if ids.ndim != 2 or maskable.shape != ids.shape or maskable.dtype != bool:
        raise ValueError(f"mask_tokens: ids must be [B, T] and maskable a bool array of the same "
                         f"shape, got {ids.shape} and {maskable.dtype} {maskable.shape}.")
    if not 0 < mask_prob < 1:
        raise ValueError(f"mask_tokens: mask_prob={mask_prob} must lie in (0, 1) (BERT: 0.15).")
    if not 0 <= mask_id < first_normal_id < vocab_size:
        raise ValueError(f"mask_tokens: need 0 <= mask_id ({mask_id}) < first_normal_id "
                         f"({first_normal_id}) < vocab_size ({vocab_size}): the special tokens "
                         "come first in the vocabulary.")
    if min(split) < 0 or sum(split) > 1:
        raise ValueError(f"mask_tokens: the [MASK] and random fractions {split} must be >= 0 "
                         "with a sum <= 1 (BERT: 0.8 and 0.1; the rest stays unchanged).")
    if not maskable.any(axis=1).all():
        row = int(numpy.argmin(maskable.any(axis=1)))
        raise ValueError(f"mask_tokens: row {row} has no maskable token (only special "
                         "tokens); drop empty texts before batching.")


def choose_positions(maskable, mask_prob: float, rng) -> numpy.ndarray:
    """maskable [B, T] bool -> chosen [B, T] bool: k_b = max(1, round(p n_b)) positions per
    row, uniformly among the maskable ones."""
    n = maskable.sum(axis=1)                                                   # [B]
    k = numpy.maximum(1, numpy.rint(mask_prob * n)).astype(numpy.int64)        # [B]
    keys = numpy.where(maskable, rng.random(maskable.shape), numpy.inf)        # [B, T]
    rank = numpy.argsort(numpy.argsort(keys, axis=1), axis=1)                  # [B, T]
    return rank < k[:, None]


def mask_tokens(ids, maskable, vocab_size: int, mask_id: int, first_normal_id: int, rng,
                mask_prob: float = 0.15, mask_fraction: float = 0.8,
                random_fraction: float = 0.1) -> MaskedBatch:
    """ids [B, T] int, maskable [B, T] bool -> MaskedBatch(inputs, targets) by the rule in
    the module docstring; ``rng`` a ``numpy.random.Generator``."""
    ids = numpy.asarray(ids)
    maskable = numpy.asarray(maskable)
    _check(ids, maskable, vocab_size, mask_id, first_normal_id, mask_prob,
           (mask_fraction, random_fraction))
    chosen = choose_positions(maskable, mask_prob, rng)                        # [B, T]
    u = rng.random(ids.shape)                                                  # [B, T]
    random_ids = rng.integers(first_normal_id, vocab_size, size=ids.shape)     # [B, T]
    inputs = numpy.where(chosen & (u < mask_fraction), mask_id, ids)
    replaced = chosen & (u >= mask_fraction) & (u < mask_fraction + random_fraction)
    inputs = numpy.where(replaced, random_ids, inputs)
    targets = numpy.where(chosen, ids, IGNORE_INDEX)
    return MaskedBatch(inputs.astype(numpy.int64), targets.astype(numpy.int64))
