"""A fine-tuning run of ``tinylm finetune``: a labelled task -> its split -> texts encoded
with the pre-trained run's tokenizer -> a classifier on the pre-trained backbone (or the
same architecture from random weights, or an LSTM from scratch) trained with AdamW ->
test metrics of the best validation epoch -> a checkpoint ``tinylm classify`` reads
(chapter 09).

    settings = finetune_settings({"task": "sms-spam", "method": "lora", ...})
    result = finetune(settings, pretrained="runs/bert-small")

1. **Task and split** (tinylm/data/classification.py): "balanced" (all spam + as much ham,
   70/10/20, rasbt/LLMs-from-scratch's recipe), "stratified" (80/20 with a tenth of the
   whole for validation, class proportions kept) or "cv10" fold ``fold`` (its test fold;
   validation a stratified tenth of its training folds). ``label_fraction`` < 1 keeps a
   stratified, seeded subset of the training examples (the label-efficiency curve);
   validation and test stay whole.
2. **Encoding.** Text -> ``normalise`` -> the tokenizer's word ids; BERT reads
   [CLS] words [SEP], GPT and the LSTM read words [SEP] (the last real token is [SEP], the
   state pooled). Texts longer than ``max_tokens`` are cut to their first ``max_tokens``
   tokens, and the run says how many were, and which share of the tokens is [UNK].
3. **Model** (tinylm/models/classifier.py): ``init`` "pretrained" loads the backbone of
   the pre-training checkpoint (its best parameters), "random" builds the same
   architecture with fresh weights; backbone "lstm" is always from scratch, with a
   vocabulary of the task's training words.
4. **Method**: "full" trains everything; "probe" the head only (a linear probe on the
   frozen backbone, whose dropout is off); "top" the head and
   the top ``top_layers`` blocks; "lora" the head and rank-``lora_rank`` adapters on every
   attention and MLP projection (tinylm/nn/lora.py), merged into the weights at the end.
5. **Training**: ``epochs`` passes (more when ``min_steps`` asks for more steps than that:
   ten labelled examples are one batch an epoch, and four steps teach nothing), batches of
   ``batch_size`` in an order drawn from ``default_rng([seed, epoch])``, AdamW (decay on
   matrices only), linear warm-up over the first ``warmup_fraction`` of the steps then
   linear decay to 0 (BERT's schedule), clipping at ``grad_clip``. After every epoch:
   validation accuracy; the parameters of the best (ties: the earlier) are kept.
6. **Result**: the test metrics of the kept parameters (accuracy, precision, recall, F1,
   confusion matrix), the trainable and total parameter counts, the seconds; the
   checkpoint ``OUT_DIR/ckpt`` holds the kept parameters (LoRA merged: plain tensors), the
   classifier's configuration, the tokenizer and the label names.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy

from tinylm.backend import to_numpy
from tinylm.checkpoint import load_checkpoint, save_checkpoint, split_prefix
from tinylm.classify.metrics import classification_metrics
from tinylm.data.classification import (balanced_split, kfold, load_task, stratified_holdout,
                                        stratified_split)
from tinylm.data.pretraining import (CLS_ID, PAD_ID, SEP_ID, SPECIALS, UNK_ID,
                                     build_tokenizer, normalise)
from tinylm.data.tokenizers import tokenizer_from_dict
from tinylm.models.classifier import POOLINGS, SequenceClassifier
from tinylm.nn.lora import apply_lora, merge_lora
from tinylm.optim import AdamW, clip_grad_norm, decay_groups
from tinylm.train.loop import CHECKPOINT_NAME
from tinylm.train.pretrain_run import PRETRAINED_MODEL
from tinylm.train.steps import (LoopLimits, StepHistory, check_finite_loss,
                                recent_train_loss, run_steps)
from tinylm.typed_config import config_from_dict

CLASSIFIER_MODEL = "classifier"       # the "model" of a fine-tuning checkpoint's JSON
TASKS = ("sms-spam", "polarity")
SPLITS = ("balanced", "stratified", "cv10")
METHODS = ("full", "probe", "top", "lora")
INITS = ("pretrained", "random")


@dataclasses.dataclass
class FinetuneSettings:
    """Everything about a fine-tuning run except the backbone's own configuration."""

    task: str = "sms-spam"
    split: str = "balanced"
    fold: int = 0                        # cv10: the test fold
    split_seed: int = 123
    label_fraction: float = 1.0          # of the training examples (stratified, seeded)
    backbone: str = ""                   # "" = the pre-trained run's; "lstm" from scratch
    init: str = "pretrained"             # "pretrained" | "random" (same architecture)
    method: str = "full"                 # "full" | "probe" | "top" | "lora"
    top_layers: int = 1
    lora_rank: int = 8
    lora_alpha: float = 16.0
    pooling: str = ""                    # "" = the backbone's usual one
    head_dropout: float = 0.1
    max_tokens: int = 62                 # words per text (longer ones are cut, and counted)
    vocab_size: int = 16384              # the LSTM's vocabulary (from the training texts)
    epochs: int = 4
    min_steps: int = 0                   # at least this many steps: more epochs if few labels
    batch_size: int = 32
    lr: float = 1e-4
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0                        # batch order, subset, head and adapters
    out_dir: str = "runs/finetune"
    progress: bool = True

    def __post_init__(self):
        checks = [
            (self.task in TASKS, f"task={self.task!r} must be one of {list(TASKS)}"),
            (self.split in SPLITS, f"split={self.split!r} must be one of {list(SPLITS)}"),
            (self.method in METHODS, f"method={self.method!r} must be one of {list(METHODS)}"),
            (self.init in INITS, f"init={self.init!r} must be one of {list(INITS)}"),
            (self.backbone in ("", "lstm"), f"backbone={self.backbone!r}: leave it empty "
                                            "(the pre-trained run's) or 'lstm' (from scratch)"),
            (0 <= self.fold < 10, f"fold={self.fold} must lie in 0..9"),
            (0 < self.label_fraction <= 1, f"label_fraction={self.label_fraction} must lie "
                                           "in (0, 1]"),
            (min(self.epochs, self.batch_size, self.max_tokens, self.top_layers) >= 1,
             "epochs, batch_size, max_tokens and top_layers must be >= 1"),
            (self.min_steps >= 0, f"min_steps={self.min_steps} must be >= 0"),
            (self.lr > 0 and 0 <= self.warmup_fraction < 1, f"lr={self.lr} must be > 0 and "
             f"warmup_fraction={self.warmup_fraction} in [0, 1)"),
        ]
        problem = next((text for ok, text in checks if not ok), None)
        if problem:
            raise ValueError(f"finetune setting {problem}.")


