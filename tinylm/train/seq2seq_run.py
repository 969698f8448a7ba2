"""A sequence-to-sequence run of ``tinylm train seq2seq``: sentence pairs -> vocabularies ->
length-bucketed batches -> an encoder-decoder trained with AdamW -> a checkpoint.

    settings = seq2seq_settings({"dataset": "addition", "family": "rnn", ...})
    history = train_seq2seq(settings, {"n_hidden": 128}, out_dir="runs/addition")

The pipeline, in order:

1. **Pairs.** ``load_pairs(dataset, reverse=reverse_pairs)`` (tinylm/data/pairs.py; fra-eng
   holds English first, so French -> English is ``reverse_pairs=True``).
2. **Filter.** With ``max_tokens`` = N > 0, pairs with more than N tokens on either side
   (counted in that side's scheme, before any vocabulary) are dropped -- from every split,
   since the filter runs before the split; a translation asked of the model later must fit
   the same limit (``tinylm translate`` names it).
3. **Split.** ``split_pairs(pairs, valid_fraction, test_fraction, connect_targets)``: fixed
   fractions of whole connected components (independent of any seed). For translation
   (``keep_together="source_or_target"``) no source and no target sentence is in two
   splits; for the toy tasks (``keep_together="source"``) no question is, while answers,
   which repeat by nature, may. The presets use 5 % / 10 % for the toy tasks (about 2,500
   / 5,000 pairs), 1 % / 2 % for fra-eng (about 1,700 / 3,200) and 3 % / 6 % for cmn-eng.
4. **Vocabularies.** One per side, from the training split only, tokens seen at least
   ``min_count`` times (tinylm/data/pair_tokens.py). ``reverse_source`` feeds each source
   backwards (x_S .. x_1), the trick of Sutskever et al. 2014 that deep-learning-from-
   scratch-2 applies to its toy tasks: the first target tokens then sit close to the
   source tokens they depend on.
5. **Batches** (``training_batches``). Each epoch e: the training pairs are shuffled by
   ``numpy.random.default_rng([seed, e])``, sorted (stably) by (source length, target
   length), cut greedily into batches whose padded size rows x (S_max + T_max + 1) stays
   within ``token_budget`` tokens (the + 1: bos/eos), and the batches are shuffled by the
   same generator. The order is a pure function of (lengths, budget, seed, epoch), and the
   sorted order fixes every batch's length profile, so each epoch has the same number of
   batches n and step s reads batch s mod n of epoch s // n: a resumed run, or a PyTorch
   twin, reads the identical sequence.
6. **Model.** ``family`` "rnn" (tinylm/models/seq2seq_rnn.py) or "transformer"
   (tinylm.models.seq2seq_transformer, imported only when asked for), its configuration
   from the preset and ``--model`` overrides; ``src_vocab`` / ``tgt_vocab`` come from the
   vocabularies.
7. **Optimisation.** AdamW (decay on matrices only, tinylm/optim/decay.py), global-norm
   clipping at ``grad_clip``, cross-entropy with ``label_smoothing``, and the learning rate
   ``lr_at(step, settings)``: a linear warm-up over W = ``warmup_steps``, then

       "inverse_sqrt":  lr * sqrt(W / (s + 1))                   (Vaswani et al. 2017)
       "cosine":        the half cosine from lr to min_lr at max_steps (optim.warmup_cosine)
       "constant":      lr

   inverse_sqrt needs no horizon, so a run stopped by ``max_minutes`` has a schedule that
   does not depend on when it stops; cosine decays over ``max_steps``.
8. **Validation and checkpoints.** Every ``eval_interval`` steps (and at the end) the mean
   cross-entropy per target token over the whole validation split (no smoothing); the
   checkpoint (tinylm/checkpoint.py: atomic, content-hashed, no pickle) is written then,
   with the parameters of the best validation loss so far beside the latest ones:

       ckpt-<hash>.npz   model/<name>  the latest parameters   best/<name>  the best ones
                         optim/<name>  AdamW's state (an exact --resume)
       ckpt.json         {"model": "seq2seq", "model_config", "train_config" (these
                          settings), "run" (losses, evaluations, best, elapsed seconds, why it
                          stopped), "provenance" ({"vocab": {"source", "target"}, "dataset",
                          "sha256"}), "rng" (dropout generators)}

The run stops at ``max_steps`` or after ``max_minutes`` of training, whichever comes first
(0 minutes: no time limit); both count the whole run, a resumed part included (``--resume
--max-minutes 20`` on a run that trained 8 minutes trains 12 more). The wall time is
recorded. Training is float32.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import time
from pathlib import Path

import numpy

from tinylm.backend import to_numpy
from tinylm.checkpoint import load_checkpoint, save_checkpoint, split_prefix
from tinylm.data.pair_tokens import (BOS_ID, EOS_ID, PAD_ID, SCHEMES, SideVocabulary,
                                     tokens_of)
from tinylm.data.pairs import TOY_TASKS, TRANSLATION, load_pairs, pad_pairs, split_pairs
from tinylm.optim import AdamW, clip_grad_norm, decay_groups, warmup_cosine
from tinylm.train.loop import CHECKPOINT_NAME, NonFiniteLossError
from tinylm.train.plot import plot_history
from tinylm.train.restore import SEQ2SEQ_MODEL
from tinylm.train.setup import data_provenance
from tinylm.train.steps import (StepHistory, check_finite_loss, history_from_dict,
                                recent_train_loss, run_steps)
from tinylm.typed_config import config_from_dict

FAMILIES = {"rnn": "tinylm.models.seq2seq_rnn:Seq2SeqRNN",
            "transformer": "tinylm.models.seq2seq_transformer:Seq2SeqTransformer"}
LR_SCHEDULES = ("inverse_sqrt", "cosine", "constant")
KEEP_TOGETHER = ("source_or_target", "source")


@dataclasses.dataclass
class Seq2SeqSettings:
    """Everything about a seq2seq run except the model's own configuration."""

    # data
    dataset: str = "addition"            # addition, date, fra-eng, cmn-eng
    reverse_pairs: bool = False          # swap load_pairs' source and target
    src_scheme: str = "chars"            # "chars" | "words"
    tgt_scheme: str = "chars"
    min_count: int = 1                   # rarer training tokens become <unk>
    max_tokens: int = 50                 # pairs longer on either side are dropped (0: none)
    valid_fraction: float = 0.05
    test_fraction: float = 0.1
    keep_together: str = "source_or_target"   # pairs sharing this stay in one split
    reverse_source: bool = False         # feed the source backwards
    # model and optimisation
    family: str = "rnn"                  # "rnn" | "transformer"
    token_budget: int = 4096             # padded tokens per batch, rows x (S + T + 1)
    lr: float = 1e-3
    betas: tuple = (0.9, 0.98)
    eps: float = 1e-9
    weight_decay: float = 0.0
    grad_clip: float = 1.0               # 0: no clipping
    label_smoothing: float = 0.0
    lr_schedule: str = "inverse_sqrt"    # "inverse_sqrt" | "cosine" | "constant"
    warmup_steps: int = 0
    min_lr: float = 0.0                  # cosine's floor
    # length, evaluation, output
    max_steps: int = 2000
    max_minutes: float = 0.0             # 0: no time limit
    eval_interval: int = 500
    seed: int = 0                        # batch order and initial weights
    out_dir: str = "runs/seq2seq"
    progress: bool = True

    def __post_init__(self):
        problem = self._problem()
        if problem:
            raise ValueError(f"seq2seq setting {problem}.")

    def _problem(self) -> str | None:
        known = (*TOY_TASKS, *TRANSLATION)
        checks = [
            (self.dataset in known, f"dataset={self.dataset!r} must be one of {known}"),
            (self.src_scheme in SCHEMES and self.tgt_scheme in SCHEMES,
             f"src_scheme={self.src_scheme!r}, tgt_scheme={self.tgt_scheme!r} must be one of "
             f"{SCHEMES}"),
            (self.family in FAMILIES, f"family={self.family!r} must be one of "
                                      f"{sorted(FAMILIES)}"),
            (self.lr_schedule in LR_SCHEDULES,
             f"lr_schedule={self.lr_schedule!r} must be one of {LR_SCHEDULES}"),
            (self.keep_together in KEEP_TOGETHER,
             f"keep_together={self.keep_together!r} must be one of {KEEP_TOGETHER}"),
            (self.min_count >= 1, f"min_count={self.min_count} must be >= 1"),
            (self.max_tokens >= 0, f"max_tokens={self.max_tokens} must be >= 0 (0: no filter)"),
            (self.token_budget >= 3, f"token_budget={self.token_budget} must be >= 3"),
            (self.lr > 0 and self.min_lr >= 0, f"lr={self.lr}, min_lr={self.min_lr} must be "
                                               "> 0 and >= 0"),
            (0.0 <= self.label_smoothing < 1.0,
             f"label_smoothing={self.label_smoothing} must lie in [0, 1)"),
            (min(self.weight_decay, self.grad_clip, self.warmup_steps, self.max_steps,
                 self.max_minutes, self.seed) >= 0,
             "weight_decay, grad_clip, warmup_steps, max_steps, max_minutes and seed must be "
             ">= 0"),
            (self.eval_interval >= 1, f"eval_interval={self.eval_interval} must be >= 1"),
        ]
        return next((text for ok, text in checks if not ok), None)

    @property
    def metric(self) -> str:
        """"exact" (whole-answer accuracy) for the toy tasks, "bleu" for translation."""
        return "exact" if self.dataset in TOY_TASKS else "bleu"


