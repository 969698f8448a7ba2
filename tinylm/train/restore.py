"""Rebuild a trained model and its tokenizer from a checkpoint written by ``tinylm train``."""

from __future__ import annotations

from pathlib import Path

import numpy

from tinylm.checkpoint import load_checkpoint, split_prefix
from tinylm.data import load_tokenizer
from tinylm.models import get_model_class
from tinylm.train.config import TrainConfig
from tinylm.train.loop import CHECKPOINT_NAME


def load_trained(checkpoint, device: str = "cpu"):
    """-> (model in eval mode, tokenizer, TrainConfig). ``checkpoint``: OUT_DIR/ckpt or OUT_DIR."""
    path = Path(checkpoint)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    arrays, meta = load_checkpoint(path)
    cfg = TrainConfig.from_dict(meta["train_config"])
    model = get_model_class(meta["model"]).from_config(meta["model_config"])
    model.to(dtype=numpy.dtype(cfg.dtype))
    model.load_state_dict(split_prefix(arrays, "model"))
    model.to(device=device).eval()
    tokenizer = load_tokenizer(path.with_name("tokenizer.json"))
    return model, tokenizer, cfg
