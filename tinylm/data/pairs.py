"""Sentence pairs for sequence-to-sequence models: loading, a split that never lets a sentence
leak from training into test, and padded batches for teacher forcing.

    pairs = load_pairs("fra-eng")                    # [(source, target), ...] as in the file
    train, valid, test = split_pairs(pairs, valid_fraction=0.02, test_fraction=0.03)
    batch = pad_pairs(src_ids, tgt_ids, pad_id, bos_id, eos_id)    # a PairBatch

The data sets (tinylm/data/datasets.py):

* ``addition``, ``date``: deep-learning-from-scratch-2's toy tasks, 50,000 lines of
  ``question_answer`` padded with spaces to a fixed width (``16+75  _91  ``); the question is
  the source, the answer the target, both without the padding.
* ``fra-eng``: 167,130 English -> French pairs, ``English<TAB>French``.
* ``cmn-eng``: 29,155 pairs, ``English<TAB>Chinese<TAB>attribution``; the direction is
  Chinese -> English (``reverse=True`` gives English -> Chinese).

**The split.** A random split of the pairs would put "Go." -> "Va !" in training and
"Go." -> "Marche." in test: the test sentence has been seen. ``split_pairs`` therefore
groups the pairs into connected components -- two pairs are connected when they share their
source or their target sentence -- and assigns whole components to a split by a hash of the
component's smallest source sentence, so no source and no target sentence occurs in two
splits, and the split depends on the data alone (no seed, no order). On fra-eng the
largest component holds 52 pairs, so the fractions come out as asked to within a fraction of
a percent.

**Batches for teacher forcing.** The decoder reads ``bos y_1 .. y_n`` and must predict
``y_1 .. y_n eos``: ``tgt_in`` and ``tgt_out`` are the target shifted by one. Padding fills
the sources with ``pad_id`` (``src_mask`` is False there, so attention ignores it) and
``tgt_out`` with ``IGNORE_INDEX`` (-100), which the cross-entropy skips.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy

from tinylm.data.datasets import load_text

IGNORE_INDEX = -100
TOY_TASKS = ("addition", "date")
TRANSLATION = {"fra-eng": False, "cmn-eng": True}    # name -> does the file hold target first


class PairBatch(NamedTuple):
    """src [B, S] ids, src_mask [B, S] bool (True = a real token), tgt_in [B, T] (bos + y),
    tgt_out [B, T] (y + eos, IGNORE_INDEX where padded)."""

    src: numpy.ndarray
    src_mask: numpy.ndarray
    tgt_in: numpy.ndarray
    tgt_out: numpy.ndarray


def _toy_pairs(text: str, name: str) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        question, sep, answer = line.partition("_")
        if not sep or not question.strip() or not answer.strip():
            raise ValueError(f"dataset {name!r}, line {number}: {line!r} is not "
                             "'question_answer' (a question, '_', an answer).")
        pairs.append((question.strip(), answer.strip()))
    return pairs


def _translation_pairs(text: str, name: str, target_first: bool) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
            raise ValueError(f"dataset {name!r}, line {number}: {line[:60]!r} does not hold two "
                             "tab-separated sentences.")
        first, second = fields[0].strip(), fields[1].strip()
        pairs.append((second, first) if target_first else (first, second))
    return pairs


def load_pairs(name: str, reverse: bool = False) -> list[tuple[str, str]]:
    """The (source, target) pairs of a sequence-to-sequence data set, in file order.

    ``reverse`` swaps source and target (e.g. French -> English).
    """
    if name in TOY_TASKS:
        pairs = _toy_pairs(load_text(name), name)
    elif name in TRANSLATION:
        pairs = _translation_pairs(load_text(name), name, TRANSLATION[name])
    else:
        raise ValueError(f"{name!r} is not a sentence-pair data set; choose one of "
                         f"{sorted([*TOY_TASKS, *TRANSLATION])}.")
    return [(t, s) for s, t in pairs] if reverse else pairs


def _components(pairs, connect_targets: bool = True) -> list[int]:
    """For each pair, a name of its connected component (pairs sharing a source, or with
    ``connect_targets`` a target sentence, are connected; union-find with path halving): the
    component's smallest source sentence, so that the name does not depend on the order of
    the pairs."""
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for source, target in pairs:
        a, b = find(("s", source)), find(("t", target) if connect_targets else ("s", source))
        if a != b:
            parent[a] = b
    roots = [find(("s", source)) for source, _ in pairs]
    smallest: dict = {}                      # root -> the component's smallest source sentence
    for (source, _), root in zip(pairs, roots):
        if root not in smallest or source < smallest[root]:
            smallest[root] = source
    return [smallest[root] for root in roots]


def _bucket(key) -> float:
    """A number in [0, 1) fixed by the component's representative sentence."""
    digest = hashlib.sha256(repr(key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def split_pairs(pairs, valid_fraction: float = 0.05, test_fraction: float = 0.05,
                connect_targets: bool = True):
    """-> (train, valid, test) lists of pairs, no sentence in two of them (module docstring).

    Each connected component goes to test when its hash is below ``test_fraction``, to
    valid when below ``test_fraction + valid_fraction``, else to train. With
    ``connect_targets=False`` only pairs with the same source are kept together: for the toy
    tasks, whose answers repeat by nature ("91" answers 91 different additions), joining
    equal targets would put every question with a given answer into one split, so that no
    test answer has ever been produced in training.
    """
    if not (0.0 <= valid_fraction < 1.0 and 0.0 < test_fraction < 1.0
            and valid_fraction + test_fraction < 1.0):
        raise ValueError(f"valid_fraction={valid_fraction} and test_fraction={test_fraction} "
                         "must be fractions (test > 0) that leave something to train on.")
    splits = ([], [], [])
    for pair, component in zip(pairs, _components(pairs, connect_targets)):
        u = _bucket(component)
        index = 2 if u < test_fraction else 1 if u < test_fraction + valid_fraction else 0
        splits[index].append(pair)
    if not splits[0] or not splits[2]:
        raise ValueError(f"splitting {len(pairs)} pairs left {len(splits[0])} for training and "
                         f"{len(splits[2])} for test; use more pairs or other fractions.")
    return splits


def _padded(sequences, length: int, fill: int) -> numpy.ndarray:
    out = numpy.full((len(sequences), length), fill, dtype=numpy.int64)
    for row, seq in enumerate(sequences):
        out[row, :len(seq)] = seq
    return out


def pad_pairs(src_ids, tgt_ids, pad_id: int, bos_id: int, eos_id: int) -> PairBatch:
    """Lists of id sequences (one per pair) -> a PairBatch padded to the longest in each."""
    if len(src_ids) != len(tgt_ids) or not src_ids:
        raise ValueError(f"pad_pairs needs as many sources as targets (at least one); got "
                         f"{len(src_ids)} and {len(tgt_ids)}.")
    empty = [i for i, seq in enumerate(src_ids) if len(seq) == 0]
    if empty:
        raise ValueError(f"source {empty[0]} of the batch is empty; every source needs at least "
                         "one token.")
    src = _padded(src_ids, max(len(s) for s in src_ids), pad_id)              # [B, S]
    T = max(len(t) for t in tgt_ids) + 1
    tgt_in = _padded([[bos_id, *t] for t in tgt_ids], T, pad_id)              # [B, T]
    tgt_out = _padded([[*t, eos_id] for t in tgt_ids], T, IGNORE_INDEX)      # [B, T]
    mask = _padded([[1] * len(s) for s in src_ids], src.shape[1], 0).astype(bool)
    return PairBatch(src, mask, tgt_in, tgt_out)
