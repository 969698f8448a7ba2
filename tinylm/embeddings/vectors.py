"""Word vectors: a vocabulary and one row per word, and what is asked of them (chapter 05).

    wv = WordVectors(words, vectors)            # words most frequent first, vectors [V, D]
    wv.most_similar("king")                     # [(word, cosine), ...], the query left out
    wv.analogy("man", "king", "woman")          # man is to king as woman is to ? -> queen
    wv.save_word2vec_format("vectors.txt")      # the text format gensim and word2vec read

Similarity is cosine similarity, the dot product of unit vectors,

    cos(u, v) = u . v / (|u| |v|),

so a word's vector is compared by direction only: a frequent word's longer vector does not
make it everybody's neighbour. ``W_hat``, the rows of W divided by their norms, is computed
once (float64, so rankings do not hinge on float32 rounding); a query is then one
matrix-vector product ``W_hat @ q_hat``.

A query of several words is gensim's and the original word2vec's: the mean of the unit
vectors of the positive words minus those of the negative ones, itself normalised,

    q = sum_p w_hat_p - sum_n w_hat_n,      score(v) = cos(w_v, q),

and the query words are never returned (the nearest word to "king" is "king"). An analogy
"a is to b as c is to ?" is the 3CosAdd rule of Mikolov et al. (2013): the word nearest
to b - a + c, i.e. ``most_similar([b, c], negative=[a])``.

The text format (word2vec's ``-binary 0``) is a header line "V D" and then one line per
word: the word, then its D values, separated by single spaces, in UTF-8. A word containing
whitespace cannot be written in it (a reader could not tell where it ends), so saving one
is refused rather than written as a file that reads back wrong.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable, Sequence

import numpy

from tinylm.files import write_text_atomically


# Significant digits that make a value read back to the same float (float32: 9, float64: 17).
_ROUND_TRIP_DIGITS = {numpy.dtype(numpy.float32): 9, numpy.dtype(numpy.float64): 17}


class UnknownWordError(KeyError):
    """A word that is not in the vocabulary.

    A ``KeyError`` because a vocabulary is a mapping from words to rows, and a failed lookup
    in a mapping is a ``KeyError`` everywhere in Python (``dict``, gensim's KeyedVectors), so
    ``except KeyError`` in caller code keeps working. ``str()`` is the plain message (a bare
    ``KeyError`` would print it in quotes). ``word`` and ``suggestions`` are kept for callers
    that want to offer them.
    """

    def __init__(self, word: str, vocabulary_size: int, suggestions: Sequence[str]):
        self.word = word
        self.vocabulary_size = vocabulary_size
        self.suggestions = list(suggestions)
        hint = (f" Did you mean {', '.join(repr(s) for s in self.suggestions)}?"
                if self.suggestions else "")
        self.message = (f"{word!r} is not in the vocabulary of {vocabulary_size} words.{hint}")
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):                   # rebuilt from its own arguments, not the message
        return type(self), (self.word, self.vocabulary_size, self.suggestions)


class WordVectorsFormatError(ValueError):
    """A word2vec text file that cannot be read: its header, a line, or its length is wrong."""


class WordVectors:
    """``words[i]`` has the vector ``vectors[i]``; the words are kept in the order given
    (most frequent first, as the trainers produce them), which is what ``restrict_vocab``
    in the evaluations relies on."""

    def __init__(self, words: Sequence[str], vectors):
        words = list(words)
        vectors = numpy.asarray(vectors)
        _check_words_and_vectors(words, vectors)
        self.words = words
        self.vectors = vectors
        self.word_to_index = {w: i for i, w in enumerate(words)}
        self._unit = None                       # W_hat, computed on first use

    # --- lookups -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word) -> bool:
        return word in self.word_to_index

    def __repr__(self) -> str:
        return f"WordVectors({len(self)} words, {self.dim} dimensions)"

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def index(self, word: str) -> int:
        """The row of ``word``; an ``UnknownWordError`` (a ``KeyError``) naming the closest
        known words when there is none."""
        try:
            return self.word_to_index[word]
        except (KeyError, TypeError):
            raise UnknownWordError(word, len(self), self.suggestions(word)) from None

    def suggestions(self, word, n: int = 3) -> list[str]:
        """Known words close to ``word``: first those equal to it up to case ("Paris" ->
        "paris"), then difflib's closest spellings ("londn" -> "london")."""
        if not isinstance(word, str):
            return []
        folded = word.casefold()
        same_but_case = [w for w in self.words if w.casefold() == folded and w != word][:n]
        spelled_alike = difflib.get_close_matches(word, self.words, n=n)
        return list(dict.fromkeys(same_but_case + spelled_alike))[:n]

    def vector(self, word: str):
        """The vector of ``word`` as stored (not normalised)."""
        return self.vectors[self.index(word)]

    @property
    def unit_vectors(self):
        """W_hat [V, D] float64: each row divided by its norm (a zero row stays zero)."""
        if self._unit is None:
            self._unit = unit_rows(self.vectors)
        return self._unit

    # --- similarity --------------------------------------------------------------------

    def similarity(self, word1: str, word2: str) -> float:
        """cos(w1, w2)."""
        unit = self.unit_vectors
        return float(unit[self.index(word1)] @ unit[self.index(word2)])

    def most_similar(self, word_or_words, topn: int = 10,
                     negative: Iterable[str] = ()) -> list[tuple[str, float]]:
        """The ``topn`` words with the highest cosine to the normalised query
        q = sum_p w_hat_p - sum_n w_hat_n, best first, the query words left out: the same
        words and cosines as gensim's ``KeyedVectors.most_similar(positive, negative)``."""
        positive = [word_or_words] if isinstance(word_or_words, str) else list(word_or_words)
        negative = [negative] if isinstance(negative, str) else list(negative)
        if not positive and not negative:
            raise ValueError("most_similar needs at least one word; got none.")
        if topn < 1:
            return []
        query_rows = [self.index(w) for w in positive + negative]
        cosines = self.unit_vectors @ self._query(positive, negative)
        best = top_indices(cosines, topn + len(set(query_rows)))
        excluded = set(query_rows)
        return [(self.words[i], float(cosines[i])) for i in best if i not in excluded][:topn]

    def analogy(self, a: str, b: str, c: str, topn: int = 1) -> list[tuple[str, float]]:
        """"a is to b as c is to ?": the words nearest to b - a + c (3CosAdd), i.e.
        ``most_similar([b, c], negative=[a])``, the convention of gensim's
        ``evaluate_word_analogies`` (and of ``evaluate_analogies`` here)."""
        return self.most_similar([b, c], topn=topn, negative=[a])

    def _query(self, positive: list[str], negative: list[str]):
        """q_hat: the unit vector of sum_p w_hat_p - sum_n w_hat_n (gensim divides by the
        number of words first; that does not change the direction)."""
        unit = self.unit_vectors
        q = numpy.zeros(self.dim)
        for w in positive:
            q += unit[self.index(w)]
        for w in negative:
            q -= unit[self.index(w)]
        norm = numpy.linalg.norm(q)
        return q / norm if norm > 0 else q

    # --- the word2vec text format ------------------------------------------------------

    def save_word2vec_format(self, path) -> Path:
        """Write the text format: "V D", then "word v_1 ... v_D" per word, UTF-8, each value
        with enough significant digits to read back to the same float (9 for float32, 17
        for float64). Written to a temporary file beside ``path`` and renamed over it, so a
        reader never sees half a file. Returns the path."""
        path = Path(path)
        _check_writable_words(self.words)
        values, digits = _values_and_digits(self.vectors)
        fmt = f"%.{digits}g"
        lines = [f"{len(self)} {self.dim}\n"]
        for word, row in zip(self.words, values.tolist()):
            lines.append(word + " " + " ".join(fmt % x for x in row) + "\n")
        write_text_atomically(path, "".join(lines))
        return path

    @classmethod
    def load_word2vec_format(cls, path, dtype=numpy.float32) -> "WordVectors":
        """Read the text format written by ``save_word2vec_format``, gensim or word2vec (a
        trailing space after the last value, as word2vec writes it, is allowed). A wrong
        header, a line with the wrong number of values or a non-numeric one, or a number of
        lines other than the header's is a ``WordVectorsFormatError`` naming the line."""
        path = Path(path)
        lines = _read_lines(path)
        count, dim = _parse_header(path, lines[0] if lines else "")
        body = lines[1:]
        if body and body[-1] == "":
            body = body[:-1]                      # the newline that ends the last line
        if len(body) != count:
            raise WordVectorsFormatError(
                f"{path}: the header says {count} words but the file has {len(body)} lines "
                f"after it; the file is truncated or its header is wrong.")
        words, vectors = [], numpy.empty((count, dim), dtype=dtype)
        for line_no, line in enumerate(body, start=2):
            word, vectors[line_no - 2] = _parse_vector_line(path, line_no, line, dim)
            words.append(word)
        duplicates = _duplicates(words)
        if duplicates:
            raise WordVectorsFormatError(
                f"{path}: the word {duplicates[0]!r} appears on more than one line; each word "
                f"must have exactly one vector.")
        return cls(words, vectors)


# --- helpers shared with evaluation.py and projection.py --------------------------------

def unit_rows(matrix):
    """Each row of ``matrix`` divided by its Euclidean norm, as float64; zero rows stay zero
    (their cosine with anything is 0 rather than NaN)."""
    m = numpy.asarray(matrix, dtype=numpy.float64)
    norms = numpy.linalg.norm(m, axis=1, keepdims=True)
    return m / numpy.where(norms > 0, norms, 1.0)


def top_indices(scores, k: int):
    """The indices of the ``k`` largest scores, largest first (all of them when k >= len):
    argpartition finds the k in O(V), then only those k are sorted."""
    k = min(k, len(scores))
    if k <= 0:
        return numpy.empty(0, dtype=numpy.intp)
    top = numpy.argpartition(scores, len(scores) - k)[-k:] if k < len(scores) else \
        numpy.arange(k)
    return top[numpy.argsort(-scores[top], kind="stable")]


def _check_words_and_vectors(words: list, vectors) -> None:
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be a [V, D] matrix; got shape {vectors.shape}.")
    if len(words) != vectors.shape[0]:
        raise ValueError(f"{len(words)} words but {vectors.shape[0]} vectors; there must be "
                         f"one row of vectors per word.")
    if not numpy.issubdtype(vectors.dtype, numpy.floating):
        raise ValueError(f"vectors must be floating point; got {vectors.dtype}.")
    not_strings = [w for w in words if not isinstance(w, str)]
    if not_strings:
        raise ValueError(f"words must be strings; got {not_strings[0]!r} "
                         f"({type(not_strings[0]).__name__}).")
    duplicates = _duplicates(words)
    if duplicates:
        raise ValueError(f"the word {duplicates[0]!r} appears more than once ({len(duplicates)} "
                         f"duplicated words); each word must have exactly one vector.")


def _duplicates(words: list[str]) -> list[str]:
    seen, repeated = set(), []
    for w in words:
        if w in seen:
            repeated.append(w)
        seen.add(w)
    return repeated


def _check_writable_words(words: list[str]) -> None:
    for i, w in enumerate(words):
        if w == "" or any(ch.isspace() for ch in w):
            raise ValueError(
                f"word {i} ({w!r}) is empty or contains whitespace, which the word2vec text "
                f"format cannot hold (spaces separate the fields); rename it (e.g. replace "
                f"spaces with '_') before saving.")


def _values_and_digits(vectors):
    """Values as float32 or float64 (float16 is widened to float32) and their digits."""
    dtype = numpy.dtype(numpy.float64 if vectors.dtype == numpy.float64 else numpy.float32)
    return vectors.astype(dtype, copy=False), _ROUND_TRIP_DIGITS[dtype]


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such word-vector file.") from None
    except UnicodeDecodeError as e:
        raise WordVectorsFormatError(
            f"{path}: byte {e.start} is not UTF-8; is this the binary word2vec format? Only "
            f"the text format is read here (save with binary=False).") from None
    return text.split("\n")


def _parse_header(path: Path, header: str) -> tuple[int, int]:
    fields = header.split()
    if len(fields) != 2 or not all(f.isdigit() for f in fields) or int(fields[1]) < 1:
        raise WordVectorsFormatError(
            f"{path}: line 1 must be the header 'V D' (the number of words and of "
            f"dimensions); got {header[:80]!r}.")
    return int(fields[0]), int(fields[1])


def _parse_vector_line(path: Path, line_no: int, line: str, dim: int):
    fields = line.rstrip("\r").rstrip(" ").split(" ")
    if len(fields) != dim + 1:
        raise WordVectorsFormatError(
            f"{path}: line {line_no} has {len(fields) - 1} values after the word "
            f"{fields[0]!r}, but the header says {dim}.")
    try:
        values = [float(x) for x in fields[1:]]
    except ValueError:
        bad = next(x for x in fields[1:] if not _is_float(x))
        raise WordVectorsFormatError(
            f"{path}: line {line_no} (word {fields[0]!r}) has the non-numeric value "
            f"{bad!r}.") from None
    return fields[0], values


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
