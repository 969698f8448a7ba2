"""A pre-training run of ``tinylm pretrain bert|gpt``: unlabelled English -> a word
vocabulary with BERT's specials -> windows of the token stream -> masked-LM (BERT) or
next-token (GPT) training with AdamW -> a checkpoint that fine-tuning starts from
(chapter 09).

    settings = pretrain_settings({"family": "bert", "max_steps": 20000, ...})
    history = train_pretrain(settings, {"n_layer": 4, "n_embd": 256})

1. **Corpus** (tinylm/data/pretraining.py): the lines of each corpus in ``corpora``, the
   last ``val_fraction`` of each held out for validation.
2. **Vocabulary**: the specials and WordPiece pieces trained on the training lines
   (``tokenizer`` "wordpiece"), or the ``vocab_size - 5`` most frequent words ("word");
   the stream: every line's ids followed by [SEP].
3. **Batches.** Step s draws ``batch_size`` window starts uniformly from
   ``numpy.random.default_rng([seed, s])`` -- a pure function of (seed, step), so a resumed
   run reads the same batches without saving a batcher. BERT: a window of
   ``block_size - 2`` tokens becomes [CLS] window [SEP] (no padding: every row is full),
   masked by the 15 % / 80-10-10 rule (tinylm/data/masking.py) with the same generator
   ([CLS] and every [SEP] are never masked). With ``next_sentence``, a window of
   ``block_size - 3`` tokens is cut at a uniform point into A and B, and half of the rows
   (drawn by the same generator) replace B by as many tokens from a random start:
   [CLS] A [SEP] B [SEP], segment 0 up to the first [SEP] and 1 after it, NSP label 0 (B
   follows A) or 1 (B is random). GPT: a window of ``block_size + 1`` tokens, x = its first
   block_size, y = its last.
4. **Optimisation**: AdamW (decay on matrices only), global-norm clipping, linear warm-up
   then a cosine to ``min_lr`` at ``max_steps`` (post-LN BERT needs the warm-up).
5. **Validation**, every ``eval_interval`` steps: consecutive windows of the validation
   stream (at most ``eval_windows``), masked once with a fixed generator, so every
   evaluation scores the same predictions: the mean loss per predicted token and its
   accuracy (BERT: at the masked positions; GPT: at every position), and perplexity
   exp(loss).
6. **Continued pre-training** (``init``, the OUT_DIR of an earlier run): the model starts
   from that run's best parameters and reads its text with that run's tokenizer, its shape
   and vocabulary unchanged -- domain-adaptive pre-training (Gururangan et al. 2020, "Don't
   Stop Pretraining") when ``corpora`` is a task's own unlabelled text ("sms-spam").
7. **Checkpoint** ``OUT_DIR/ckpt`` (atomic, no pickle): the latest and the best
   parameters, AdamW's state, the dropout generators, the history, the settings, the model
   configuration and the tokenizer (so fine-tuning encodes its texts exactly as the
   pre-training did).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import NamedTuple

import numpy

from tinylm.backend import to_numpy
from tinylm.checkpoint import load_checkpoint, save_checkpoint, split_prefix
from tinylm.data.datasets import dataset_info
from tinylm.data.masking import mask_tokens
from tinylm.data.pretraining import (CLS_ID, CORPORA, FIRST_WORD_ID, MASK_ID, SEP_ID,
                                     TASK_CORPORA, TOKENIZER_KINDS, build_tokenizer, corpus_lines,
                                     split_lines, token_stream, unknown_rate)
from tinylm.models.bert import BERT
from tinylm.models.gpt import GPT
from tinylm.optim import AdamW, clip_grad_norm, decay_groups, warmup_cosine
from tinylm.train.loop import CHECKPOINT_NAME, NonFiniteLossError
from tinylm.train.plot import plot_history
from tinylm.train.steps import (StepHistory, check_finite_loss, history_from_dict,
                                recent_train_loss, run_steps)
from tinylm.typed_config import config_from_dict

PRETRAINED_MODEL = "pretrained"          # the "model" of a pre-training checkpoint's JSON
FAMILIES = {"bert": BERT, "gpt": GPT}
CORPUS_FILES = {"ptb": ("ptb.train",), "fra-eng": ("fra-eng",),
                "timemachine": ("timemachine",), "tinyshakespeare": ("tinyshakespeare",),
                "sms-spam": ("sms_spam",)}


@dataclasses.dataclass
class PretrainSettings:
    """Everything about a pre-training run except the model's own configuration."""

    family: str = "bert"                 # "bert" | "gpt"
    corpora: str = ",".join(CORPORA)     # comma-separated corpus names
    val_fraction: float = 0.01           # the tail of each corpus
    tokenizer: str = "wordpiece"         # "wordpiece" (pieces) | "word" (whole words)
    vocab_size: int = 16384              # specials + pieces, or + the most frequent words
    min_count: int = 20                  # a pair merged / a word kept if seen this often
    block_size: int = 64                 # tokens per window ([CLS] and [SEP] included)
    batch_size: int = 64
    mask_prob: float = 0.15
    next_sentence: bool = False          # BERT: also next-sentence prediction (section 5)
    lr: float = 5e-4
    min_lr: float = 5e-5
    warmup_steps: int = 500
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-6
    weight_decay: float = 0.01
    grad_clip: float = 1.0               # 0: no clipping
    max_steps: int = 10000
    max_minutes: float = 0.0             # 0: no time limit
    eval_interval: int = 500
    eval_windows: int = 256
    seed: int = 0                        # batches, masks and initial weights
    init: str = ""                       # an earlier run's OUT_DIR to continue from (step 6)
    out_dir: str = "runs/pretrain"
    progress: bool = True

    def __post_init__(self):
        checks = [
            (self.family in FAMILIES, f"family={self.family!r} must be one of {sorted(FAMILIES)}"),
            (len(self.corpus_names) > 0
             and set(self.corpus_names) <= set(CORPORA + TASK_CORPORA),
             f"corpora={self.corpora!r} must be a comma-separated selection of "
             f"{list(CORPORA + TASK_CORPORA)}"),
            (self.block_size >= 5, f"block_size={self.block_size} must be >= 5"),
            (self.tokenizer in TOKENIZER_KINDS, f"tokenizer={self.tokenizer!r} must be one "
                                                f"of {list(TOKENIZER_KINDS)}"),
            (not self.next_sentence or self.family == "bert",
             "next_sentence=True needs family 'bert' (GPT has no NSP head)"),
            (min(self.batch_size, self.eval_interval, self.eval_windows) >= 1,
             "batch_size, eval_interval and eval_windows must be >= 1"),
            (self.lr > 0 and 0 <= self.min_lr <= self.lr,
             f"lr={self.lr}, min_lr={self.min_lr} need lr > 0 and 0 <= min_lr <= lr"),
            (min(self.weight_decay, self.grad_clip, self.warmup_steps, self.max_steps,
                 self.max_minutes, self.seed) >= 0,
             "weight_decay, grad_clip, warmup_steps, max_steps, max_minutes and seed must be "
             ">= 0"),
        ]
        problem = next((text for ok, text in checks if not ok), None)
        if problem:
            raise ValueError(f"pretrain setting {problem}.")

    @property
    def corpus_names(self) -> list:
        return [name.strip() for name in self.corpora.split(",") if name.strip()]


