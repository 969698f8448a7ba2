"""The standard evaluations of word vectors, counted exactly as gensim 4.4 counts them
(chapter 05).

    evaluate_analogies(wv)                  # Mikolov et al.'s 19,544 questions, 3CosAdd
    evaluate_similarity(wv, "wordsim353")   # Spearman's rho against human judgements
    evaluate_similarity(wv, "simlex999")
    evaluate_all(wv)                        # all three, for the command line

Why gensim's rules: they are what published word2vec numbers are measured with (gensim's
``KeyedVectors.evaluate_word_analogies`` follows word2vec's ``compute-accuracy``), so a
tinylm model and a gensim model trained on the same corpus are compared by the same ruler;
tests/test_word_vectors.py checks the counts are identical on the same vectors.

**The restricted, case-folded vocabulary.** Only the first ``restrict_vocab`` words (the
most frequent) take part. With ``case_insensitive`` every word, of the vocabulary and of
the questions, is upper-cased, and an upper-cased word stands for the *first* (most
frequent) word that upper-cases to it: "paris" at row 10 and "Paris" at row 50 both map to
row 10, whose vector answers for "PARIS". gensim builds that map as
``{w.upper(): index(w) for w in reversed(words[:restrict_vocab])}``, the earliest row
written last; ``_Lookup`` is the same map plus, for every row, the row its key maps to.

**Analogies.** The file has sections (lines starting with ": ") of questions "a b c d":
"a is to b as c is to d". A question counts only when all four words are in the
restricted vocabulary (the others are ``skipped``). The prediction is gensim's: of the 8
rows r with the highest cos(w_r, q), q = w_hat_b + w_hat_c - w_hat_a (normalised), drop
the rows of a, b and c, keep the first 5, and take the first whose upper-cased word is not
A, B or C; when all 5 are (other case variants of the question words), the last of them.
The question is correct when the prediction upper-cases to D. Here the scores of a batch
of questions against all R words are one matrix product [n, D] x [D, R], and the top 8 of
each row one ``argpartition``, so the 19,544 questions take seconds, not a Python loop of
most_similar calls. ``accuracy`` = correct / total over all sections (gensim's "Total
accuracy"), 0.0 when no question counts.

**Word pairs.** Each line is "w1<TAB>w2<TAB>score"; lines starting with '#' are comments,
lines that do not split into three fields or whose score is not a number are skipped, and
pairs with a word outside the restricted vocabulary are out-of-vocabulary (``oov_pairs``).
For the rest the model's cos(w1, w2) is compared with the human scores by Spearman's rank
correlation (and Pearson's r), computed here by hand:

    r(x, y) = sum (x_i - x_bar)(y_i - y_bar) / sqrt(sum (x_i - x_bar)^2 sum (y_i - y_bar)^2)
    rho(x, y) = r(rank(x), rank(y)),

ranks from 1 and tied values given the average of the ranks they share (what
``scipy.stats.spearmanr`` does). ``oov_ratio`` = 100 * oov_pairs / (pairs + oov_pairs).

Scores are computed in float64 (the unit vectors of ``WordVectors``); gensim computes in
the vectors' dtype, so on float32 vectors an analogy whose two best candidates differ by
less than float32 rounding (~1e-7) can be decided differently. On float64 vectors the
counts agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy

from tinylm.data.datasets import dataset_path
from tinylm.embeddings.vectors import WordVectors

DEFAULT_RESTRICT_VOCAB = 300000
# gensim: most_similar(..., topn=5) asks for topn + 3 candidates, drops the three question
# rows, keeps 5.
_CANDIDATES_KEPT = 5
_CANDIDATES_SCORED = _CANDIDATES_KEPT + 3
# Score matrices of about this many float64 entries per batch (32 MB).
_SCORES_PER_BATCH = 4_000_000

# The word-pair datasets by name: both are "w1<TAB>w2<TAB>score" with '#' comment lines
# (the copies in gensim's test data, which the registry points to).
SIMILARITY_DATASETS = {"wordsim353": "\t", "simlex999": "\t"}


class NoUsablePairsError(ValueError):
    """A word-pair file none of whose pairs can be scored: every pair has a word outside the
    vocabulary, or no line has the expected fields."""


# --- the restricted vocabulary ----------------------------------------------------------

@dataclass
class _Lookup:
    """key -> row for the first ``size`` words (key: the word, upper-cased when
    ``case_insensitive``), the earliest row winning; ``row_of_key[r]``: the row that row
    r's own key maps to (r itself, or an earlier case variant)."""
    to_row: dict
    row_of_key: numpy.ndarray
    size: int
    case_insensitive: bool

    def key(self, word: str) -> str:
        return word.upper() if self.case_insensitive else word