def seq2seq_settings(values: dict) -> Seq2SeqSettings:
    """Settings from plain data (a preset, flags, a checkpoint's JSON), every field checked."""
    return config_from_dict(Seq2SeqSettings, values, owner="seq2seq settings")


# -- data ---------------------------------------------------------------------------------
@dataclasses.dataclass
class PairData:
    """The three splits (lists of (source, target) strings) and the two vocabularies."""

    train: list
    valid: list
    test: list
    source: SideVocabulary
    target: SideVocabulary


def filter_pairs(pairs, settings: Seq2SeqSettings) -> list:
    """The pairs with at most ``max_tokens`` tokens on each side (all of them for 0)."""
    if settings.max_tokens == 0:
        return list(pairs)
    limit = settings.max_tokens
    return [(s, t) for s, t in pairs if len(tokens_of(s, settings.src_scheme)) <= limit
            and len(tokens_of(t, settings.tgt_scheme)) <= limit]


def prepare_pairs(settings: Seq2SeqSettings, vocabularies=None, pairs=None) -> PairData:
    """Load (or take ``pairs``), filter and split; build the vocabularies on the training
    split unless ``vocabularies`` (source, target) of a stored run are given."""
    pairs = load_pairs(settings.dataset, settings.reverse_pairs) if pairs is None else pairs
    kept = filter_pairs(pairs, settings)
    if not kept:
        raise ValueError(f"no pair of {settings.dataset!r} has at most max_tokens="
                         f"{settings.max_tokens} tokens per side; raise max_tokens.")
    train, valid, test = split_pairs(kept, settings.valid_fraction, settings.test_fraction,
                                     connect_targets=settings.keep_together != "source")
    if not valid:
        raise ValueError(f"valid_fraction={settings.valid_fraction} leaves no validation "
                         "pairs; the run needs some to keep its best parameters.")
    if vocabularies is None:
        vocabularies = (SideVocabulary.build([s for s, _ in train], settings.src_scheme,
                                             settings.min_count),
                        SideVocabulary.build([t for _, t in train], settings.tgt_scheme,
                                             settings.min_count))
    return PairData(train, valid, test, *vocabularies)


