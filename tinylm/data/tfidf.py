"""TF-IDF features: each text becomes a sparse, L2-normalised row of term weights (chapter 09).

A term is a word n-gram or a character n-gram, chosen by ``analyzer``:

* ``"word"``: the lower-cased text's tokens, runs of two or more word characters
  (``TOKEN_PATTERN``, scikit-learn's default; one-letter words such as "a" and "I" are not
  tokens), then every n-gram of consecutive tokens for n in ``ngram_range``, joined by one
  space ("not good" is a 2-gram).
* ``"char_wb"``: each whitespace-separated word padded with one space on either side,
  " good ", then its character n-grams (" go", "goo", "ood", "od "); no n-gram spans two
  words. A padded word shorter than n counts once, whole.
* ``"char"``: character n-grams of the whole text, spaces included, after every run of two
  or more whitespace characters has become one space.

Weights. For document d and term t, with tf_dt the count of t in d, n the number of
documents the vectorizer was fitted on and df_t the number of them containing t,

    idf_t  = ln((1 + n) / (1 + df_t)) + 1     "smooth" idf: as if one extra document held
                                               every term once, so no idf is infinite, and
                                               the +1 keeps terms in every document (idf 1)
    w_dt   = tf_dt * idf_t                     (tf_dt -> 1 + ln tf_dt with sublinear_tf)
    x_d    = w_d / ||w_d||_2                   rows of unit length (an empty row stays 0)

The vocabulary is every term of the fitted texts, sorted (code-point order), after pruning:
terms in fewer than ``min_df`` or more than ``max_df`` documents are dropped (an int is a
count of documents, a float a fraction of them), then, with ``max_features`` = K, only the
K terms of highest total count in the corpus are kept (ties: the alphabetically first). A
term of a transformed text that is not in the vocabulary is ignored.

These are the features of scikit-learn's ``TfidfVectorizer`` with the same settings (its
defaults otherwise: norm="l2", use_idf, smooth_idf), column for column; tests/test_tfidf.py
checks that. One difference: scikit-learn breaks ties at the ``max_features`` cut with
NumPy's unstable quicksort, so which of two equally frequent terms it keeps there is an
accident of the sort; here it is the alphabetically first.

    vec = TfidfVectorizer(analyzer="word", ngram_range=(1, 2))
    X_train = vec.fit_transform(train_texts)        # CSRMatrix [N, F], float64
    X_test = vec.transform(test_texts)              # same columns
    json.dumps(vec.to_dict())                       # vocabulary + idf, no pickle
"""

from __future__ import annotations

import math
import re
from collections import Counter
from numbers import Integral, Real

import numpy

from tinylm.functional.sparse_linear import CSRMatrix

TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")
WHITE_SPACES = re.compile(r"\s\s+")
ANALYZERS = ("word", "char_wb", "char")
FORMAT = "tinylm.tfidf/1"


# -- terms ----------------------------------------------------------------------------------
def word_ngrams(text: str, ngram_range: tuple) -> list:
    """The word n-grams of ``text`` (already lower-cased if wanted), n in ngram_range."""
    tokens = TOKEN_PATTERN.findall(text)
    lo, hi = ngram_range
    return [" ".join(tokens[i:i + n]) for n in range(lo, hi + 1)
            for i in range(len(tokens) - n + 1)]


def char_wb_ngrams(text: str, ngram_range: tuple) -> list:
    """Character n-grams inside space-padded words (scikit-learn's "char_wb")."""
    lo, hi = ngram_range
    grams = []
    for word in text.split():
        padded = f" {word} "
        for n in range(lo, hi + 1):
            if len(padded) <= n:                    # a short word counts once, whole
                grams.append(padded)
                break
            grams.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return grams


def char_ngrams(text: str, ngram_range: tuple) -> list:
    """Character n-grams of the text, whitespace runs collapsed to one space ("char")."""
    text = WHITE_SPACES.sub(" ", text)
    lo, hi = ngram_range
    return [text[i:i + n] for n in range(lo, hi + 1) for i in range(len(text) - n + 1)]


_NGRAMS = {"word": word_ngrams, "char_wb": char_wb_ngrams, "char": char_ngrams}