def pretrain_settings(values: dict) -> PretrainSettings:
    """Settings from plain data (a preset, flags, a checkpoint's JSON), every field checked."""
    return config_from_dict(PretrainSettings, values, owner="pretrain settings")


# -- data ---------------------------------------------------------------------------------
@dataclasses.dataclass
class PretrainData:
    tokenizer: object
    train: numpy.ndarray                 # the training stream [N] int64
    valid: numpy.ndarray                 # the validation stream
    lines: dict                          # corpus -> (training lines, validation lines)


def prepare_corpus(settings: PretrainSettings, tokenizer=None, lines=None) -> PretrainData:
    """Corpora -> (tokenizer, streams); ``tokenizer`` a resumed run's own, ``lines``
    {corpus: [lines]} in place of the registered corpora (tests)."""
    if lines is None:
        lines = {name: corpus_lines(name) for name in settings.corpus_names}
    parts = {name: split_lines(own, settings.val_fraction) for name, own in lines.items()}
    train_lines = [line for train, _ in parts.values() for line in train]
    valid_lines = [line for _, valid in parts.values() for line in valid]
    if tokenizer is None:
        tokenizer = build_tokenizer(train_lines, settings.vocab_size, settings.min_count,
                                    settings.tokenizer)
    data = PretrainData(tokenizer, token_stream(tokenizer, train_lines),
                        token_stream(tokenizer, valid_lines), parts)
    if data.train.size <= settings.block_size + 1 or data.valid.size <= settings.block_size + 1:
        raise ValueError(f"the corpus streams ({data.train.size:,} training, "
                         f"{data.valid.size:,} validation tokens) are too short for windows "
                         f"of block_size={settings.block_size}; use more text or a larger "
                         "val_fraction.")
    return data


