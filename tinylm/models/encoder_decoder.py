"""What every encoder-decoder (sequence-to-sequence) model in tinylm shares: the checks of
its inputs, its loss protocol and the log-probabilities of a decoding step. The recurrent
model (seq2seq_rnn.py) and the Transformer (seq2seq_transformer.py) keep one API:

    logits, loss = model.forward(src, tgt_in, tgt_out, src_mask, label_smoothing=0.0)
    model.backward()                              # once per forward with targets
    state = model.encode(src, src_mask)
    log_probs, state = model.decode_step(prev_ids, state)   # prev_ids [B], bos first
    state = model.reorder(state, indices)         # beam search (tinylm/beam_search.py)

Shapes: src [B, S] and src_mask [B, S] bool (True = real token), tgt_in / tgt_out [B, T]
(tgt_out -100 where there is no target: padding). The loss is the mean cross-entropy over
the real targets, with PyTorch's ``label_smoothing`` (tinylm/functional/cross_entropy.py).
As for language models (tinylm/models/base.py), ``backward`` consumes the stored loss.
"""

from __future__ import annotations

from tinylm.backend import get_array_module
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.embedding import check_ids
from tinylm.nn.module import Module

IGNORE_INDEX = -100
_CONSUMED = object()     # the loss cache after backward()


class EncoderDecoder(Module):
    """Base class: subclasses set ``self.config`` (with ``src_vocab`` and ``tgt_vocab``)."""

    config_class = None
    _loss_cache = None

    @property
    def vocab_size(self) -> int:
        return self.config.tgt_vocab

    # -- the inputs ------------------------------------------------------------------------
    def _check_source(self, src, src_mask, owner):
        check_ids(src, self.config.src_vocab, owner, "src", "source token id")
        if src.ndim != 2 or src.shape[0] == 0 or src.shape[1] == 0:
            raise ValueError(f"{owner}: src must be [batch, source length] token ids with at "
                             f"least one row and one position, got shape {tuple(src.shape)}.")
        if src_mask is not None and tuple(src_mask.shape) != tuple(src.shape):
            raise ValueError(f"{owner}: src_mask {tuple(src_mask.shape)} must have the shape "
                             f"of src {tuple(src.shape)} (True = real token).")
        if src_mask is not None and getattr(src_mask, "dtype", None) != bool:
            raise TypeError(f"{owner}: src_mask must be a bool array (True = real token), "
                            f"got dtype {getattr(src_mask, 'dtype', type(src_mask).__name__)}.")

    def _check_target(self, tgt_in, tgt_out, batch, owner):
        V = self.config.tgt_vocab
        check_ids(tgt_in, V, owner, "tgt_in", "target token id")
        if tgt_in.ndim != 2 or tgt_in.shape[0] != batch or tgt_in.shape[1] == 0:
            raise ValueError(f"{owner}: tgt_in must be [batch, target length] = [{batch}, T] "
                             f"with T >= 1, got shape {tuple(tgt_in.shape)}.")
        if tgt_out is None:
            return
        check_ids(tgt_out, V, owner, "tgt_out", "target token id", ignore_index=IGNORE_INDEX)
        if tgt_out.shape != tgt_in.shape:
            raise ValueError(f"{owner}: tgt_out {tuple(tgt_out.shape)} must have the shape of "
                             f"tgt_in {tuple(tgt_in.shape)}.")

    # -- the loss ----------------------------------------------------------------------------
    def _loss(self, logits, tgt_out, label_smoothing: float):
        """logits [B, T, V], tgt_out [B, T] or None -> the mean loss (stored for backward)."""
        if tgt_out is None:
            self._loss_cache = None
            return None
        loss, self._loss_cache = cross_entropy_forward(logits, tgt_out, IGNORE_INDEX,
                                                       label_smoothing)
        return loss

    def _dlogits(self, dloss=1.0):
        """dL/dlogits [B, T, V] of the stored loss, which it consumes."""
        name = f"{type(self).__name__}.backward()"
        if self._loss_cache is _CONSUMED:
            raise RuntimeError(f"{name}: the loss of the last forward was already "
                               "back-propagated, and a second backward would add its gradient "
                               "again; call forward(src, tgt_in, tgt_out) before each "
                               "backward().")
        if self._loss_cache is None:
            raise RuntimeError(f"{name}: there is no loss to differentiate; call "
                               "forward(src, tgt_in, tgt_out) with targets first.")
        cache, self._loss_cache = self._loss_cache, _CONSUMED
        return cross_entropy_backward(dloss, cache)

    # -- decoding --------------------------------------------------------------------------
    def _check_prev_ids(self, prev_ids):
        check_ids(prev_ids, self.config.tgt_vocab, f"{type(self).__name__}.decode_step",
                  "prev_ids", "target token id")

    @staticmethod
    def _log_probs(logits):
        """logits [B, V] -> log softmax [B, V]."""
        xp = get_array_module(logits)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
