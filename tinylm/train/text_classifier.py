"""A fine-tuned classifier in use: load a ``tinylm finetune`` run and label texts
(``tinylm classify``, chapter 09).

    classifier = load_classifier("runs/sms-bert")
    for label, probability in classifier.classify(["WINNER! Claim your prize now"]):
        ...

The texts go through the same encoding as in fine-tuning (tinylm/train/finetune_run.py:
normalise, the run's tokenizer, the family's special tokens, at most the run's
``max_tokens`` words); the probability is the softmax of the head's logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy

from tinylm.backend import to_numpy
from tinylm.checkpoint import load_checkpoint, split_prefix
from tinylm.data.tokenizers import tokenizer_from_dict
from tinylm.models.classifier import SequenceClassifier
from tinylm.train.finetune_run import CLASSIFIER_MODEL, encode_texts, padded
from tinylm.train.loop import CHECKPOINT_NAME


@dataclass
class TextClassifier:
    model: SequenceClassifier
    tokenizer: object
    label_names: tuple
    max_tokens: int

    def classify(self, texts) -> list[tuple[str, float]]:
        """Each text -> (its most probable label, that probability)."""
        empty = [i for i, t in enumerate(texts) if not t.strip()]
        if empty:
            raise ValueError(f"text {empty[0] + 1} is empty; give the classifier some words.")
        family = self.model.config.backbone
        rows = encode_texts(texts, numpy.zeros(len(texts)), self.tokenizer, family,
                            self.max_tokens).ids
        ids, mask = padded(rows, numpy.arange(len(rows)))
        logits, _ = self.model.eval().forward(ids, mask)
        z = to_numpy(logits).astype(numpy.float64)
        p = numpy.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        best = p.argmax(axis=1)
        return [(self.label_names[k], float(p[i, k])) for i, k in enumerate(best)]


def load_classifier(run) -> TextClassifier:
    """The classifier of a ``tinylm finetune`` OUT_DIR, or a clear error for another run."""
    arrays, meta = load_checkpoint(Path(run) / CHECKPOINT_NAME)
    if meta.get("model") != CLASSIFIER_MODEL:
        raise ValueError(f"{run} is not a fine-tuned classifier (its checkpoint holds a "
                         f"{meta.get('model')!r} model); classify with the OUT_DIR of "
                         "`tinylm finetune`.")
    model = SequenceClassifier.from_config(meta["model_config"])
    model.load_state_dict(split_prefix(arrays, "model"))
    labels = tuple(meta["provenance"]["labels"])
    if len(labels) != model.config.n_classes:
        raise ValueError(f"{run}: {len(labels)} label names for a head of "
                         f"{model.config.n_classes} classes; the checkpoint is inconsistent.")
    limit = meta["result"].get("max_tokens", meta["train_config"]["max_tokens"])
    return TextClassifier(model, tokenizer_from_dict(meta["provenance"]["tokenizer"]), labels,
                          limit)
