"""``tinylm tokenize [TEXT] [--tokenizer gpt2|cl100k|PATH] [--file PATH] [--json]
[--allowed-special all|TOKEN,...]``: how a tokenizer cuts a text -- each token's id, its
bytes in the text and the token itself, then the text with a bar at every boundary.

    tinylm tokenize "This is some text"                  # GPT-2: 1212 318 617 2420
    tinylm tokenize --tokenizer cl100k --file notes.txt --json
    tinylm tokenize --tokenizer run/tokenizer.json "hello"   # any saved tinylm tokenizer

``--json`` prints only the ids, as one JSON list. Special tokens follow tiktoken's rule
(tinylm/data/bpe.py): a text that contains one is refused unless ``--allowed-special``
names it (or says ``all``), so that data never turns into control tokens by accident.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinylm.data.bpe import ByteLevelBPE
from tinylm.data.openai_bpe import ENCODINGS, OpenAIBPETokenizer
from tinylm.data.tokenizers import load_tokenizer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", help="the text (or --file)")
    parser.add_argument("--tokenizer", default="gpt2", metavar="gpt2|cl100k|PATH",
                        help="an OpenAI encoding, or a tinylm tokenizer JSON (default gpt2)")
    parser.add_argument("--file", type=Path, help="read the text from this UTF-8 file")
    parser.add_argument("--json", action="store_true", help="print only the ids, as JSON")
    parser.add_argument("--allowed-special", default="", metavar="all|TOKEN,...",
                        help="special tokens to encode as such (byte-level BPE only)")


def open_tokenizer(name: str):
    """An OpenAI encoding by name, or the tokenizer saved at path ``name``."""
    if name in ENCODINGS:
        return OpenAIBPETokenizer(name)
    if not Path(name).is_file():
        raise FileNotFoundError(f"--tokenizer {name!r} is neither an OpenAI encoding "
                                f"({', '.join(ENCODINGS)}) nor a tokenizer file.")
    return load_tokenizer(name)


def _text(args) -> str:
    if (args.text is None) == (args.file is None):
        raise ValueError("give the text either as an argument or with --file PATH, not "
                         f"{'both' if args.file else 'neither'}.")
    if args.file is None:
        return args.text
    try:
        return args.file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"--file {args.file} is not UTF-8 text ({error}).") from None


def _encode(tokenizer, text: str, allowed_special: str):
    if not isinstance(tokenizer, ByteLevelBPE):
        if allowed_special:
            raise ValueError(f"--allowed-special is for byte-level BPE tokenizers; this is a "
                             f"{tokenizer.type_name!r} tokenizer.")
        return tokenizer.encode(text)
    allowed = allowed_special if allowed_special == "all" else (
        {token for token in allowed_special.split(",") if token})
    try:
        return tokenizer.encode(text, allowed_special=allowed)
    except ValueError as error:
        raise ValueError(f"{error} On the command line: --allowed-special TOKEN,... or "
                         "--allowed-special all.") from None


def _shown(piece: bytes) -> str:
    """A token for the table: its text when it is whole UTF-8, else its bytes."""
    try:
        return repr(piece.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(piece)


def token_rows(tokenizer, ids) -> list:
    """(id, byte span or None, shown token, the token's piece of text) per token."""
    rows, start = [], 0
    for i in ids.tolist():
        if isinstance(tokenizer, ByteLevelBPE):
            piece = tokenizer.token_bytes(i)
            rows.append((i, (start, start + len(piece)), _shown(piece),
                         piece.decode("utf-8", errors="replace")))
            start += len(piece)
        else:
            text = tokenizer.decode([i])
            rows.append((i, None, repr(text), text))
    return rows


def run(args) -> int:
    tokenizer = open_tokenizer(args.tokenizer)
    text = _text(args)
    ids = _encode(tokenizer, text, args.allowed_special)
    if args.json:
        print(json.dumps(ids.tolist()))
        return 0
    n_bytes = len(text.encode("utf-8"))
    per_token = f", {n_bytes / len(ids):.2f} bytes a token" if len(ids) else ""
    print(f"{args.tokenizer}: {tokenizer!r}; {len(ids)} tokens, {n_bytes} bytes{per_token}")
    print(f"{'#':>6} {'id':>8}  {'bytes':<13} token")
    rows = token_rows(tokenizer, ids)
    for k, (i, span, shown, _) in enumerate(rows):
        where = f"{span[0]}-{span[1]}" if span else "-"
        print(f"{k:>6} {i:>8}  {where:<13} {shown}")
    print("boundaries: " + "|".join(piece.replace("\n", "\\n") for *_, piece in rows))
    return 0
