"""Labelled texts for classification and their splits (chapter 09, fine-tuning).

Two tasks, read from the datasets of tinylm/data/datasets.py:

* ``"sms-spam"``: the UCI SMS Spam Collection (dataset ``sms_spam``), one message a line,
  ``label<TAB>text`` with label ham or spam: 5,574 messages, 747 of them spam. Every line is
  read exactly as it stands. (``pandas.read_csv(..., sep="\\t")`` yields 5,572 rows: it
  treats the double quotes inside some messages as quoting and merges lines; we do not.)
* ``"polarity"``: Pang & Lee's sentence polarity data v1.0 (datasets ``mr.neg`` and
  ``mr.pos``, latin-1): 5,331 negative and 5,331 positive movie-review snippets, one a
  line, negatives first. Lines are split on "\\n" only: the files contain byte 0x85, which
  latin-1 decodes to U+0085 (NEL) and ``str.splitlines`` would wrongly treat as a line break.

Texts are kept as the files have them (the polarity files' lower-cased, tokenized text with
its trailing space included); a text that is empty or only whitespace is an error.

Splits are index arrays into the task (``Split(train, val, test)``), so a caller takes
``task.texts[i]`` and ``task.labels[split.train]``:

* ``balanced_split``: the recipe of rasbt/LLMs-from-scratch chapter 6 -- every example of
  the smallest class (747 spam) plus as many of each other class drawn without replacement
  (747 ham), shuffled, then cut 70 / 10 / 20 with ``train_end = int(0.7 n)`` and
  ``val_end = train_end + int(0.1 n)``: 1,045 / 149 / 300 of n = 1,494. The draw and the
  shuffle use ``numpy.random.default_rng(seed)``, not pandas' ``sample(random_state=123)``,
  so the messages in each part differ from that book's while the recipe and the sizes are
  the same.
* ``stratified_split``: every example, each class cut in the same proportions
  (``test_fraction`` and ``val_fraction`` of each class, rounded; the rest trains).
* ``kfold``: k stratified folds fixed by the seed; each example is in exactly one test fold.
  ``stratified_holdout`` carves a validation part out of a fold's training part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy

from tinylm.data.datasets import dataset_info, load_text


@dataclass(frozen=True)
class TextClassificationTask:
    """Texts and their integer labels (``label_names[labels[i]]`` names text i's class)."""

    name: str
    texts: list
    labels: numpy.ndarray        # [N] int64, in [0, len(label_names))
    label_names: tuple

    def __post_init__(self):
        object.__setattr__(self, "label_names", tuple(self.label_names))
        object.__setattr__(self, "labels", _checked_labels(self))
        for i, text in enumerate(self.texts):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"task {self.name!r}: text {i} is empty ({text!r}); every "
                                 "example needs some text.")

    def __len__(self) -> int:
        return len(self.texts)

    def class_counts(self) -> numpy.ndarray:
        """[C] the number of examples of each class."""
        return numpy.bincount(self.labels, minlength=len(self.label_names))

    def take(self, indices) -> tuple:
        """(texts, labels) of the examples ``indices`` (an int array), in that order."""
        return [self.texts[i] for i in indices], self.labels[indices]


def _checked_labels(task: TextClassificationTask) -> numpy.ndarray:
    """The task's labels as int64 [N], one per text, each indexing label_names."""
    names, labels = task.label_names, numpy.asarray(task.labels)
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"task {task.name!r}: label_names {names!r} must be two or more "
                         "distinct names.")
    if labels.shape != (len(task.texts),):
        raise ValueError(f"task {task.name!r}: {len(task.texts)} texts but labels of shape "
                         f"{labels.shape}; give one label per text.")
    if labels.dtype.kind not in "iu" or labels.size and (labels.min() < 0
                                                         or labels.max() >= len(names)):
        raise ValueError(f"task {task.name!r}: labels must be integers in [0, {len(names)}) "
                         "indexing label_names.")
    return labels.astype(numpy.int64)


