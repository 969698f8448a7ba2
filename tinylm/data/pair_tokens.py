"""Tokens for one side of a sentence pair, and the vocabulary built on it (the translator's
data, tinylm/train/seq2seq_run.py).

    side = SideVocabulary.build(train_sources, scheme="words", min_count=3)
    ids = side.encode("I'm here.")            # [ids of "▁I", "'", "m", "▁here", "."]
    side.decode(ids)                          # "I'm here."
    side.unknown_words("I'm hexe.")           # ["▁hexe"]

Two schemes:

* ``"chars"``: every character is a token, spaces included (the toy tasks ``addition`` and
  ``date``; Chinese, which is written without spaces). decode = "".join(tokens).
* ``"words"``: a regular expression splits each white-space-separated chunk into runs of
  word characters (``\\w+``) and single other characters (punctuation), and the first token
  of every chunk carries a "▁" (U+2581) prefix, as sentencepiece marks a preceding space:

      "I'm here."  ->  ["▁I", "'", "m", "▁here", "."]
      decode(tokens) = "".join(tokens).replace("▁", " ").strip()

  so decoding gives back the text itself, with its punctuation attached where it was, and
  BLEU is computed on real sentences (not on space-separated tokens). The round trip is
  exact for text whose white space is single spaces between chunks (what ``load_pairs``
  gives); other white space (tabs, runs of spaces, U+202F before French "!") decodes as
  one space. Case is kept. A text containing "▁" itself is refused: it could not be told
  apart from a space.

The vocabulary: four special tokens first, ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2,
``<unk>`` 3, then every token seen at least ``min_count`` times in the texts it is built
from -- the *training* split only, so nothing about the held-out sentences leaks into the
model -- by descending count (ties alphabetical, tinylm/data/vocab.py). A token outside it
encodes as ``<unk>``; ``unknown_words`` names such tokens, so a caller can say which words
of a sentence the model has never seen instead of translating them silently.
"""

from __future__ import annotations

import re
from collections import Counter

from tinylm.data.vocab import Vocabulary

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
SCHEMES = ("chars", "words")
SPACE_MARK = "\u2581"                       # "▁", sentencepiece's mark of a preceding space
_PIECES = re.compile(r"\w+|[^\w\s]")        # a run of word characters, or one other character


def word_tokens(text: str) -> list[str]:
    """The "words" scheme: "I'm here." -> ["▁I", "'", "m", "▁here", "."]."""
    if SPACE_MARK in text:
        raise ValueError(f"the text {text[:60]!r} contains {SPACE_MARK!r} (U+2581), the mark "
                         "the word tokens use for a space; replace it before tokenising.")
    tokens = []
    for chunk in text.split():
        pieces = _PIECES.findall(chunk)
        tokens += [SPACE_MARK + pieces[0], *pieces[1:]]
    return tokens


def join_word_tokens(tokens) -> str:
    """The inverse of ``word_tokens``: "".join(tokens).replace("▁", " ").strip()."""
    return "".join(tokens).replace(SPACE_MARK, " ").strip()


def tokens_of(text: str, scheme: str) -> list[str]:
    """The tokens of ``text`` under ``scheme`` ("chars" or "words")."""
    if scheme == "chars":
        return list(text)
    if scheme == "words":
        return word_tokens(text)
    raise ValueError(f"token scheme {scheme!r} is not one of {SCHEMES}.")


class SideVocabulary:
    """The tokens of one side (source or target) of a translation task and their ids."""

    def __init__(self, scheme: str, tokens):
        if scheme not in SCHEMES:
            raise ValueError(f"token scheme {scheme!r} is not one of {SCHEMES}.")
        tokens = list(tokens)
        if tuple(tokens[:len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a side vocabulary starts with the special tokens {SPECIALS}, "
                             f"found {tokens[:len(SPECIALS)]}.")
        self.scheme = scheme
        self.vocab = Vocabulary(tokens, unk=UNK)

    @classmethod
    def build(cls, texts, scheme: str, min_count: int = 1) -> "SideVocabulary":
        """Count the tokens of ``texts`` (the training split) and keep those seen at least
        ``min_count`` times."""
        counts = Counter()
        for text in texts:
            counts.update(tokens_of(text, scheme))
        if not counts:
            raise ValueError("cannot build a vocabulary: the texts hold no tokens.")
        return cls(scheme, Vocabulary.from_counts(counts, min_count, SPECIALS, unk=UNK).tokens)

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """text -> token ids (no bos/eos); unknown tokens -> the <unk> id."""
        return self.vocab.lookup(tokens_of(text, self.scheme))

    def unknown_words(self, text: str) -> list[str]:
        """The tokens of ``text`` that the vocabulary lacks (each once, in order)."""
        tokens = tokens_of(text, self.scheme)
        return list(dict.fromkeys(t for t in tokens if t not in self.vocab))

    def decode(self, ids) -> str:
        """ids -> text, stopping at the first <eos>; <pad> and <bos> are skipped, <unk>
        stays visible."""
        tokens = []
        for index in ids:
            if index == EOS_ID:
                break
            if index not in (PAD_ID, BOS_ID):
                tokens.append(self.vocab.id_to_token(int(index)))
        if self.scheme == "words":
            return join_word_tokens(tokens)
        return "".join(tokens)

    def to_dict(self) -> dict:
        """Plain JSON data (stored in the checkpoint's metadata)."""
        return {"scheme": self.scheme, "tokens": list(self.vocab.tokens)}

    @classmethod
    def from_dict(cls, state: dict) -> "SideVocabulary":
        if not isinstance(state, dict) or set(state) != {"scheme", "tokens"}:
            raise ValueError(f"a side vocabulary is {{'scheme', 'tokens'}}, got {state!r:.80}.")
        return cls(state["scheme"], state["tokens"])
