"""The smallest model of each trainable family, shared by the tests that check every family
(the LanguageModel contract, API misuse): ``small_model("gpt")`` has vocabulary ``V``."""

from __future__ import annotations

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
