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
"""

from __future__ import annotations

import dataclasses

from tinylm.backend import get_array_module
from tinylm.nn.module import Module


class LanguageModel(Module):
    """Base class: subclasses set ``self.config`` (a dataclass) and implement forward/backward.

    ``context_size`` is the longest context the model can use (None = unbounded).
    ``stateful`` models carry a hidden state from one batch to the next (truncated BPTT).
    """

    config_class = None
    stateful = False
    trainable = True   # False for models fitted by counting (n-grams)

    @property
    def context_size(self):
        return getattr(self.config, "block_size", None)

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @classmethod
    def from_config(cls, config: dict):
        """Build the model from a plain dict (as stored in a checkpoint's JSON)."""
        fields = {f.name for f in dataclasses.fields(cls.config_class)}
        unknown = sorted(set(config) - fields)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown configuration keys {unknown}; "
                             f"valid keys are {sorted(fields)}.")
        return cls(cls.config_class(**config))

    def config_dict(self) -> dict:
        return dataclasses.asdict(self.config)

    def reset_state(self) -> None:
        """Forget any state carried between batches (no-op for stateless models)."""

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
