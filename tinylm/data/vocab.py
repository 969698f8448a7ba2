"""A vocabulary（词汇表）: the two-way map between tokens and integer ids (chapter 02).

    vocab = Vocabulary.from_counts(counts, min_freq=2, specials=["<unk>", "<eos>"])
    vocab.token_to_id("the"), vocab.id_to_token(5), len(vocab)

Ids are deterministic: the special tokens first (in the order given), then every token seen
at least ``min_freq`` times, by descending count, ties broken alphabetically. Tokens below
``min_freq`` are left out; a tokenizer maps them to ``<unk>`` when it has one.
"""

from __future__ import annotations

from collections import Counter


class Vocabulary:
    def __init__(self, tokens, unk: str | None = None):
        tokens = list(tokens)
        self._id_of = {token: i for i, token in enumerate(tokens)}
        if len(self._id_of) != len(tokens):
            duplicates = sorted(t for t, c in Counter(tokens).items() if c > 1)
            raise ValueError(f"a vocabulary lists each token once; duplicated: {duplicates[:10]}.")
        if unk is not None and unk not in self._id_of:
            raise ValueError(f"the unknown token {unk!r} is not in the vocabulary.")
        self.tokens = tokens
        self.unk = unk

    @classmethod
    def from_counts(cls, counts: Counter, min_freq: int = 1, specials=(), unk: str | None = None):
        if min_freq < 1:
            raise ValueError(f"min_freq={min_freq} must be at least 1.")
        specials = list(dict.fromkeys(specials))
        kept = sorted((t for t, c in counts.items() if c >= min_freq and t not in specials),
                      key=lambda t: (-counts[t], t))
        return cls(specials + kept, unk=unk)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token) -> bool:
        return token in self._id_of

    def token_to_id(self, token: str) -> int:
        """The id of ``token``; for an unknown one the ``<unk>`` id, or KeyError without one."""
        if token in self._id_of:
            return self._id_of[token]
        if self.unk is not None:
            return self._id_of[self.unk]
        raise KeyError(f"token {token!r} is not in the vocabulary of {len(self)} tokens and "
                       "there is no <unk> token to stand for it.")

    def id_to_token(self, index: int) -> str:
        if not 0 <= index < len(self.tokens):
            raise IndexError(f"token id {index} is outside [0, {len(self.tokens)}).")
        return self.tokens[index]

    def lookup(self, tokens) -> list[int]:
        """Ids of many tokens at once (unknown ones -> ``<unk>`` id, or KeyError)."""
        get, unk_id = self._id_of.get, self._id_of.get(self.unk, None)
        ids = [get(t, unk_id) for t in tokens]
        if unk_id is None and None in ids:
            position = ids.index(None)
            raise KeyError(f"token {tokens[position]!r} (token {position}) is not in the "
                           f"vocabulary of {len(self)} tokens and there is no <unk> token.")
        return ids
