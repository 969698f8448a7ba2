"""Tokenizers（分词器）: text -> integer ids -> text (chapter 02).

* ``CharTokenizer``: one id per character. Built from a corpus, its vocabulary is the sorted
  set of the characters in it (Tiny Shakespeare: 65, exactly as nanoGPT's ``prepare.py``).
* ``WordTokenizer``: one id per word, words split on white space (or by a regular
  expression); words rarer than ``min_freq`` become ``<unk>``; with ``eos`` every line ends
  with an end-of-sentence token, the Penn Treebank convention (PTB's text already contains
  ``<unk>`` for its rare words).

Subword tokenizers live in their own modules and are registered here for ``load_tokenizer``:
WordPiece (tinylm/data/wordpiece.py), byte-level BPE trained by tinylm (tinylm/data/bpe.py)
and OpenAI's GPT-2 and cl100k encoders (tinylm/data/openai_bpe.py).

Both encode to a NumPy int64 array and decode from any sequence of ints, save to JSON
(``save``) and come back with ``load_tokenizer``, which reads the JSON's "type" field. A
character or word the vocabulary does not know raises ``ValueError`` naming it and its
position, unless the tokenizer has an ``<unk>`` token to stand for it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy

from tinylm.backend import to_numpy
from tinylm.data.bpe import BPETokenizer
from tinylm.data.openai_bpe import OpenAIBPETokenizer
from tinylm.data.vocab import Vocabulary
from tinylm.data.wordpiece import WordPieceTokenizer

UNK = "<unk>"
EOS = "<eos>"


def _require_text(text: str) -> None:
    if not text or not text.strip():
        raise ValueError("cannot build a tokenizer: the corpus is empty (no characters other "
                         "than white space). Check the file that was loaded.")


class _Tokenizer:
    """What both tokenizers share: a ``Vocabulary`` and id <-> token look-ups."""

    type_name = ""

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def token_to_id(self, token: str) -> int:
        return self.vocab.token_to_id(token)

    def id_to_token(self, index: int) -> str:
        return self.vocab.id_to_token(index)

    def _tokens_of(self, ids) -> list[str]:
        ids = to_numpy(ids).astype(numpy.int64).ravel()
        bad = (ids < 0) | (ids >= self.vocab_size)
        if bad.any():
            position = int(numpy.argmax(bad))
            raise ValueError(f"cannot decode id {int(ids[position])} at position {position}: "
                             f"ids must lie in [0, {self.vocab_size}).")
        return [self.vocab.tokens[i] for i in ids.tolist()]

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1),
                              encoding="utf-8")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class CharTokenizer(_Tokenizer):
    """Characters as tokens. ids: [unk] (if any), then the characters in sorted order."""

    type_name = "char"

    def __init__(self, chars, unk: str | None = None):
        chars = list(chars)
        long = [c for c in chars if len(c) != 1]
        if long:
            raise ValueError(f"CharTokenizer takes single characters; got {long[:5]}.")
        self.chars = sorted(set(chars))
        self.unk = unk
        self.vocab = Vocabulary(([unk] if unk is not None else []) + self.chars, unk=unk)
        first = 1 if unk is not None else 0
        self._codepoints = numpy.array([ord(c) for c in self.chars], dtype=numpy.int64)  # sorted
        self._ids = numpy.arange(first, first + len(self.chars), dtype=numpy.int64)

    @classmethod
    def from_text(cls, text: str, unk: str | None = None) -> "CharTokenizer":
        _require_text(text)
        return cls(set(text), unk=unk)

    def encode(self, text: str) -> numpy.ndarray:
        """text -> ids [len(text)] int64 (vectorised: code points looked up by binary search)."""
        points = numpy.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(numpy.int64)
        slot = numpy.searchsorted(self._codepoints, points).clip(max=len(self._codepoints) - 1)
        known = self._codepoints[slot] == points
        ids = self._ids[slot]
        if not known.all():
            if self.unk is None:
                position = int(numpy.argmin(known))
                char = text[position]
                raise ValueError(f"character {char!r} (U+{ord(char):04X}) at position {position} "
                                 f"is not in the vocabulary of {self.vocab_size} characters. Build "
                                 "the tokenizer from text that contains it, or pass unk='<unk>'.")
            ids[~known] = self.vocab.token_to_id(self.unk)
        return ids

    def decode(self, ids) -> str:
        return "".join(self._tokens_of(ids))

    def to_dict(self) -> dict:
        return {"type": self.type_name, "chars": self.chars, "unk": self.unk}


class WordTokenizer(_Tokenizer):
    """Words as tokens. ids: the specials, then words by descending frequency (ties: A-Z)."""

    type_name = "word"

    def __init__(self, tokens, unk: str | None = UNK, eos: str | None = EOS, lower: bool = False,
                 pattern: str | None = None):
        self.vocab = Vocabulary(tokens, unk=unk)
        if eos is not None and eos not in self.vocab:
            raise ValueError(f"the end-of-line token {eos!r} is not in the vocabulary.")
        self.unk, self.eos, self.lower, self.pattern = unk, eos, lower, pattern
        self._regex = re.compile(pattern) if pattern is not None else None

    @classmethod
    def from_text(cls, text: str, min_freq: int = 1, specials=(UNK,), lower: bool = False,
                  eos: str | None = EOS, pattern: str | None = None) -> "WordTokenizer":
        """Count the words of ``text`` and keep those seen at least ``min_freq`` times.

        ``pattern`` (a regular expression, e.g. ``r"\\w+|[^\\w\\s]"``) replaces the white-space
        split; ``lower`` lower-cases first; ``eos`` (None: off) is appended to every line.
        """
        _require_text(text)
        specials = list(specials) + ([eos] if eos is not None else [])
        unk = UNK if UNK in specials else None
        splitter = cls([*dict.fromkeys(specials)], unk=unk, eos=eos, lower=lower, pattern=pattern)
        counts = Counter(splitter.split(text))
        vocab = Vocabulary.from_counts(counts, min_freq, specials, unk=unk)
        if unk is None and len(vocab) < len(set(counts) | set(specials)):
            raise ValueError(f"min_freq={min_freq} leaves words out of the vocabulary, but there "
                             f"is no {UNK!r} among specials={tuple(specials)} to stand for them; "
                             f"add {UNK!r} to specials or use min_freq=1.")
        return cls(vocab.tokens, unk=unk, eos=eos, lower=lower, pattern=pattern)

    def split(self, text: str) -> list[str]:
        """The token strings of ``text``: line by line, each line followed by ``eos``."""
        if self.lower:
            text = text.lower()
        words = []
        for line in text.splitlines():
            words += self._regex.findall(line) if self._regex is not None else line.split()
            if self.eos is not None:
                words.append(self.eos)
        return words

    def encode(self, text: str) -> numpy.ndarray:
        words = self.split(text)
        try:
            ids = self.vocab.lookup(words)
        except KeyError as error:
            raise ValueError(f"{error.args[0]} Build the tokenizer with '<unk>' among its "
                             "specials, or from text that contains the word.") from None
        return numpy.array(ids, dtype=numpy.int64)

    def decode(self, ids) -> str:
        """Words joined by spaces; ``eos`` becomes a line break."""
        lines, words = [], []
        for token in self._tokens_of(ids):
            if token == self.eos:
                lines.append(" ".join(words) + "\n")
                words = []
            else:
                words.append(token)
        return "".join(lines) + " ".join(words)

    def to_dict(self) -> dict:
        return {"type": self.type_name, "tokens": self.vocab.tokens, "unk": self.unk,
                "eos": self.eos, "lower": self.lower, "pattern": self.pattern}


TOKENIZER_TYPES = {cls.type_name: cls for cls in (CharTokenizer, WordTokenizer,
                                                  WordPieceTokenizer, BPETokenizer,
                                                  OpenAIBPETokenizer)}


def tokenizer_from_dict(state: dict):
    """Rebuild a tokenizer from ``to_dict()`` output (as stored in JSON)."""
    state = dict(state)
    kind = state.pop("type", None)
    if kind not in TOKENIZER_TYPES:
        raise ValueError(f"unknown tokenizer type {kind!r}; expected one of "
                         f"{sorted(TOKENIZER_TYPES)}. Is this a tinylm tokenizer file?")
    return TOKENIZER_TYPES[kind](**state)


def load_tokenizer(path):
    """Load a tokenizer saved with ``save(path)``."""
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no tokenizer file at {path}.") from None
    return tokenizer_from_dict(state)