def source_ids(text: str, vocab: SideVocabulary, reverse_source: bool) -> list[int]:
    """The ids the encoder reads: the source's tokens, backwards when ``reverse_source``."""
    ids = vocab.encode(text)
    return ids[::-1] if reverse_source else ids


def encode_pairs(pairs, data: PairData, reverse_source: bool) -> tuple[list, list]:
    """-> (source id lists, target id lists), one of each per pair."""
    return ([source_ids(s, data.source, reverse_source) for s, _ in pairs],
            [data.target.encode(t) for _, t in pairs])


# -- batches ------------------------------------------------------------------------------
def _cut_by_budget(order, src_lengths, tgt_lengths, token_budget: int) -> list:
    """Consecutive runs of ``order`` whose rows x (S_max + T_max + 1) <= token_budget (a
    pair too long for the budget on its own makes a batch of one)."""
    batches, current, longest_s, longest_t = [], [], 0, 0
    for i in order:
        s, t = max(longest_s, src_lengths[i]), max(longest_t, tgt_lengths[i])
        if current and (len(current) + 1) * (s + t + 1) > token_budget:
            batches.append(numpy.array(current, dtype=numpy.int64))
            current, s, t = [], src_lengths[i], tgt_lengths[i]
        current.append(i)
        longest_s, longest_t = s, t
    if current:
        batches.append(numpy.array(current, dtype=numpy.int64))
    return batches


