"""Language models (layer 4). ``get_model_class(name)`` imports a family lazily, so the
command line never pays for models it does not use."""

from __future__ import annotations

import importlib

MODEL_REGISTRY = {
    "ngram": "tinylm.models.ngram:NGramLM",
    "mlp": "tinylm.models.mlp_lm:MLPLM",
    "rnn": "tinylm.models.rnn_lm:RNNLM",
    "lstm": "tinylm.models.rnn_lm:LSTMLM",
    "gru": "tinylm.models.rnn_lm:GRULM",
    "gpt": "tinylm.models.gpt:GPT",
}


def get_model_class(name: str):
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODEL_REGISTRY)}.")
    module_name, class_name = MODEL_REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)