class Split(NamedTuple):
    """Index arrays (int64) into a task: the training, validation and test examples."""

    train: numpy.ndarray
    val: numpy.ndarray
    test: numpy.ndarray


# -- reading the files ----------------------------------------------------------------------
def file_lines(text: str) -> list:
    """The lines of a file's text, split on "\\n" only; a final "\\n" ends the last line."""
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def parse_labelled_lines(text: str, source: str, label_names: tuple) -> tuple:
    """``label<TAB>text`` lines -> (texts, labels [N] int64). ``source`` names the file in
    errors: a line without a tab, an unknown label or an empty text names its line."""
    index = {name: i for i, name in enumerate(label_names)}
    texts, labels = [], []
    for number, line in enumerate(file_lines(text), start=1):
        label, tab, message = line.partition("\t")
        if not tab or label not in index:
            raise ValueError(f"{source}, line {number}: expected 'label<TAB>text' with label "
                             f"one of {label_names}, got {line[:60]!r}.")
        if not message.strip():
            raise ValueError(f"{source}, line {number}: the {label} message is empty.")
        texts.append(message)
        labels.append(index[label])
    return texts, numpy.array(labels, dtype=numpy.int64)


def parse_sentences(text: str, source: str) -> list:
    """One sentence a line -> the sentences; an empty line is an error naming it."""
    lines = file_lines(text)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise ValueError(f"{source}, line {number}: empty line; every line must hold a "
                             "sentence.")
    return lines


def _source(dataset: str) -> str:
    return f"dataset {dataset!r} ({dataset_info(dataset).path})"


def _load_sms_spam(download_missing: bool) -> TextClassificationTask:
    names = ("ham", "spam")
    texts, labels = parse_labelled_lines(load_text("sms_spam", download_missing),
                                         _source("sms_spam"), names)
    return TextClassificationTask("sms-spam", texts, labels, names)


def _load_polarity(download_missing: bool) -> TextClassificationTask:
    parts = [parse_sentences(load_text(d, download_missing), _source(d))
             for d in ("mr.neg", "mr.pos")]
    labels = numpy.repeat(numpy.arange(2, dtype=numpy.int64), [len(p) for p in parts])
    return TextClassificationTask("polarity", parts[0] + parts[1], labels, ("neg", "pos"))


TASKS = {"sms-spam": _load_sms_spam, "polarity": _load_polarity}


def load_task(name: str, download_missing: bool = True) -> TextClassificationTask:
    """The labelled texts of task ``name`` ("sms-spam" or "polarity")."""
    if name not in TASKS:
        raise KeyError(f"unknown classification task {name!r}; known tasks: "
                       f"{', '.join(TASKS)}.")
    return TASKS[name](download_missing)


# -- splits ---------------------------------------------------------------------------------
def _check_parts(task: TextClassificationTask, parts: dict, fix: str) -> None:
    """Every named part (name -> indices) must hold at least one example of every class."""
    for part, indices in parts.items():
        counts = numpy.bincount(task.labels[indices], minlength=len(task.label_names))
        for c in numpy.flatnonzero(counts == 0):
            raise ValueError(f"task {task.name!r}: the {part} part ({len(indices)} examples) "
                             f"holds no {task.label_names[c]!r} example; {fix}")


def _class_indices(task: TextClassificationTask) -> list:
    """[C] arrays: the indices of each class's examples, ascending."""
    return [numpy.flatnonzero(task.labels == c) for c in range(len(task.label_names))]


