"""A text classifier: a backbone that gives one vector per text, then a linear head
(chapter 09).

    p = backbone.features(ids, mask, pooling)      [B, F]   BERT, GPT or an LSTM
    z = dropout(p) W + b                           [B, C]   head [F, C]: C classes
    loss = mean_i -log softmax(z_i)[y_i]

Backbones (``BACKBONES``) and their poolings (tinylm/functional/pooling.py):

    bert   "first": the pooler tanh(h_[CLS] W + b) (BERT's own), or "mean"
    gpt    "last": the last real token's state, or "mean"
    lstm   "last" or "mean" of the top layer's states (a classifier from scratch)

The backbone is a child module named ``backbone``, so a pre-trained checkpoint's tensors
load into it under ``backbone.<name>``, and the head is ``head`` (N(0, 0.02^2), bias 0, as
BERT's classifier). Which parameters train is the caller's choice (``requires_grad``):
everything (full fine-tuning), the head alone (a linear probe) or the head and the top
blocks; the backbone's backward stops under its last trainable block, and with a frozen
backbone the classifier does not call it at all.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass

from tinylm.backend import default_rng, derive_seed
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.embedding import check_ids
from tinylm.models.base import any_trainable, check_probability
from tinylm.nn.dropout import Dropout
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module
from tinylm.typed_config import config_from_dict

BACKBONES = {"bert": ("tinylm.models.bert", "BERT"), "gpt": ("tinylm.models.gpt", "GPT"),
             "lstm": ("tinylm.models.rnn_lm", "LSTMLM")}
POOLINGS = {"bert": ("first", "mean"), "gpt": ("last", "mean"), "lstm": ("last", "mean")}
_CONSUMED = object()


def backbone_class(name: str):
    """The model class of backbone ``name``, imported on first use."""
    if name not in BACKBONES:
        raise ValueError(f"backbone {name!r} is not one of {sorted(BACKBONES)}.")
    module, cls = BACKBONES[name]
    return getattr(importlib.import_module(module), cls)


@dataclass
class ClassifierConfig:
    backbone: str                    # "bert" | "gpt" | "lstm"
    backbone_config: dict            # the backbone's own configuration
    n_classes: int = 2
    pooling: str = "first"
    dropout: float = 0.1             # on the pooled vector
    seed: int = 0                    # the head's weights and its dropout

    def __post_init__(self):
        check_probability(self, "dropout")
        if self.n_classes < 2:
            raise ValueError(f"ClassifierConfig.n_classes={self.n_classes}: a classifier needs "
                             "at least 2 classes.")
        if self.backbone not in BACKBONES:
            raise ValueError(f"ClassifierConfig.backbone={self.backbone!r} must be one of "
                             f"{sorted(BACKBONES)}.")
        if self.pooling not in POOLINGS[self.backbone]:
            raise ValueError(f"ClassifierConfig.pooling={self.pooling!r}: a {self.backbone} "
                             f"backbone pools with one of {list(POOLINGS[self.backbone])}.")
        if not isinstance(self.backbone_config, dict):
            raise ValueError("ClassifierConfig.backbone_config must be a dict (the backbone's "
                             "configuration).")


class SequenceClassifier(Module):
    """backbone, head_drop, head [F, C]."""

    config_class = ClassifierConfig

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = c = config
        cls = backbone_class(c.backbone)
        self.backbone = cls(config_from_dict(cls.config_class, c.backbone_config,
                                             owner=f"{c.backbone} backbone"))
        self.head_drop = Dropout(c.dropout, seed=derive_seed(c.seed, 1))
        self.head = Linear(self.backbone.feature_size, c.n_classes, rng=default_rng(c.seed),
                           weight_std=0.02, zero_bias=True)
        self._loss_cache = None

    @classmethod
    def from_config(cls, config: dict) -> "SequenceClassifier":
        return cls(config_from_dict(ClassifierConfig, config, owner="SequenceClassifier"))

    def config_dict(self) -> dict:
        return dataclasses.asdict(self.config)

    @property
    def vocab_size(self) -> int:
        return self.backbone.config.vocab_size

    def forward(self, ids, mask=None, labels=None):
        """ids [B, T], mask [B, T] bool or None, labels [B] int or None -> (logits [B, C],
        mean loss or None)."""
        p = self.backbone.features(ids, mask, self.config.pooling)                 # [B, F]
        logits = self.head.forward(self.head_drop.forward(p))                      # [B, C]
        if labels is None:
            self._loss_cache = None
            return logits, None
        owner = f"{type(self).__name__}.forward"
        check_ids(labels, self.config.n_classes, owner, "labels", "class label",
                  "The labels must be the task's classes 0 .. n_classes-1.")
        if labels.shape != (ids.shape[0],):
            raise ValueError(f"{owner}: labels must be [B] = [{ids.shape[0]}], got "
                             f"{tuple(labels.shape)}.")
        loss, self._loss_cache = cross_entropy_forward(logits, labels)
        return logits, loss

    def backward(self, dloss=1.0):
        """Back-propagate the last loss into the head and every trainable backbone part."""
        if self._loss_cache is None or self._loss_cache is _CONSUMED:
            raise RuntimeError(f"{type(self).__name__}.backward(): no loss to differentiate; "
                               "call forward(ids, mask, labels) with labels before each "
                               "backward().")
        cache, self._loss_cache = self._loss_cache, _CONSUMED
        dp = self.head_drop.backward(self.head.backward(cross_entropy_backward(dloss, cache)))
        if any_trainable([self.backbone]):
            self.backbone.features_backward(dp)