def _restricted_lookup(wv: WordVectors, restrict_vocab, case_insensitive: bool) -> _Lookup:
    size = len(wv) if restrict_vocab is None else min(int(restrict_vocab), len(wv))
    if size < 1:
        raise ValueError(f"restrict_vocab must be at least 1 (or None for all {len(wv)} "
                         f"words); got {restrict_vocab!r}.")
    fold = str.upper if case_insensitive else (lambda w: w)
    to_row = {}
    for row, word in enumerate(wv.words[:size]):
        to_row.setdefault(fold(word), row)          # the first row of each key wins
    row_of_key = numpy.array([to_row[fold(w)] for w in wv.words[:size]], dtype=numpy.intp)
    return _Lookup(to_row, row_of_key, size, case_insensitive)


# --- analogies --------------------------------------------------------------------------

@dataclass
class _Section:
    name: str
    rows: list = field(default_factory=list)      # (a, b, c, d) rows of counted questions


def evaluate_analogies(wv: WordVectors, path=None, restrict_vocab=DEFAULT_RESTRICT_VOCAB,
                       case_insensitive: bool = True) -> dict:
    """Analogy accuracy, counted as gensim 4.4's ``evaluate_word_analogies`` (module
    docstring). ``path``: a questions file (default: the "analogies" dataset,
    questions-words.txt). Returns ``accuracy``, ``correct``, ``total`` (questions counted),
    ``skipped`` (questions with a word outside the restricted vocabulary), ``questions``
    (well-formed question lines), ``oov_ratio`` (100 * skipped / questions) and
    ``sections``: [{"section", "correct", "total"}] in file order."""
    path = dataset_path("analogies") if path is None else Path(path)
    lookup = _restricted_lookup(wv, restrict_vocab, case_insensitive)
    sections, questions, skipped = _read_analogy_sections(path, lookup)
    unit = wv.unit_vectors[:lookup.size]
    results = []
    for section in sections:
        rows = numpy.array(section.rows, dtype=numpy.intp).reshape(-1, 4)
        predicted = predict_analogies(unit, lookup.row_of_key, rows[:, 0], rows[:, 1], rows[:, 2])
        results.append({"section": section.name, "correct": int((predicted == rows[:, 3]).sum()),
                        "total": len(rows)})
    correct = sum(s["correct"] for s in results)
    total = sum(s["total"] for s in results)
    return {"accuracy": correct / total if total else 0.0, "correct": correct, "total": total,
            "skipped": skipped, "questions": questions,
            "oov_ratio": 100.0 * skipped / questions if questions else 0.0,
            "sections": results}


def _read_analogy_sections(path: Path, lookup: _Lookup):
    """The sections of ``path`` with the rows of their in-vocabulary questions, the number
    of well-formed question lines and of those skipped for a missing word. As gensim: a
    line of other than four words is ignored; a question before any ": " header is an
    error."""
    sections, questions, skipped = [], 0, 0
    with open(path, encoding="utf-8", newline="\n") as f:
        for line_no, line in enumerate(f, start=1):
            if line.startswith(": "):
                sections.append(_Section(line.lstrip(": ").strip()))
                continue
            if not sections:
                raise ValueError(f"{path}: line {line_no} comes before any section header; "
                                 f"an analogy file starts with a line ': section-name'.")
            words = line.split()
            if len(words) != 4:
                continue
            questions += 1
            rows = [lookup.to_row.get(lookup.key(w)) for w in words]
            if None in rows:
                skipped += 1
            else:
                sections[-1].rows.append(rows)
    return sections, questions, skipped


