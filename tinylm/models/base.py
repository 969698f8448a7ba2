"""What every language model in tinylm offers the training loop and the decoders.

    logits, loss = model.forward(idx, targets)   # idx, targets [B, T] int; logits [B, T, V]
    model.backward()                             # dL/dtheta into every Parameter.grad
    model.reset_state()                          # forget carried state (recurrent models)

and, for generation (tinylm/generate.py), an incremental interface that a model may
override with something faster (a KV cache, a recurrent state):

    logits, state = model.start_decoding(prompt)     # prompt [B, T] -> logits [B, V]
    logits, state = model.decode_step(next_ids, state)   # next_ids [B] -> logits [B, V]

The default decoding recomputes the whole (cropped) context at every step: correct for any
model, and the specification the faster versions are tested against.

The loss cache is one protocol for every model, kept here: ``forward`` with targets stores
what ``backward`` needs for L = mean_i -log softmax(z_i)[y_i] (``_loss``), ``forward``
without targets clears it, and ``backward`` without a stored loss raises (``_dlogits``), so
a ``backward`` can never differentiate an earlier batch than the last ``forward`` saw.
"""

from __future__ import annotations

import dataclasses

from tinylm.backend import get_array_module
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.nn.module import Module
from tinylm.typed_config import config_from_dict


def check_positive(config, *names: str) -> None:
    """Raise naming the first field of ``config`` in ``names`` that is not an integer >= 1."""
    for name in names:
        value = getattr(config, name)
        if value < 1:
            raise ValueError(f"{type(config).__name__}.{name}={value} must be an integer >= 1.")


def check_probability(config, *names: str) -> None:
    """Raise naming the first field of ``config`` in ``names`` outside [0, 1)."""
    for name in names:
        value = getattr(config, name)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{type(config).__name__}.{name}={value} must lie in [0, 1).")


class LanguageModel(Module):
    """Base class: subclasses set ``self.config`` (a dataclass) and implement forward/backward.

    ``context_size`` is the longest context the model can use (None = unbounded).
    ``stateful`` models carry a hidden state from one batch to the next (truncated BPTT).
    ``renamed_keys`` maps configuration keys of older checkpoints to their current names.
    """

    config_class = None
    renamed_keys: dict = {}
    stateful = False
    trainable = True   # False for models fitted by counting (n-grams)
    _loss_cache = None

    @property
    def context_size(self):
        return getattr(self.config, "block_size", None)

    @property
    def longest_window(self):
        """The longest sequence ``forward`` accepts (None = any length): only models with a
        fixed number of positions (GPT's learned ones) have a limit."""
        return None

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @classmethod
    def from_config(cls, config: dict):
        """Build the model from a plain dict (as stored in a checkpoint's JSON); unknown keys
        and values of the wrong type raise ValueError naming them (tinylm/typed_config.py)."""
        renamed = {old: new for old, new in cls.renamed_keys.items() if old in config}
        if renamed:
            raise ValueError(f"{cls.__name__}: configuration keys were renamed "
                             f"({', '.join(f'{o!r} -> {n!r}' for o, n in renamed.items())}); "
                             "rename them in the configuration or checkpoint JSON.")
        return cls(config_from_dict(cls.config_class, config, owner=cls.__name__))

    def config_dict(self) -> dict:
        return dataclasses.asdict(self.config)

    def reset_state(self) -> None:
        """Forget any state carried between batches (no-op for stateless models)."""

    # -- the loss cache: one protocol for every model ----------------------------------------
    def _loss(self, logits, targets):
        """logits [..., V], targets [...] or None -> the mean cross-entropy, or None.

        With targets, stores what ``_dlogits`` needs; without, clears it, so that a later
        ``backward()`` raises instead of differentiating an earlier batch.
        """
        if targets is None:
            self._loss_cache = None
            return None
        loss, self._loss_cache = cross_entropy_forward(logits, targets)
        return loss

    def _dlogits(self, dloss=1.0):
        """dL/dlogits [..., V] of the last loss stored by ``_loss``."""
        if self._loss_cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward(): there is no loss to "
                               "differentiate; call forward(idx, targets) with targets first "
                               "(a forward without targets clears the last loss).")
        return cross_entropy_backward(dloss, self._loss_cache)

    # -- decoding: the always-correct default ----------------------------------------------
    def _crop(self, idx):
        n = self.context_size
        return idx if n is None or idx.shape[1] <= n else idx[:, -n:]

    def start_decoding(self, prompt):
        """prompt [B, T] int -> (logits of the next token [B, V], decoding state)."""
        logits, _ = self.forward(self._crop(prompt))
        return logits[:, -1, :], prompt

    def decode_step(self, next_ids, state):
        """next_ids [B] int -> (logits [B, V], new state)."""
        xp = get_array_module(state)
        idx = xp.concatenate([state, next_ids[:, None]], axis=1)
        logits, _ = self.forward(self._crop(idx))
        return logits[:, -1, :], idx