class PretrainBatch(NamedTuple):
    inputs: numpy.ndarray                # [B, T] ids (BERT: masked)
    targets: numpy.ndarray               # [B, T] BERT: originals at the masked positions,
                                         # -100 elsewhere; GPT: the next tokens
    segments: numpy.ndarray | None = None      # [B, T] with next_sentence
    nsp_targets: numpy.ndarray | None = None   # [B] 0 IsNext, 1 NotNext

    def forward_arguments(self) -> dict:
        extra = {} if self.segments is None else {"segments": self.segments,
                                                  "nsp_targets": self.nsp_targets}
        return {"targets": self.targets, **extra}


def _masked(rows, settings: PretrainSettings, vocab_size: int, rng):
    """rows [B, T] with their special tokens -> (inputs, targets) of masked LM."""
    return mask_tokens(rows, rows >= FIRST_WORD_ID, vocab_size, MASK_ID, FIRST_WORD_ID, rng,
                       settings.mask_prob)


def bert_batch(windows, settings: PretrainSettings, vocab_size: int, rng) -> PretrainBatch:
    """windows [B, block_size - 2] -> [CLS] window [SEP], masked."""
    B = windows.shape[0]
    rows = numpy.concatenate([numpy.full((B, 1), CLS_ID), windows,
                              numpy.full((B, 1), SEP_ID)], axis=1)
    return PretrainBatch(*_masked(rows, settings, vocab_size, rng))


def nsp_batch(stream, windows, settings: PretrainSettings, vocab_size: int,
              rng) -> PretrainBatch:
    """windows [B, block_size - 3] -> [CLS] A [SEP] B [SEP] pairs, half with a random B
    (module docstring, step 3), masked."""
    B, L = windows.shape
    cut = rng.integers(1, L, size=B)                                           # len(A)
    not_next = rng.random(B) < 0.5
    random_starts = rng.integers(0, stream.size - L + 1, size=B)
    rows = numpy.empty((B, L + 3), dtype=numpy.int64)
    segments = numpy.zeros((B, L + 3), dtype=numpy.int64)
    for b in range(B):
        a = cut[b]
        second = (stream[random_starts[b]:random_starts[b] + L - a] if not_next[b]
                  else windows[b, a:])
        rows[b] = numpy.concatenate([[CLS_ID], windows[b, :a], [SEP_ID], second, [SEP_ID]])
        segments[b, a + 2:] = 1
    inputs, targets = _masked(rows, settings, vocab_size, rng)
    return PretrainBatch(inputs, targets, segments, not_next.astype(numpy.int64))


def window_length(settings: PretrainSettings) -> int:
    """Stream tokens per window: block_size - 2 for BERT ([CLS], [SEP] added; - 3 with
    NSP's second [SEP]), block_size + 1 for GPT (inputs and targets shifted by one)."""
    if settings.family == "gpt":
        return settings.block_size + 1
    return settings.block_size - (3 if settings.next_sentence else 2)


def _batch_of(stream, windows, settings, vocab_size, rng) -> PretrainBatch:
    if settings.family == "gpt":
        return PretrainBatch(windows[:, :-1], windows[:, 1:])
    if settings.next_sentence:
        return nsp_batch(stream, windows, settings, vocab_size, rng)
    return bert_batch(windows, settings, vocab_size, rng)


def training_batch(stream, step: int, settings: PretrainSettings,
                   vocab_size: int) -> PretrainBatch:
    """The batch of step ``step``, drawn from default_rng([seed, step])."""
    rng = numpy.random.default_rng([settings.seed, step])
    L = window_length(settings)
    starts = rng.integers(0, stream.size - L + 1, size=settings.batch_size)
    windows = stream[starts[:, None] + numpy.arange(L)[None, :]]               # [B, L]
    return _batch_of(stream, windows, settings, vocab_size, rng)