def finetune_settings(values: dict) -> FinetuneSettings:
    return config_from_dict(FinetuneSettings, values, owner="finetune settings")


# -- data ---------------------------------------------------------------------------------
def task_split(task, settings: FinetuneSettings):
    """(train, val, test) index arrays of the settings' split (module docstring, step 1)."""
    if settings.split == "balanced":
        split = balanced_split(task, seed=settings.split_seed)
        train, val, test = split.train, split.val, split.test
    elif settings.split == "stratified":
        split = stratified_split(task, seed=settings.split_seed)
        train, val, test = split.train, split.val, split.test
    else:
        fold = kfold(task, 10, seed=settings.split_seed)[settings.fold]
        val, train = stratified_holdout(task, fold.train, 1 / 9, seed=settings.split_seed)
        test = fold.test
    if settings.label_fraction < 1:
        train, _ = stratified_holdout(task, train, settings.label_fraction, seed=settings.seed)
    return train, val, test


@dataclasses.dataclass
class EncodedTexts:
    ids: list                            # one int64 array per text
    labels: numpy.ndarray
    truncated: int                       # how many texts were cut to max_tokens


def encode_texts(texts, labels, tokenizer, family: str, max_tokens: int) -> EncodedTexts:
    """Texts -> word ids with the family's special tokens (module docstring, step 2)."""
    rows, cut = [], 0
    for text in texts:
        words = tokenizer.encode(normalise(text))
        if words.size == 0:
            words = numpy.array([UNK_ID])
        cut += words.size > max_tokens
        words = words[:max_tokens]
        if family == "bert":
            rows.append(numpy.concatenate([[CLS_ID], words, [SEP_ID]]).astype(numpy.int64))
        else:
            rows.append(numpy.concatenate([words, [SEP_ID]]).astype(numpy.int64))
    return EncodedTexts(rows, numpy.asarray(labels, dtype=numpy.int64), cut)