def balanced_split(task: TextClassificationTask, seed: int = 123,
                   fractions=(0.7, 0.1, 0.2)) -> Split:
    """Every example of the smallest class plus as many of each other class, drawn without
    replacement, shuffled and cut by ``fractions`` (the module docstring gives the recipe)."""
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"balanced_split: fractions={tuple(fractions)} must be three positive "
                         "numbers (train, val, test) summing to 1, e.g. (0.7, 0.1, 0.2).")
    rng = numpy.random.default_rng(seed)
    groups = _class_indices(task)
    m = min(len(g) for g in groups)
    drawn = [g if len(g) == m else rng.choice(g, size=m, replace=False) for g in groups]
    pool = rng.permutation(numpy.concatenate(drawn))          # [n], n = C * m
    n = len(pool)
    train_end = int(fractions[0] * n)
    val_end = train_end + int(fractions[1] * n)
    split = Split(pool[:train_end], pool[train_end:val_end], pool[val_end:])
    _check_parts(task, split._asdict(), f"the smallest class has only {m} examples; the "
                 "balanced split needs more data or larger fractions.")
    return split


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def _stratified_cut(labels, indices, fraction: float, rng) -> tuple:
    """Shuffle each class of ``indices`` and cut ``fraction`` of it off:
    (the cut-off indices, the rest), each shuffled across classes."""
    cut, rest = [], []
    for c in numpy.unique(labels[indices]):
        members = rng.permutation(indices[labels[indices] == c])
        k = _round(fraction * len(members))
        cut.append(members[:k])
        rest.append(members[k:])
    return rng.permutation(numpy.concatenate(cut)), rng.permutation(numpy.concatenate(rest))


def stratified_holdout(task: TextClassificationTask, indices, fraction: float,
                       seed: int = 123) -> tuple:
    """Cut ``fraction`` of each class of ``indices`` off (rounded), e.g. a validation part out
    of a cross-validation fold's training part -> (held_out, rest), each an index array."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"stratified_holdout: fraction={fraction} must lie in (0, 1).")
    held_out, rest = _stratified_cut(task.labels, numpy.asarray(indices), fraction,
                                     numpy.random.default_rng(seed))
    _check_parts(task, {"held-out": held_out, "remaining": rest}, "a class has too few "
                 "examples for this fraction.")
    return held_out, rest


def stratified_split(task: TextClassificationTask, test_fraction: float = 0.2,
                     val_fraction: float = 0.1, seed: int = 123) -> Split:
    """All examples: ``test_fraction`` of each class tests, then ``val_fraction`` of each
    class (a fraction of the whole task) is carved out of what remains for validation."""
    if not (0.0 < test_fraction < 1.0 and 0.0 <= val_fraction and
            test_fraction + val_fraction < 1.0):
        raise ValueError(f"stratified_split: test_fraction={test_fraction} and val_fraction="
                         f"{val_fraction} need 0 < test, 0 <= val and test + val < 1.")
    rng = numpy.random.default_rng(seed)
    test, rest = _stratified_cut(task.labels, numpy.arange(len(task)), test_fraction, rng)
    val, train = _stratified_cut(task.labels, rest, val_fraction / (1.0 - test_fraction), rng)
    parts = {"train": train, "test": test} | ({"val": val} if val_fraction > 0 else {})
    _check_parts(task, parts, "a class has too few examples for these fractions; raise "
                 "them or use more data.")
    return Split(train, val, test)


class Fold(NamedTuple):
    """One fold of k-fold cross-validation: index arrays (int64) into the task."""

    train: numpy.ndarray
    test: numpy.ndarray


def kfold(task: TextClassificationTask, k: int = 10, seed: int = 123) -> list:
    """k stratified folds: each class is shuffled and dealt round-robin into the k test
    folds (classes one after another), so fold sizes differ by at most one, and so do the
    counts of each class. Returns k ``Fold(train, test)``, indices ascending; the test folds
    partition the task."""
    counts = task.class_counts()
    if k < 2 or counts.min() < k:
        raise ValueError(f"kfold: k={k} folds need k >= 2 and at least k examples of every "
                         f"class; the smallest class of {task.name!r} has {counts.min()}. "
                         "Use a smaller k.")
    rng = numpy.random.default_rng(seed)
    dealt = numpy.concatenate([rng.permutation(g) for g in _class_indices(task)])
    fold_of = numpy.empty(len(task), dtype=numpy.int64)
    fold_of[dealt] = numpy.arange(len(task)) % k
    return [Fold(numpy.flatnonzero(fold_of != f), numpy.flatnonzero(fold_of == f))
            for f in range(k)]