def _by_length(indices, src_lengths, tgt_lengths):
    """``indices`` stably sorted by (source length, target length)."""
    keys = numpy.asarray(src_lengths)[indices] * 100_003 + numpy.asarray(tgt_lengths)[indices]
    return numpy.asarray(indices)[numpy.argsort(keys, kind="stable")]


def training_batches(src_lengths, tgt_lengths, token_budget: int, seed: int,
                     epoch: int) -> list:
    """The batches of epoch ``epoch``: a list of index arrays into the training pairs, every
    pair exactly once (the module docstring, step 5). Pure in its arguments."""
    rng = numpy.random.default_rng([seed, epoch])
    shuffled = rng.permutation(len(src_lengths))
    batches = _cut_by_budget(_by_length(shuffled, src_lengths, tgt_lengths), src_lengths,
                             tgt_lengths, token_budget)
    return [batches[i] for i in rng.permutation(len(batches))]


def evaluation_batches(src_lengths, tgt_lengths, token_budget: int) -> list:
    """The validation batches: sorted by length, not shuffled."""
    order = _by_length(numpy.arange(len(src_lengths)), src_lengths, tgt_lengths)
    return _cut_by_budget(order, src_lengths, tgt_lengths, token_budget)


def padded_batch(src_ids, tgt_ids, indices):
    """The PairBatch of the pairs ``indices`` (tinylm/data/pairs.py's pad_pairs)."""
    return pad_pairs([src_ids[i] for i in indices], [tgt_ids[i] for i in indices],
                     PAD_ID, BOS_ID, EOS_ID)


# -- the learning rate --------------------------------------------------------------------
def lr_at(step: int, settings: Seq2SeqSettings) -> float:
    """The learning rate of step ``step`` (0, 1, ...): linear warm-up lr (s + 1) / W over the
    first W = warmup_steps steps, then the schedule of the module docstring (step 7)."""
    W, lr = settings.warmup_steps, settings.lr
    if settings.lr_schedule == "cosine":
        return warmup_cosine(step, lr, W, max(settings.max_steps, W + 1), settings.min_lr)
    if step < W:
        return lr * (step + 1) / W
    if settings.lr_schedule == "inverse_sqrt":
        return lr * math.sqrt(max(W, 1) / (step + 1))
    return lr


# -- the model ----------------------------------------------------------------------------
def model_class(family: str):
    """The class of ``family``, imported on first use."""
    if family not in FAMILIES:
        raise ValueError(f"seq2seq family {family!r} is not one of {sorted(FAMILIES)}.")
    module_name, class_name = FAMILIES[family].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        raise ValueError(f"the {family!r} family ({module_name}) is not part of this tinylm; "
                         "use family 'rnn'.") from None
    return getattr(module, class_name)