def unknown_share(texts: EncodedTexts) -> float:
    """The fraction of the texts' tokens (special tokens aside) that are [UNK]."""
    ids = numpy.concatenate(texts.ids)
    ordinary = ids[(ids == UNK_ID) | (ids >= len(SPECIALS))]
    return float((ordinary == UNK_ID).mean()) if ordinary.size else 0.0


def padded(rows, indices):
    """The rows ``indices`` right-padded with [PAD] -> (ids [B, T], mask [B, T] bool)."""
    chosen = [rows[i] for i in indices]
    T = max(r.size for r in chosen)
    ids = numpy.full((len(chosen), T), PAD_ID, dtype=numpy.int64)
    for b, r in enumerate(chosen):
        ids[b, :r.size] = r
    return ids, numpy.arange(T)[None, :] < numpy.array([r.size for r in chosen])[:, None]


# -- the model ----------------------------------------------------------------------------
def read_pretrained(path) -> tuple[dict, dict]:
    """(arrays, metadata) of a pre-training checkpoint, or a clear error for anything else."""
    arrays, meta = load_checkpoint(Path(path) / CHECKPOINT_NAME)
    if meta.get("model") != PRETRAINED_MODEL:
        raise ValueError(f"{path} is not a pre-training run (its checkpoint holds a "
                         f"{meta.get('model')!r} model); fine-tune from the OUT_DIR of "
                         "`tinylm pretrain`.")
    return arrays, meta


def build_classifier(settings: FinetuneSettings, family: str, backbone_config: dict,
                     n_classes: int) -> SequenceClassifier:
    pooling = settings.pooling or POOLINGS[family][0]
    config = {"backbone": family, "backbone_config": backbone_config, "n_classes": n_classes,
              "pooling": pooling, "dropout": settings.head_dropout, "seed": settings.seed}
    return SequenceClassifier.from_config(config).to(numpy.float32)


def choose_trainable(model: SequenceClassifier, settings: FinetuneSettings) -> dict:
    """Freeze and adapt by ``method`` (module docstring, step 4) -> the parameter counts."""
    backbone = model.backbone
    if settings.method == "probe":
        backbone.requires_grad_(False)
    elif settings.method == "top":
        blocks = getattr(backbone, "h", None)
        if blocks is None or settings.top_layers > len(blocks):
            raise ValueError(f"method 'top' trains the top {settings.top_layers} Transformer "
                             f"blocks; this backbone has {0 if blocks is None else len(blocks)}.")
        backbone.requires_grad_(False)
        for block in list(blocks)[len(blocks) - settings.top_layers:]:
            block.requires_grad_(True)
    elif settings.method == "lora":
        apply_lora(backbone, settings.lora_rank, settings.lora_alpha,
                   rng=numpy.random.default_rng(settings.seed))
    trainable = sum(p.size for p in model.trainable_parameters())
    return {"trainable_parameters": trainable, "total_parameters": model.num_parameters()}


