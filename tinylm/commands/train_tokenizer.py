"""``tinylm train-tokenizer --corpus NAME|PATH --vocab-size N --kind bpe|wordpiece --out PATH
[--pattern gpt2|gpt4|none] [--special TOKEN ...] [--min-frequency N]``: learn a subword
vocabulary from a registered dataset or a UTF-8 file and save it as JSON.

    tinylm train-tokenizer --corpus tinyshakespeare --vocab-size 4096 --kind bpe --out bpe.json
    tinylm train-tokenizer --corpus notes.txt --vocab-size 8000 --kind wordpiece --out wp.json
    tinylm tokenize --tokenizer bpe.json "To be, or not to be"

``bpe``: byte-level BPE (tinylm/data/bpe.py), the corpus cut into chunks by ``--pattern``
(GPT-2's by default), ``--special`` tokens taking the ids after the merges. ``wordpiece``:
BERT's WordPiece (tinylm/data/wordpiece.py), trained line by line with its five specials;
``--min-frequency`` is its guard against rare pairs. The file loads back with
``tinylm.data.load_tokenizer``, and ``tinylm tokenize --tokenizer PATH`` uses it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tinylm.commands.arguments import positive_int
from tinylm.data.bpe import SPLIT_PATTERNS, BPETokenizer
from tinylm.data.datasets import DATASETS, load_text
from tinylm.data.wordpiece import WordPieceTokenizer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", required=True, metavar="NAME|PATH",
                        help="a registered dataset (e.g. tinyshakespeare) or a UTF-8 file")
    parser.add_argument("--vocab-size", type=positive_int, required=True)
    parser.add_argument("--kind", choices=("bpe", "wordpiece"), required=True)
    parser.add_argument("--out", type=Path, required=True, help="the tokenizer JSON to write")
    parser.add_argument("--pattern", choices=tuple(SPLIT_PATTERNS), default=None,
                        help="bpe: the split pattern (default gpt2; none: no split)")
    parser.add_argument("--special", action="append", default=[], metavar="TOKEN",
                        help="bpe: a special token, e.g. '<|endoftext|>' (repeatable)")
    parser.add_argument("--min-frequency", type=positive_int, default=None,
                        help="wordpiece: the least count of a pair that is merged (default 1)")


def read_corpus(corpus: str) -> str:
    """The text of a registered dataset, or of the UTF-8 file at ``corpus``."""
    if corpus in DATASETS:
        return load_text(corpus)
    path = Path(corpus)
    if not path.is_file():
        raise FileNotFoundError(f"--corpus {corpus!r} is neither a registered dataset nor a "
                                f"file; datasets: {', '.join(sorted(DATASETS))}.")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"--corpus {corpus} is not UTF-8 text ({error}).") from None


def _check_flags(args) -> None:
    """Each flag belongs to one kind; naming it with the other is a mistake worth saying."""
    if args.kind == "wordpiece" and (args.pattern is not None or args.special):
        raise ValueError("--pattern and --special are for --kind bpe; WordPiece splits with "
                         "BERT's rules and has BERT's special tokens.")
    if args.kind == "bpe" and args.min_frequency is not None:
        raise ValueError("--min-frequency is for --kind wordpiece; BPE merges the most "
                         "frequent pair whatever its count.")


def train(args, text: str):
    if args.kind == "bpe":
        pattern = SPLIT_PATTERNS[args.pattern or "gpt2"]
        return BPETokenizer.train(text, args.vocab_size, pattern=pattern,
                                  special_tokens=args.special)
    return WordPieceTokenizer.train(text.splitlines(), args.vocab_size,
                                    min_frequency=args.min_frequency or 1)


def run(args) -> int:
    _check_flags(args)
    text = read_corpus(args.corpus)
    started = time.perf_counter()
    tokenizer = train(args, text)
    seconds = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(args.out)
    ids = (tokenizer.encode(text, allowed_special="all") if args.kind == "bpe"
           else tokenizer.encode(text))
    n_bytes = len(text.encode("utf-8"))
    print(f"trained {tokenizer!r} on {args.corpus} ({n_bytes:,} bytes) in {seconds:.2f} s; "
          f"{n_bytes / max(len(ids), 1):.2f} bytes a token on the corpus")
    print(f"wrote {args.out}")
    return 0