def build_model(family: str, model_config: dict, src_vocab: int, tgt_vocab: int):
    """The model, its vocabulary sizes taken from the data, every field checked."""
    given = sorted({"src_vocab", "tgt_vocab"} & set(model_config))
    if given:
        raise ValueError(f"--model {given[0]} cannot be set: the vocabulary sizes come from "
                         "the data (see the min_count setting).")
    cls = model_class(family)
    values = dict(model_config, src_vocab=src_vocab, tgt_vocab=tgt_vocab)
    model = cls(config_from_dict(cls.config_class, values, owner=cls.__name__))
    return model.to(dtype=numpy.float32)


def check_lengths_fit(model, settings: Seq2SeqSettings) -> None:
    """A model with learned or fixed positions (``max_len``) must hold the longest pair."""
    limit = getattr(model.config, "max_len", None)
    if limit is not None and (settings.max_tokens == 0 or settings.max_tokens + 1 > limit):
        raise ValueError(f"the model's max_len={limit} positions cannot hold pairs of up to "
                         f"max_tokens={settings.max_tokens} tokens (+ bos/eos); set "
                         f"max_tokens <= {limit - 1} or --model max_len="
                         f"{max(settings.max_tokens, 1) + 1}.")


def _rng_states(model) -> dict:
    return {name: m.get_rng_state() for name, m in model.named_modules()
            if hasattr(m, "get_rng_state")}


# -- the run ------------------------------------------------------------------------------
class PairBatches:
    """A run's encoded training and validation pairs, and the batch of every step: batch
    step mod n of epoch step // n (n batches per epoch), the same for any model that trains
    on the run (a PyTorch twin included)."""

    def __init__(self, settings: Seq2SeqSettings, data: PairData):
        self.settings = settings
        self.src, self.tgt = encode_pairs(data.train, data, settings.reverse_source)
        self.src_len = [len(s) for s in self.src]
        self.tgt_len = [len(t) for t in self.tgt]
        self.steps_per_epoch = len(training_batches(self.src_len, self.tgt_len,
                                                    settings.token_budget, settings.seed, 0))
        self.valid = encode_pairs(data.valid, data, settings.reverse_source)
        self._epoch, self._batches = None, None

    def batch_at(self, step: int):
        """The PairBatch of step ``step``."""
        epoch, index = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._batches = training_batches(self.src_len, self.tgt_len,
                                             self.settings.token_budget, self.settings.seed,
                                             epoch)
        return padded_batch(self.src, self.tgt, self._batches[index])

    def validation_batches(self) -> list:
        """The validation split as PairBatches, sorted by length."""
        src, tgt = self.valid
        return [padded_batch(src, tgt, indices)
                for indices in evaluation_batches([len(s) for s in src], [len(t) for t in tgt],
                                                  self.settings.token_budget)]