# -- settings -------------------------------------------------------------------------------
def _check_ngram_range(ngram_range) -> tuple:
    try:
        lo, hi = (int(n) for n in ngram_range)
    except (TypeError, ValueError):
        raise ValueError(f"TfidfVectorizer: ngram_range must be two integers (min_n, max_n), "
                         f"got {ngram_range!r}.") from None
    if not 1 <= lo <= hi:
        raise ValueError(f"TfidfVectorizer: ngram_range={ngram_range!r} needs "
                         "1 <= min_n <= max_n, e.g. (1, 2).")
    return lo, hi


def _check_df(name: str, value):
    """An int >= 1 (documents) or a float in [0, 1] (a fraction of them)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"TfidfVectorizer: {name} must be an int or a float, got {value!r}.")
    valid = value >= 1 if isinstance(value, Integral) else 0.0 <= value <= 1.0
    if not valid:
        raise ValueError(f"TfidfVectorizer: {name}={value!r}: give an int >= 1 (a number of "
                         "documents) or a float in [0, 1] (a fraction of them).")
    return value


def _check_max_features(value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, Integral)
                              or value < 1):
        raise ValueError(f"TfidfVectorizer: max_features must be None or an int >= 1, got "
                         f"{value!r}.")
    return value


def _check_texts(texts, owner: str) -> list:
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{owner}: expected a list of texts, got one {type(texts).__name__}; "
                        "wrap it in a list: [text].")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{owner}: text {i} is a {type(text).__name__}, not a str.")
    return texts


def _doc_count(value, n_docs: int) -> float:
    """min_df / max_df as a number of documents."""
    return value if isinstance(value, Integral) else value * n_docs


# -- the vectorizer -------------------------------------------------------------------------
class TfidfVectorizer:
    """Texts -> TF-IDF rows (a ``CSRMatrix``); the module docstring gives the maths."""

    def __init__(self, analyzer: str = "word", ngram_range=(1, 1), lowercase: bool = True,
                 min_df=1, max_df=1.0, max_features: int | None = None,
                 sublinear_tf: bool = False):
        if analyzer not in ANALYZERS:
            raise ValueError(f"TfidfVectorizer: unknown analyzer {analyzer!r}; use one of "
                             f"{ANALYZERS}.")
        self.analyzer = analyzer
        self.ngram_range = _check_ngram_range(ngram_range)
        self.lowercase = bool(lowercase)
        self.min_df = _check_df("min_df", min_df)
        self.max_df = _check_df("max_df", max_df)
        self.max_features = _check_max_features(max_features)
        self.sublinear_tf = bool(sublinear_tf)
        self.vocabulary: dict | None = None          # term -> column
        self.idf = None                              # [F] float64

    def settings(self) -> dict:
        return {"analyzer": self.analyzer, "ngram_range": list(self.ngram_range),
                "lowercase": self.lowercase, "min_df": self.min_df, "max_df": self.max_df,
                "max_features": self.max_features, "sublinear_tf": self.sublinear_tf}

    def analyze(self, text: str) -> list:
        """The terms of one text, in order, repeats kept."""
        return _NGRAMS[self.analyzer](text.lower() if self.lowercase else text, self.ngram_range)

    @property
    def feature_names(self) -> list:
        """The term of each column, in column order (sorted)."""
        self._check_fitted()
        return list(self.vocabulary)

    # fitting
    def fit(self, texts) -> "TfidfVectorizer":
        """Learn the vocabulary and the idf of ``texts`` (a list of str)."""
        self._fit_counts(self._count(texts, "TfidfVectorizer.fit"))
        return self

    def fit_transform(self, texts) -> CSRMatrix:
        """``fit(texts)`` then ``transform(texts)``, analysing each text once."""
        counts = self._count(texts, "TfidfVectorizer.fit_transform")
        self._fit_counts(counts)
        return self._weights(counts)

    def transform(self, texts) -> CSRMatrix:
        """TF-IDF rows [len(texts), F] of ``texts`` in the fitted vocabulary."""
        self._check_fitted()
        return self._weights(self._count(texts, "TfidfVectorizer.transform"))

    def _count(self, texts, owner: str) -> list:
        return [Counter(self.analyze(text)) for text in _check_texts(texts, owner)]

    def _fit_counts(self, counts: list) -> None:
        if not counts:
            raise ValueError("TfidfVectorizer.fit: no texts were given.")
        df, tf = Counter(), Counter()
        for doc in counts:
            df.update(doc.keys())
            tf.update(doc)
        if not df:
            raise ValueError("TfidfVectorizer.fit: the texts hold no terms (empty vocabulary): "
                             "with analyzer='word' a token has two or more word characters; "
                             "check the texts or use a char analyzer.")
        terms = sorted(df)
        doc_freq = numpy.array([df[t] for t in terms], dtype=numpy.int64)     # [T]
        keep = self._pruned(doc_freq, numpy.array([tf[t] for t in terms]), len(counts))
        self.vocabulary = {terms[i]: col for col, i in enumerate(keep)}
        self.idf = numpy.log((len(counts) + 1) / (doc_freq[keep] + 1.0)) + 1.0  # [F]

    def _pruned(self, doc_freq, total_freq, n_docs: int):
        """Indices (ascending) of the terms kept by min_df, max_df and max_features."""
        low, high = _doc_count(self.min_df, n_docs), _doc_count(self.max_df, n_docs)
        if high < low:
            raise ValueError(f"TfidfVectorizer: max_df={self.max_df!r} allows fewer documents "
                             f"({high}) than min_df={self.min_df!r} requires ({low}) for "
                             f"{n_docs} texts; lower min_df or raise max_df.")
        keep = numpy.flatnonzero((doc_freq >= low) & (doc_freq <= high))
        if keep.size == 0:
            raise ValueError(f"TfidfVectorizer: no term occurs in between {low} and {high} of "
                             f"the {n_docs} texts (min_df={self.min_df!r}, max_df="
                             f"{self.max_df!r}); lower min_df or raise max_df.")
        if self.max_features is not None and keep.size > self.max_features:
            by_count = numpy.argsort(-total_freq[keep], kind="stable")[:self.max_features]
            keep = numpy.sort(keep[by_count])
        return keep

    # weighting
    def _weights(self, counts: list) -> CSRMatrix:
        """tf * idf of each text's known terms, rows L2-normalised, columns sorted."""
        rows, cols, tfs = [], [], []
        for r, doc in enumerate(counts):
            for term, tf in doc.items():
                col = self.vocabulary.get(term)
                if col is not None:
                    rows.append(r)
                    cols.append(col)
                    tfs.append(tf)
        rows, cols = numpy.array(rows, dtype=numpy.int64), numpy.array(cols, dtype=numpy.int64)
        order = numpy.lexsort((cols, rows))                                  # row, then column
        rows, cols = rows[order], cols[order]
        tf = numpy.array(tfs, dtype=numpy.float64)[order]
        if self.sublinear_tf:
            tf = 1.0 + numpy.log(tf)
        w = tf * self.idf[cols]                                               # [nnz]
        norms = numpy.sqrt(numpy.bincount(rows, weights=w * w, minlength=len(counts)))
        indptr = numpy.zeros(len(counts) + 1, dtype=numpy.int64)
        indptr[1:] = numpy.cumsum(numpy.bincount(rows, minlength=len(counts)))
        return CSRMatrix(w / norms[rows], cols, indptr, (len(counts), len(self.vocabulary)))

    # saving
    def _check_fitted(self) -> None:
        if self.vocabulary is None:
            raise RuntimeError("TfidfVectorizer: call fit(texts) (or from_dict) before "
                               "transform; the vocabulary and idf come from fitting.")

    def to_dict(self) -> dict:
        """The settings, vocabulary (column order) and idf: plain JSON-serialisable data."""
        self._check_fitted()
        return {"format": FORMAT, "settings": self.settings(),
                "vocabulary": self.feature_names, "idf": [float(v) for v in self.idf]}

    @classmethod
    def from_dict(cls, state: dict) -> "TfidfVectorizer":
        """The vectorizer ``to_dict`` described, fitted; a malformed state is a ValueError."""
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"TfidfVectorizer.from_dict: not a {FORMAT} state (its 'format' "
                             f"is {state.get('format') if isinstance(state, dict) else None!r});"
                             " it must come from TfidfVectorizer.to_dict().")
        try:
            vec = cls(**state["settings"])
            terms = list(state["vocabulary"])
            idf = numpy.asarray(state["idf"], dtype=numpy.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"TfidfVectorizer.from_dict: the state is damaged ({e}).") from e
        if (len(terms) != idf.shape[0] or len(set(terms)) != len(terms) or terms != sorted(terms)
                or not all(math.isfinite(v) and v >= 1.0 for v in idf)):
            raise ValueError("TfidfVectorizer.from_dict: the vocabulary must be distinct sorted "
                             "terms with one finite idf >= 1 each; the state is damaged.")
        vec.vocabulary = {t: i for i, t in enumerate(terms)}
        vec.idf = idf
        return vec
