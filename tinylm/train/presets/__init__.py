"""Named training configurations. Each family's file defines ``PRESETS``: a dict from a
preset name to ``{"model": family, "model_config": {...}, "train": {...TrainConfig fields}}``.
"""

from __future__ import annotations

import importlib

_FAMILY_FILES = ("mlp", "recurrent", "gpt", "embeddings", "seq2seq", "pretrain")


def all_presets() -> dict:
    presets = {}
    for family in _FAMILY_FILES:
        try:
            module = importlib.import_module(f"tinylm.train.presets.{family}")
        except ModuleNotFoundError as e:
            if e.name != f"tinylm.train.presets.{family}":
                raise
            continue
        presets.update(module.PRESETS)
    return presets


def get_preset(name: str) -> dict:
    presets = all_presets()
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; available: {sorted(presets)}.")
    return presets[name]
