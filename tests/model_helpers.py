"""The smallest model of each trainable family, shared by the tests that check every family
(the LanguageModel contract, API misuse): ``small_model("gpt")`` has vocabulary ``V``; and
``learnable_ids``, the token stream the training tests learn."""

from __future__ import annotations

import numpy as np

from tinylm.models import get_model_class

V = 7
SMALL = {
    "mlp": {"block_size": 3, "n_embd": 4, "n_hidden": 6},
    "gpt": {"block_size": 8, "n_layer": 1, "n_head": 2, "n_embd": 8},
    "rnn": {"n_embd": 4, "n_hidden": 6},
    "lstm": {"n_embd": 4, "n_hidden": 6},
    "gru": {"n_embd": 4, "n_hidden": 6},
}


def small_model(name: str):
    """A freshly initialised (float32) model of family ``name`` with vocabulary V."""
    return get_model_class(name).from_config(dict(SMALL[name], vocab_size=V))


def learnable_ids(n: int, vocab: int, seed: int = 0):
    """A learnable stream of ``n`` ids: 0, 1, ..., vocab - 1 repeated, 10 % replaced by noise."""
    rng = np.random.default_rng(seed)
    ids = np.tile(np.arange(vocab), n // vocab + 1)[:n]
    noise = rng.random(n) < 0.1
    ids[noise] = rng.integers(0, vocab, noise.sum())
    return ids.astype(np.int64)