def validation_batches(stream, settings: PretrainSettings, vocab_size: int) -> list:
    """Consecutive windows of the validation stream, at most ``eval_windows``, in batches;
    BERT's masks (and NSP pairs) drawn once from a fixed generator."""
    L = window_length(settings)
    n = min(settings.eval_windows, stream.size // L)
    windows = stream[:n * L].reshape(n, L)
    rng = numpy.random.default_rng([settings.seed, 2**31 - 1])
    return [_batch_of(stream, windows[start:start + settings.batch_size], settings,
                      vocab_size, rng) for start in range(0, n, settings.batch_size)]


# -- the model ----------------------------------------------------------------------------
def build_model(family: str, model_config: dict, vocab_size: int, block_size: int,
                next_sentence: bool = False):
    """The model of ``family``, its vocabulary, positions and NSP head taken from the run."""
    given = sorted({"vocab_size", "block_size", "next_sentence"} & set(model_config))
    if given:
        raise ValueError(f"--model {given[0]} cannot be set: it comes from the pre-training "
                         "settings (vocab_size, block_size, next_sentence).")
    if family not in FAMILIES:
        raise ValueError(f"family={family!r} must be one of {sorted(FAMILIES)}.")
    cls = FAMILIES[family]
    values = dict(model_config, vocab_size=vocab_size, block_size=block_size)
    if family == "bert":
        values["next_sentence"] = next_sentence
    return cls(config_from_dict(cls.config_class, values, owner=cls.__name__)).to(numpy.float32)


def _rng_states(model) -> dict:
    return {name: m.get_rng_state() for name, m in model.named_modules()
            if hasattr(m, "get_rng_state")}


# -- the run ------------------------------------------------------------------------------
class PretrainRun:
    """The state a pre-training run carries between steps (tinylm/train/steps.py)."""

    def __init__(self, settings: PretrainSettings, model, data: PretrainData):
        self.settings, self.model, self.data = settings, model, data
        self.limits = settings
        self.history = StepHistory()
        self.optimizer = AdamW(decay_groups(model.parameters(), settings.weight_decay),
                               lr=settings.lr, betas=settings.betas, eps=settings.eps,
                               weight_decay=settings.weight_decay)
        self.valid = validation_batches(data.valid, settings, data.tokenizer.vocab_size)
        self.best_state = model.state_dict()

    def train_step(self, step: int) -> float:
        s = self.settings
        batch = training_batch(self.data.train, step, s, self.data.tokenizer.vocab_size)
        self.optimizer.lr = warmup_cosine(step, s.lr, s.warmup_steps,
                                          max(s.max_steps, s.warmup_steps + 1), s.min_lr)
        _, loss = self.model.forward(batch.inputs, **batch.forward_arguments())
        loss = check_finite_loss(float(to_numpy(loss)), step)
        self.model.backward()
        if s.grad_clip > 0:
            clip_grad_norm(self.model.parameters(), s.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss

    def validation(self) -> dict:
        """On the fixed batches: the mean LM loss per predicted token, its accuracy and
        perplexity exp(loss); with NSP also the NSP accuracy (the LM loss excludes it)."""
        total, correct, count, nsp_correct, rows = 0.0, 0, 0, 0, 0
        self.model.eval()
        for batch in self.valid:
            logits, _ = self.model.forward(batch.inputs, **batch.forward_arguments())
            predicted = batch.targets.reshape(-1)
            predicted = predicted[predicted != -100]
            z = to_numpy(logits).reshape(predicted.size, -1).astype(numpy.float64)
            top = z.max(axis=1, keepdims=True)
            log_z = numpy.log(numpy.exp(z - top).sum(axis=1)) + top[:, 0]
            total += float((log_z - z[numpy.arange(predicted.size), predicted]).sum())
            correct += int((z.argmax(axis=1) == predicted).sum())
            count += predicted.size
            if batch.nsp_targets is not None:
                guess = to_numpy(self.model.nsp_logits).argmax(axis=1)
                nsp_correct += int((guess == batch.nsp_targets).sum())
                rows += batch.nsp_targets.size
        self.model.train()
        loss = total / count
        result = {"val_loss": loss, "val_accuracy": correct / count,
                  "val_perplexity": math.exp(min(loss, 700.0))}
        return {**result, "val_nsp_accuracy": nsp_correct / rows} if rows else result

    def evaluate(self, started: float, log) -> None:
        h = self.history
        result = self.validation()
        if not math.isfinite(result["val_loss"]):
            raise NonFiniteLossError(f"the validation loss is {result['val_loss']} at step "
                                     f"{h.iteration}; the run diverged and is not saved.")
        h.evals.append({"iter": h.iteration, **result,
                        "train_loss": recent_train_loss(h, self.settings.eval_interval)})
        if h.best is None or result["val_loss"] < h.best["val_loss"]:
            h.best = {"iter": h.iteration, "val_loss": result["val_loss"]}
            self.best_state = self.model.state_dict()
        h.elapsed_s = time.perf_counter() - started
        nsp = (f", NSP accuracy {result['val_nsp_accuracy']:.3f}"
               if "val_nsp_accuracy" in result else "")
        log(f"step {h.iteration}: val loss {result['val_loss']:.4f}, accuracy "
            f"{result['val_accuracy']:.3f}, ppl {result['val_perplexity']:.1f}{nsp} "
            f"({h.elapsed_s / 60:.1f} min)")
        self.save()

    def save(self) -> Path:
        s, model = self.settings, self.model
        arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
        arrays.update({f"best/{k}": v for k, v in self.best_state.items()})
        arrays.update({f"optim/{k}": to_numpy(v) for k, v in self.optimizer.state_dict().items()})
        meta = {"model": PRETRAINED_MODEL, "family": s.family,
                "model_config": dataclasses.asdict(model.config),
                "train_config": dataclasses.asdict(s), "run": dataclasses.asdict(self.history),
                "provenance": {"tokenizer": self.data.tokenizer.to_dict(),
                               "corpora": corpus_provenance(s.corpus_names)},
                "rng": _rng_states(model)}
        return save_checkpoint(Path(s.out_dir) / CHECKPOINT_NAME, arrays, meta)

    def restore(self) -> None:
        out_dir = Path(self.settings.out_dir)
        arrays, meta = load_checkpoint(out_dir / CHECKPOINT_NAME)
        self.model.load_state_dict(split_prefix(arrays, "model"))
        self.best_state = split_prefix(arrays, "best")
        self.optimizer.load_state_dict(split_prefix(arrays, "optim"))
        for name, module in self.model.named_modules():
            if hasattr(module, "set_rng_state"):
                module.set_rng_state(meta["rng"][name])
        self.history = history_from_dict(meta["run"], out_dir / f"{CHECKPOINT_NAME}.json")


def initial_weights(init_dir) -> dict:
    """The best parameters of the pre-training run in ``init_dir`` (step 6)."""
    arrays, meta = load_checkpoint(Path(init_dir) / CHECKPOINT_NAME)
    if meta.get("model") != PRETRAINED_MODEL:
        raise ValueError(f"init={init_dir}: its checkpoint holds a {meta.get('model')!r} "
                         "model, not a pre-training run; give the OUT_DIR of `tinylm "
                         "pretrain`.")
    return split_prefix(arrays, "best")


def corpus_provenance(corpora) -> dict:
    """Each corpus file's registry name and sha256."""
    return {name: dataset_info(name).sha256 for corpus in corpora for name in CORPUS_FILES[corpus]}


def describe(data: PretrainData, model) -> str:
    """One line: the model's size, the corpus, the vocabulary and its unknown-word rate."""
    counts = ", ".join(f"{name} {len(train):,}+{len(valid):,}"
                       for name, (train, valid) in data.lines.items())
    valid_lines = [line for _, valid in data.lines.values() for line in valid]
    return (f"pretrain {type(model).__name__}: {model.num_parameters():,} parameters; lines "
            f"(train+valid) {counts}; {data.train.size:,} / {data.valid.size:,} training / "
            f"validation tokens; vocabulary {data.tokenizer.vocab_size:,} ([UNK] "
            f"{unknown_rate(data.tokenizer, valid_lines):.1%} of the validation tokens)")


def train_pretrain(settings: PretrainSettings, model_config: dict, resume: bool = False,
                   tokenizer=None, lines=None, log=print) -> StepHistory:
    """Pre-train and checkpoint (module docstring); returns the history. ``tokenizer``: a
    resumed run's own; ``lines``: {corpus: [lines]} in place of the registered corpora."""
    data = prepare_corpus(settings, tokenizer, lines)
    model = build_model(settings.family, model_config, data.tokenizer.vocab_size,
                        settings.block_size, settings.next_sentence)
    run = PretrainRun(settings, model.train(), data)
    if resume:
        run.restore()
    elif settings.init:
        model.load_state_dict(initial_weights(settings.init))
        run.best_state = model.state_dict()
    log(describe(data, model))
    run_steps(run, log)
    plot_history(run.history, Path(settings.out_dir) / "loss.png",
                 title=f"pre-training {settings.family}")
    return run.history