# -- the run ------------------------------------------------------------------------------
class FinetuneRun:
    """The state a fine-tuning run carries between steps (tinylm/train/steps.py)."""

    def __init__(self, settings, model, train: EncodedTexts, val: EncodedTexts):
        self.settings, self.model, self.train, self.val = settings, model, train, val
        self.history = StepHistory()
        self.steps_per_epoch = -(-len(train.ids) // settings.batch_size)
        self.epochs = max(settings.epochs, -(-settings.min_steps // self.steps_per_epoch))
        self.limits = LoopLimits(self.epochs * self.steps_per_epoch, self.steps_per_epoch,
                                 settings.out_dir, settings.progress)
        self.optimizer = AdamW(decay_groups(model.trainable_parameters(),
                                            settings.weight_decay),
                               lr=settings.lr, weight_decay=settings.weight_decay)
        self.best_state = None

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then linear decay to 0 at the last step."""
        total = self.limits.max_steps
        warm = int(self.settings.warmup_fraction * total)
        if step < warm:
            return self.settings.lr * (step + 1) / warm
        return self.settings.lr * max(0.0, (total - step) / max(1, total - warm))

    def batch_indices(self, step: int):
        epoch, index = divmod(step, self.steps_per_epoch)
        order = numpy.random.default_rng([self.settings.seed, epoch]).permutation(
            len(self.train.ids))
        B = self.settings.batch_size
        return order[index * B:(index + 1) * B]

    def train_step(self, step: int) -> float:
        rows = self.batch_indices(step)
        ids, mask = padded(self.train.ids, rows)
        if self.settings.method == "probe":
            self.model.backbone.eval()          # frozen: its dropout would only add noise
        self.optimizer.lr = self.lr_at(step)
        _, loss = self.model.forward(ids, mask, self.train.labels[rows])
        loss = check_finite_loss(float(to_numpy(loss)), step)
        self.model.backward()
        if self.settings.grad_clip > 0:
            clip_grad_norm(self.model.trainable_parameters(), self.settings.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss

    def evaluate(self, started: float, log) -> None:
        h = self.history
        accuracy = float((predict(self.model, self.val.ids) == self.val.labels).mean())
        h.evals.append({"iter": h.iteration, "val_accuracy": accuracy,
                        "train_loss": recent_train_loss(h, self.steps_per_epoch)})
        if h.best is None or accuracy > h.best["val_accuracy"]:
            h.best = {"iter": h.iteration, "val_accuracy": accuracy}
            self.best_state = self.model.state_dict()
        h.elapsed_s = time.perf_counter() - started
        log(f"epoch {h.iteration // self.steps_per_epoch}: train loss "
            f"{h.evals[-1]['train_loss']:.4f}, val accuracy {accuracy:.4f}")

    def save(self) -> None:
        """Fine-tuning runs are short: the checkpoint is written once, by ``finetune``."""


def predict(model, rows, batch_size: int = 256) -> numpy.ndarray:
    """The predicted class of every encoded text (evaluation mode, batches by length)."""
    was_training = model.training
    model.eval()
    order = numpy.argsort([r.size for r in rows], kind="stable")
    out = numpy.empty(len(rows), dtype=numpy.int64)
    for start in range(0, len(rows), batch_size):
        chosen = order[start:start + batch_size]
        ids, mask = padded(rows, chosen)
        logits, _ = model.forward(ids, mask)
        out[chosen] = to_numpy(logits).argmax(axis=1)
    model.train(was_training)
    return out


def _tokenizer_and_backbone(settings: FinetuneSettings, pretrained, train_texts):
    """(tokenizer, family, backbone configuration, pre-trained arrays or None)."""
    if settings.backbone == "lstm":
        tokenizer = build_tokenizer([normalise(t) for t in train_texts], settings.vocab_size,
                                    kind="word")
        config = {"vocab_size": tokenizer.vocab_size, "n_embd": 128, "n_hidden": 128,
                  "n_layer": 1, "dropout": 0.1, "init_range": 0.1, "seed": settings.seed}
        return tokenizer, "lstm", config, None
    if pretrained is None:
        raise ValueError("fine-tuning needs a pre-trained run (`tinylm finetune RUN ...`), "
                         "or backbone 'lstm' to train one from scratch.")
    arrays, meta = read_pretrained(pretrained)
    tokenizer = tokenizer_from_dict(meta["provenance"]["tokenizer"])
    if tuple(tokenizer.vocab.tokens[:len(SPECIALS)]) != SPECIALS:
        raise ValueError(f"{pretrained}: its vocabulary does not start with {SPECIALS}; it was "
                         "not built for classification.")
    if tokenizer.vocab_size != meta["model_config"]["vocab_size"]:
        raise ValueError(f"{pretrained}: its tokenizer has {tokenizer.vocab_size} tokens but "
                         f"the model {meta['model_config']['vocab_size']}; the checkpoint's "
                         "vocabulary does not match its model (an edited or mixed-up run).")
    state = split_prefix(arrays, "best") if settings.init == "pretrained" else None
    return tokenizer, meta["family"], meta["model_config"], state


def finetune(settings: FinetuneSettings, pretrained=None, log=print) -> dict:
    """Fine-tune (module docstring) -> the result: settings, sizes, test metrics."""
    started = time.perf_counter()
    task = load_task(settings.task)
    train_idx, val_idx, test_idx = task_split(task, settings)
    tokenizer, family, backbone_config, state = _tokenizer_and_backbone(
        settings, pretrained, task.take(train_idx)[0])
    model = build_classifier(settings, family, backbone_config, len(task.label_names))
    if state is not None:
        model.backbone.load_state_dict(state)
    counts = choose_trainable(model, settings)
    limit = min(settings.max_tokens, backbone_config.get("block_size", 10**9) - 2)
    parts = {name: encode_texts(*task.take(idx), tokenizer, family, limit)
             for name, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx))}
    log(f"{settings.task} ({settings.split}): {len(train_idx):,} / {len(val_idx):,} / "
        f"{len(test_idx):,} train / val / test texts; {family} {settings.method} "
        f"({'random' if family == 'lstm' else settings.init}): "
        f"{counts['trainable_parameters']:,} of "
        f"{counts['total_parameters']:,} parameters trained; "
        f"{sum(p.truncated for p in parts.values())} texts cut to {limit} tokens; "
        f"[UNK] {unknown_share(parts['train']):.1%} of the training tokens")
    run = FinetuneRun(settings, model.train(), parts["train"], parts["val"])
    run_steps(run, log)
    model.load_state_dict(run.best_state)
    if settings.method == "lora":
        merge_lora(model.backbone)
    predicted = predict(model, parts["test"].ids)
    metrics = classification_metrics(parts["test"].labels, predicted, task.label_names)
    result = {"task": settings.task, "split": settings.split, "fold": settings.fold,
              "method": settings.method, "backbone": family,
              "init": "random" if family == "lstm" else settings.init,
              "label_fraction": settings.label_fraction, "train_examples": len(train_idx),
              "max_tokens": limit, "unknown_rate": unknown_share(parts["train"]),
              **counts, "epochs": run.epochs, "steps": run.limits.max_steps,
              "best_epoch": run.history.best["iter"] // run.steps_per_epoch,
              "val_accuracy": run.history.best["val_accuracy"], "test": metrics,
              "seconds": round(time.perf_counter() - started, 1)}
    save_classifier(settings, model, tokenizer, task.label_names, result, run.history)
    return result


def save_classifier(settings, model, tokenizer, label_names, result, history):
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    meta = {"model": CLASSIFIER_MODEL, "model_config": model.config_dict(),
            "train_config": dataclasses.asdict(settings),
            "run": dataclasses.asdict(history), "result": result,
            "provenance": {"tokenizer": tokenizer.to_dict(), "labels": list(label_names),
                           "task": settings.task}}
    return save_checkpoint(Path(settings.out_dir) / CHECKPOINT_NAME, arrays, meta)
