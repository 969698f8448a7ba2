"""OpenAI's byte-level BPE tokenizers, GPT-2 (r50k_base) and GPT-4 (cl100k_base), from the
official files, with tiktoken's ids (chapter 02).

    gpt2 = OpenAIBPETokenizer("gpt2")        # or "cl100k"
    gpt2.encode("This is some text")         # [1212, 318, 617, 2420]
    gpt2.encode("<|endoftext|>", allowed_special="all")     # [50256]

The files (registered datasets, sha256-verified by tinylm/data/datasets.py):

* ``gpt2.tiktoken``, ``cl100k.tiktoken``: tiktoken's format, one token a line, its bytes in
  base64 and its rank: "IQ== 0" is the byte "!" with rank 0. The rank is the token's id and
  its merge priority: lower ranks merge first.
* ``gpt2.merges``: GPT-2's original ``vocab.bpe``, the merges in order, one a line ("Ġ t"),
  each token written in printable characters (``bytes_to_unicode``). The ranks it gives --
  the 256 bytes in that table's order, then each merge -- are those of ``gpt2.tiktoken``
  (tests/test_openai_bpe.py checks all 50,256).

Encoding (tiktoken's algorithm, which this reproduces exactly): split the text with the
encoding's pattern; a chunk whose bytes are a token is that token; any other chunk starts as
its single bytes, and the adjacent pair whose *concatenated bytes* are the token of lowest
rank merges, leftmost first, until no concatenation is a token. Note "concatenated bytes":
any two adjacent parts whose bytes join into a token may merge, even if the trainer made
that token from another split (" the" from " t" + "he" or from " th" + "e"). So the rank
table given to the encoder (``split_ranks``) holds every split of every token into two
tokens -- 108,299 pairs for GPT-2's 50,000 merges, 233,378 for cl100k's 100,000 -- and not
only the merges, which makes the ids tiktoken's by construction. (With the merges alone they
came out the same on every token's own bytes and on 200,000 random concatenations of two
tokens, in both files; but nothing in the files promises it.)

Reconstructing the merges from the ranks (``merges_from_ranks``, minbpe's idea): the merge
that made the token of rank r is the last step of encoding its own bytes with the tokens of
rank < r: that leaves exactly two parts, and they are the pair. For GPT-2 these are the lines
of ``vocab.bpe``.

Special tokens (tiktoken_ext/openai_public.py): GPT-2 has <|endoftext|> = 50256; cl100k has
<|endoftext|> 100257, <|fim_prefix|> 100258, <|fim_middle|> 100259, <|fim_suffix|> 100260 and
<|endofprompt|> 100276 (the ids in between are unused: cl100k's ``vocab_size`` is 100,277).
The special-token rules, decoding and the chunk cache are ``ByteLevelBPE``'s
(tinylm/data/bpe.py).
"""

from __future__ import annotations

import base64
import binascii
import functools
from typing import NamedTuple

from tinylm.data.bpe import (GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, N_BYTES, ByteLevelBPE,
                             RankTable)
from tinylm.data.datasets import dataset_path

ENDOFTEXT = "<|endoftext|>"


class OpenAIEncoding(NamedTuple):
    dataset: str                # the registered ranks file
    pattern: str
    special_tokens: dict


ENCODINGS = {
    "gpt2": OpenAIEncoding("gpt2.tiktoken", GPT2_SPLIT_PATTERN, {ENDOFTEXT: 50256}),
    "cl100k": OpenAIEncoding("cl100k.tiktoken", GPT4_SPLIT_PATTERN, {
        ENDOFTEXT: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}),
}


# -- the files ------------------------------------------------------------------------------------
def _corrupt(path, line: int, problem: str) -> ValueError:
    return ValueError(f"{path}, line {line}: {problem}. The file is corrupt or truncated; "
                      "restore it (shared/data/README.md says where it comes from).")


def _checked_ranks(ranks: dict, path) -> dict:
    missing = [b for b in range(N_BYTES) if bytes([b]) not in ranks]
    if missing:
        raise ValueError(f"{path}: no token for the single bytes {missing[:8]}"
                         f"{' ...' if len(missing) > 8 else ''}; a byte-level BPE needs all "
                         f"{N_BYTES}, so the file is not a byte-level ranks file or is damaged.")
    return ranks


def read_tiktoken_ranks(path) -> dict:
    """{token bytes: rank} of a ``.tiktoken`` file; its lines are "<base64> <rank>" with the
    ranks 0, 1, 2, ... in order. Any other line is an error naming the file and line."""
    ranks = {}
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if len(fields) != 2 or not fields[1].isdigit():
                raise _corrupt(path, number, f"expected '<base64 token> <rank>', got "
                                             f"{line[:60]!r}")
            try:
                token = base64.b64decode(fields[0], validate=True)
            except binascii.Error:
                raise _corrupt(path, number, f"{fields[0][:40]!r} is not base64") from None
            if int(fields[1]) != number - 1:
                raise _corrupt(path, number, f"rank {int(fields[1])} where {number - 1} "
                                             "comes next")
            if token in ranks:
                raise _corrupt(path, number, f"the token {token!r} again (first at line "
                                             f"{ranks[token] + 1})")
            ranks[token] = number - 1
    return _checked_ranks(ranks, path)