def predict_analogies(unit, row_of_key, a, b, c):
    """For each question (rows ``a``, ``b``, ``c`` of the unit vectors ``unit`` [R, D]) the
    key-row of gensim's 3CosAdd answer (module docstring), or -1 when there is none (fewer
    than four words). Processed in batches of questions so each score matrix stays small."""
    a, b, c = (numpy.asarray(x, dtype=numpy.intp) for x in (a, b, c))
    batch = max(1, _SCORES_PER_BATCH // len(unit))
    return numpy.concatenate(
        [_predict_batch(unit, row_of_key, a[i:i + batch], b[i:i + batch], c[i:i + batch])
         for i in range(0, len(a), batch)] or [numpy.empty(0, dtype=numpy.intp)])


def _predict_batch(unit, row_of_key, a, b, c):
    candidates = _top_candidates(_analogy_queries(unit, a, b, c) @ unit.T)
    question = numpy.stack([a, b, c], axis=1)[:, None, :]          # [n, 1, 3]
    # gensim's most_similar drops the question rows and keeps the first 5 of the rest
    not_question = ~(candidates[:, :, None] == question).any(axis=2)
    kept = not_question & (numpy.cumsum(not_question, axis=1) <= _CANDIDATES_KEPT)
    # ... then evaluate_word_analogies takes the first whose key is not a question word's
    keys = row_of_key[candidates]
    acceptable = kept & ~(keys[:, :, None] == question).any(axis=2)
    first_acceptable = numpy.argmax(acceptable, axis=1)
    last_kept = kept.shape[1] - 1 - numpy.argmax(kept[:, ::-1], axis=1)
    position = numpy.where(acceptable.any(axis=1), first_acceptable, last_kept)
    answer = keys[numpy.arange(len(keys)), position]
    return numpy.where(kept.any(axis=1), answer, -1)


def _analogy_queries(unit, a, b, c):
    """q_hat = (w_hat_b + w_hat_c - w_hat_a) / |...| per question, [n, D]."""
    q = unit[b] + unit[c] - unit[a]
    norms = numpy.linalg.norm(q, axis=1, keepdims=True)
    return q / numpy.where(norms > 0, norms, 1.0)


def _top_candidates(scores):
    """Per row of ``scores`` [n, R], the columns of the 8 highest scores, highest first
    (all R columns when R <= 8)."""
    k = min(_CANDIDATES_SCORED, scores.shape[1])
    if k < scores.shape[1]:            # the k largest, partitioned in place of a -scores copy
        top = numpy.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
    else:
        top = numpy.broadcast_to(numpy.arange(k), (len(scores), k))
    order = numpy.argsort(-numpy.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return numpy.take_along_axis(top, order, axis=1)


# --- word pairs -------------------------------------------------------------------------

def evaluate_word_pairs(wv: WordVectors, path, case_insensitive: bool = True,
                        restrict_vocab=DEFAULT_RESTRICT_VOCAB, delimiter: str = "\t",
                        encoding: str = "utf-8") -> dict:
    """Correlation of cos(w1, w2) with human similarity scores, counted as gensim 4.4's
    ``evaluate_word_pairs`` (module docstring). Returns ``spearman`` (rho), ``pearson``
    (r), ``pairs`` (used), ``oov_pairs``, ``oov_ratio`` (%) and ``invalid_lines``. A file
    with no usable pair is a ``NoUsablePairsError`` (a ``ValueError``, as in gensim)."""
    path = Path(path)
    lookup = _restricted_lookup(wv, restrict_vocab, case_insensitive)
    rows1, rows2, gold, oov, invalid = _read_word_pairs(path, lookup, delimiter, encoding)
    if not gold:
        raise NoUsablePairsError(
            f"{path}: no pair with both words among the first {lookup.size} words of the "
            f"vocabulary ({oov} out-of-vocabulary pairs, {invalid} lines not "
            f"'word{delimiter}word{delimiter}score'); check the delimiter, or the vocabulary.")
    unit = wv.unit_vectors
    model = numpy.einsum("ij,ij->i", unit[rows1], unit[rows2])
    gold = numpy.asarray(gold, dtype=numpy.float64)
    return {"spearman": spearman(gold, model), "pearson": pearson(gold, model),
            "pairs": len(gold), "oov_pairs": oov, "oov_ratio": 100.0 * oov / (len(gold) + oov),
            "invalid_lines": invalid}


def _read_word_pairs(path: Path, lookup: _Lookup, delimiter: str, encoding: str):
    rows1, rows2, gold, oov, invalid = [], [], [], 0, 0
    with open(path, encoding=encoding) as f:
        for line in f:
            if not line or line.startswith("#"):
                continue
            fields = line.split(delimiter)
            try:
                w1, w2, score = fields
                score = float(score)
            except ValueError:
                invalid += 1
                continue
            r1, r2 = lookup.to_row.get(lookup.key(w1)), lookup.to_row.get(lookup.key(w2))
            if r1 is None or r2 is None:
                oov += 1
                continue
            rows1.append(r1)
            rows2.append(r2)
            gold.append(score)
    return rows1, rows2, gold, oov, invalid


def evaluate_similarity(wv: WordVectors, name: str, **options) -> dict:
    """``evaluate_word_pairs`` on a dataset by name: "wordsim353" or "simlex999"."""
    if name not in SIMILARITY_DATASETS:
        raise ValueError(f"unknown word-similarity dataset {name!r}; known: "
                         f"{', '.join(sorted(SIMILARITY_DATASETS))}.")
    options.setdefault("delimiter", SIMILARITY_DATASETS[name])
    return evaluate_word_pairs(wv, dataset_path(name), **options)


def evaluate_all(wv: WordVectors, restrict_vocab=DEFAULT_RESTRICT_VOCAB,
                 case_insensitive: bool = True) -> dict:
    """The analogy accuracy and the Spearman rho of each similarity dataset, each with its
    coverage (the fraction of questions / pairs whose words are all in the vocabulary), for
    the command line. A score with nothing to measure (coverage 0) is None, not a number."""
    options = {"restrict_vocab": restrict_vocab, "case_insensitive": case_insensitive}
    analogies = evaluate_analogies(wv, **options)
    summary = {"analogies": analogies["accuracy"] if analogies["total"] else None,
               "analogies_correct": analogies["correct"], "analogies_total": analogies["total"],
               "analogies_coverage": _fraction(analogies["total"], analogies["questions"])}
    for name in SIMILARITY_DATASETS:
        try:
            pairs = evaluate_similarity(wv, name, **options)
        except NoUsablePairsError:
            summary.update({name: None, f"{name}_pairs": 0, f"{name}_coverage": 0.0})
            continue
        summary.update({name: pairs["spearman"], f"{name}_pairs": pairs["pairs"],
                        f"{name}_coverage": _fraction(pairs["pairs"],
                                                      pairs["pairs"] + pairs["oov_pairs"])})
    return summary


def _fraction(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


# --- correlations, by hand --------------------------------------------------------------

def average_ranks(x):
    """Ranks 1..n of ``x``, tied values given the mean of the ranks they occupy
    (scipy.stats.rankdata's "average"): [10, 20, 20, 30] -> [1, 2.5, 2.5, 4]."""
    x = numpy.asarray(x, dtype=numpy.float64)
    order = numpy.argsort(x, kind="stable")
    ordered = x[order]
    starts_group = numpy.concatenate([[True], ordered[1:] != ordered[:-1]])
    group = numpy.cumsum(starts_group) - 1
    starts = numpy.flatnonzero(starts_group)                 # 0-based first position
    ends = numpy.concatenate([starts[1:], [len(x)]])         # 0-based one past the last
    mean_rank = (starts + 1 + ends) / 2.0                    # mean of ranks starts+1 .. ends
    ranks = numpy.empty(len(x))
    ranks[order] = mean_rank[group]
    return ranks


def pearson(x, y) -> float:
    """Pearson's r (module docstring); NaN when either input is constant (r is undefined),
    as scipy returns."""
    x = numpy.asarray(x, dtype=numpy.float64)
    y = numpy.asarray(y, dtype=numpy.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"pearson needs two 1-D arrays of the same length >= 2; got shapes "
                         f"{x.shape} and {y.shape}.")
    dx, dy = x - x.mean(), y - y.mean()
    denominator = numpy.sqrt((dx @ dx) * (dy @ dy))
    if denominator == 0:
        return float("nan")
    return float(numpy.clip((dx @ dy) / denominator, -1.0, 1.0))


def spearman(x, y) -> float:
    """Spearman's rho: Pearson's r of the average ranks."""
    return pearson(average_ranks(x), average_ranks(y))