class _Run:
    """The state a training run carries between steps."""

    def __init__(self, settings, model, data: PairData, history: StepHistory):
        self.settings, self.model, self.data, self.history = settings, model, data, history
        self.limits = settings
        self.optimizer = AdamW(decay_groups(model.parameters(), settings.weight_decay),
                               lr=settings.lr, betas=settings.betas, eps=settings.eps,
                               weight_decay=settings.weight_decay)
        self.batches = PairBatches(settings, data)
        self.best_state = model.state_dict()

    def train_step(self, step: int) -> float:
        """One AdamW step on the batch of ``step``; returns its (smoothed) loss."""
        b = self.batches.batch_at(step)
        self.optimizer.lr = lr_at(step, self.settings)
        _, loss = self.model.forward(b.src, b.tgt_in, b.tgt_out, b.src_mask,
                                     label_smoothing=self.settings.label_smoothing)
        loss = check_finite_loss(float(to_numpy(loss)), step)
        self.model.backward()
        if self.settings.grad_clip > 0:
            clip_grad_norm(self.model.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss

    def validation_loss(self) -> float:
        """Mean cross-entropy per target token (eos included) over the validation split."""
        total, count = 0.0, 0
        self.model.eval()
        for b in self.batches.validation_batches():
            _, loss = self.model.forward(b.src, b.tgt_in, b.tgt_out, b.src_mask)
            tokens = int((b.tgt_out != -100).sum())
            total, count = total + float(to_numpy(loss)) * tokens, count + tokens
        self.model.train()
        return total / count

    def evaluate(self, started: float, log) -> None:
        """Validation loss -> history (and the best parameters), then the checkpoint."""
        h = self.history
        val_loss = self.validation_loss()
        if not math.isfinite(val_loss):
            raise NonFiniteLossError(f"the validation loss is {val_loss} at step "
                                     f"{h.iteration}; the run diverged and is not saved.")
        h.evals.append({"iter": h.iteration, "val_loss": val_loss,
                        "train_loss": recent_train_loss(h, self.settings.eval_interval)})
        if h.best is None or val_loss < h.best["val_loss"]:
            h.best = {"iter": h.iteration, "val_loss": val_loss}
            self.best_state = self.model.state_dict()
        h.elapsed_s = time.perf_counter() - started
        log(f"step {h.iteration}: val loss {val_loss:.4f} (best {h.best['val_loss']:.4f} at "
            f"step {h.best['iter']}), {h.elapsed_s / 60:.1f} min")
        self.save()

    def save(self) -> Path:
        return save_seq2seq_run(self)


def save_seq2seq_run(run: _Run) -> Path:
    """The checkpoint of the module docstring (step 8), written atomically."""
    s, model = run.settings, run.model
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"best/{k}": v for k, v in run.best_state.items()})
    arrays.update({f"optim/{k}": to_numpy(v) for k, v in run.optimizer.state_dict().items()})
    meta = {"model": SEQ2SEQ_MODEL, "model_config": dataclasses.asdict(model.config),
            "train_config": dataclasses.asdict(s), "run": dataclasses.asdict(run.history),
            "provenance": {"vocab": {"source": run.data.source.to_dict(),
                                     "target": run.data.target.to_dict()},
                           **data_provenance(s.dataset)},
            "rng": _rng_states(model)}
    return save_checkpoint(Path(s.out_dir) / CHECKPOINT_NAME, arrays, meta)


def _restore(run: _Run, out_dir: Path) -> None:
    """Model, best parameters, optimizer, generators and history from OUT_DIR/ckpt."""
    arrays, meta = load_checkpoint(out_dir / CHECKPOINT_NAME)
    run.model.load_state_dict(split_prefix(arrays, "model"))
    run.best_state = split_prefix(arrays, "best")
    run.optimizer.load_state_dict(split_prefix(arrays, "optim"))
    for name, module in run.model.named_modules():
        if hasattr(module, "set_rng_state"):
            module.set_rng_state(meta["rng"][name])
    run.history = history_from_dict(meta["run"], out_dir / f"{CHECKPOINT_NAME}.json")


def train_seq2seq(settings: Seq2SeqSettings, model_config: dict, resume: bool = False,
                  vocabularies=None, pairs=None, log=print) -> StepHistory:
    """Train and checkpoint a seq2seq model (module docstring); returns its history.

    ``vocabularies`` (source, target): a resumed run's own; ``pairs``: in place of the
    dataset's (tests). A Ctrl-C stops between steps, naming the last checkpoint."""
    data = prepare_pairs(settings, vocabularies, pairs)
    model = build_model(settings.family, model_config, len(data.source), len(data.target))
    check_lengths_fit(model, settings)
    run = _Run(settings, model.train(), data, StepHistory())
    if resume:
        _restore(run, Path(settings.out_dir))
    log(f"seq2seq {settings.family}: {model.num_parameters():,} parameters; "
        f"{len(data.train):,} / {len(data.valid):,} / {len(data.test):,} train / valid / test "
        f"pairs; vocabularies {len(data.source):,} source and {len(data.target):,} target "
        f"tokens; {run.batches.steps_per_epoch} batches per epoch")
    run_steps(run, log)
    plot_history(run.history, Path(settings.out_dir) / "loss.png",
                 title=f"seq2seq {settings.family} on {settings.dataset}")
    return run.history