@functools.cache
def bytes_to_unicode() -> dict:
    """GPT-2's table {byte: printable character}: the printable bytes "!".."~", "¡".."¬" and
    "®".."ÿ" stand for themselves; the other 68 (controls, space, U+00AD) take the characters
    from U+0100 on, in byte order -- so the space is "Ġ" and the line feed "Ċ". ``vocab.bpe``
    writes tokens in these characters, which keeps every token a visible, space-free word."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(N_BYTES) if b not in printable]
    table = {b: chr(b) for b in printable}
    table.update({b: chr(N_BYTES + k) for k, b in enumerate(others)})
    return table


def read_gpt2_merges(path) -> dict:
    """{token bytes: rank} from GPT-2's ``vocab.bpe``: the 256 bytes in ``bytes_to_unicode``'s
    order (the printable ones first), then one token per merge line "<first> <second>"."""
    byte_of = {char: b for b, char in bytes_to_unicode().items()}
    ranks = {bytes([b]): rank for rank, b in enumerate(bytes_to_unicode())}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if number == 1 and line.startswith("#version"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise _corrupt(path, number, f"expected a merge '<first> <second>', got "
                                             f"{line[:60]!r}")
            try:
                first, second = (bytes(byte_of[c] for c in part) for part in parts)
            except KeyError as error:
                raise _corrupt(path, number, f"the character {error.args[0]!r} is not in "
                                             "GPT-2's byte-to-unicode table") from None
            for part, token in zip(parts, (first, second)):
                if token not in ranks:
                    raise _corrupt(path, number, f"{part!r} is not a token made before "
                                                 "this merge")
            if first + second in ranks:
                raise _corrupt(path, number, f"the merge {line.strip()!r} makes a token "
                                             "made before")
            ranks[first + second] = len(ranks)
    return _checked_ranks(ranks, path)


# -- from ranks to the encoder's tables -----------------------------------------------------------
def split_ranks(ranks: dict) -> dict:
    """{(id a, id b): rank of the token whose bytes are a's + b's}, for every split of every
    token into two tokens (the module docstring says why every split, not only the merge)."""
    pairs = {}
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            a, b = ranks.get(token[:cut]), ranks.get(token[cut:])
            if a is not None and b is not None:
                pairs[(a, b)] = rank
    return pairs


def merges_from_ranks(ranks: dict, table: RankTable | None = None) -> dict:
    """{(id a, id b): rank} of the merge that made each token of two or more bytes: the two
    parts its bytes encode to with the tokens of lower rank only. A token that does not come
    out as two parts is not the merge of two earlier tokens: an error naming it."""
    table = table or RankTable(split_ranks(ranks))
    byte_ids = [ranks[bytes([b])] for b in range(N_BYTES)]
    tokens = sorted((rank, token) for token, rank in ranks.items() if len(token) > 1)
    parts = table.merge_chunks([[byte_ids[b] for b in token] for _, token in tokens],
                               limits=[rank for rank, _ in tokens])
    merges = {}
    for (rank, token), pair in zip(tokens, parts):
        if len(pair) != 2:
            raise ValueError(f"the token {token!r} (rank {rank}) is not the merge of two "
                             f"tokens of lower rank: its bytes encode to {len(pair)} of them.")
        merges[tuple(pair)] = rank
    return merges


@functools.cache
def _tables(name: str) -> tuple:
    """(token bytes by id, byte ids [256], split ranks) of a registered encoding, read once."""
    ranks = read_tiktoken_ranks(dataset_path(ENCODINGS[name].dataset))
    token_bytes = [None] * len(ranks)
    for token, rank in ranks.items():
        token_bytes[rank] = token
    return ranks, token_bytes, [ranks[bytes([b])] for b in range(N_BYTES)], split_ranks(ranks)


class OpenAIBPETokenizer(ByteLevelBPE):
    """GPT-2's (``name="gpt2"``) or GPT-4's (``"cl100k"``) tokenizer, ids equal to tiktoken's.
    Stored as {"type": "openai_bpe", "name": ...}: the tables come back from the registered,
    sha256-verified file."""

    type_name = "openai_bpe"

    def __init__(self, name: str):
        if name not in ENCODINGS:
            raise ValueError(f"unknown OpenAI encoding {name!r}; known: {sorted(ENCODINGS)}.")
        self.name = name
        self._ranks, token_bytes, byte_ids, pairs = _tables(name)
        encoding = ENCODINGS[name]
        self._set_tables(token_bytes, byte_ids, pairs, encoding.pattern,
                         encoding.special_tokens, whole_chunk_ids=self._ranks)

    @functools.cached_property
    def merges(self) -> dict:
        """{(a, b): rank} reconstructed from the ranks (``merges_from_ranks``)."""
        return merges_from_ranks(self._ranks, self._table)

    def to_dict(self) -> dict:
        return {"type": self.type_name, "name": self.name}

    def __repr__(self) -> str:
        return f"OpenAIBPETokenizer({self.name!r}, vocab_size={self.vocab_size})"

