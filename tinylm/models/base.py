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

``backward`` consumes the stored loss: a second ``backward()`` after one ``forward`` raises
RuntimeError, as PyTorch's "Trying to backward through the graph a second time" does.
Gradients accumulate (``grad +=``), so a second call would silently double them, and
nothing a caller can mean by it needs it: to accumulate over several batches, run one
forward/backward pair per batch (the sum builds up until ``zero_grad()``); to weight a loss,
pass ``backward(dloss)``. Raising turns a doubled gradient, which only shows up as a
mysteriously different training curve, into an error at the line that caused it.

The inputs are checked once, where they enter (``check_batch``, which every ``forward``
calls): idx [B, T] of integer ids in [0, V), targets None or the same shape and range. A
bad id is named with its value and position (one min/max pass when all is well), not left
to a gather deep inside the model that wraps a negative id round.
"""

from __future__ import annotations

import dataclasses

from tinylm.backend import get_array_module
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.embedding import check_ids
from tinylm.nn.module import Module
from tinylm.nn.parameter import Parameter
from tinylm.typed_config import config_from_dict


OUTSIDE_VOCABULARY = ("An id outside the vocabulary: encode with the model's tokenizer, or "
                      "build the model with the tokenizer's vocab_size.")
IGNORE_INDEX = -100    # a target the loss skips (cross_entropy_forward's default)
_CONSUMED = object()   # the loss cache after backward(): nothing left to differentiate


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


def any_trainable(parts) -> bool:
    """Whether any of these modules or parameters holds a parameter that needs a gradient:
    a backward may stop where everything below it is frozen (fine-tuning the top only)."""
    for part in parts:
        params = [part] if isinstance(part, Parameter) else part.parameters()
        if any(p.requires_grad for p in params):
            return True
    return False


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

    # -- the inputs ------------------------------------------------------------------------
    def check_batch(self, idx, targets=None, ignore_index: int | None = IGNORE_INDEX) -> None:
        """idx [B, T] int in [0, V); targets None or [B, T] int in [0, V) (or ``ignore_index``,
        which the loss skips). Raises naming the model, the argument, the value, the fix."""
        owner, V = f"{type(self).__name__}.forward", self.vocab_size
        check_ids(idx, V, owner, "idx", "token id", OUTSIDE_VOCABULARY)
        if idx.ndim != 2:
            raise ValueError(f"{owner}: idx must be [batch, time] token ids, got shape "
                             f"{tuple(idx.shape)}; add a batch axis with idx[None].")
        if targets is None:
            return
        check_ids(targets, V, owner, "targets", "token id", OUTSIDE_VOCABULARY,
                  ignore_index=ignore_index)
        if targets.shape != idx.shape:
            raise ValueError(f"{owner}: targets {tuple(targets.shape)} must have the shape of "
                             f"idx {tuple(idx.shape)}: targets[b, t] is the token after "
                             "idx[b, t].")

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
        """dL/dlogits [..., V] of the last loss stored by ``_loss``, which it consumes: a
        second ``backward()`` would add the same gradient again (see the module docstring)."""
        name = f"{type(self).__name__}.backward()"
        if self._loss_cache is _CONSUMED:
            raise RuntimeError(f"{name}: the loss of the last forward was already "
                               "back-propagated, and a second backward would add its gradient "
                               "again; call forward(idx, targets) before each backward() "
                               "(gradients accumulate across forward/backward pairs until "
                               "zero_grad()).")
        if self._loss_cache is None:
            raise RuntimeError(f"{name}: there is no loss to "
                               "differentiate; call forward(idx, targets) with targets first "
                               "(a forward without targets clears the last loss).")
        cache, self._loss_cache = self._loss_cache, _CONSUMED
        return cross_entropy_backward(dloss, cache)

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
