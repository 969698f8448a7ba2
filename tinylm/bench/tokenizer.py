"""``tinylm bench tokenizer [--repeat 3] [--vocab-size 4096] [--chars N] [--threads 1]
[--no-oracles] [--json]``: tinylm's byte-level BPE against Hugging Face ``tokenizers`` and
tiktoken, in the same run, on the same text.

(a) training: a byte-level BPE of ``--vocab-size`` tokens with GPT-2's split pattern on Tiny
    Shakespeare, from the raw text to the merges (splitting and counting included), by
    tinylm (``BPETokenizer.train``) and by HF's ``BpeTrainer`` (``ByteLevel`` pre-tokenizer
    without a prefix space, its 256-byte alphabet, the same vocabulary size).
    ``train_ratio`` = tinylm's seconds / HF's (the target: <= 3).
(b) encoding: GPT-2 (r50k_base) on Tiny Shakespeare, tinylm's ``encode_ordinary`` against
    tiktoken's ``encode_ordinary`` (single-threaded; its batch functions are the threaded
    ones), in MB/s of UTF-8. tinylm is timed cold (its chunk cache emptied before every run,
    as for a text it has not seen) and warm (the cache kept, as for a stream of similar
    text). ``encode_ratio`` = tinylm's cold MB/s / tiktoken's (the target: >= 0.25).
(c) bytes per token of every tokenizer on English (Tiny Shakespeare), Chinese (the Chinese
    side of the cmn-eng pairs) and code (tinylm's own Python source): the trainable ones
    (char, word, WordPiece, BPE) are trained on the first 90 % of each text's lines and
    measured on the rest; gpt2 and cl100k are as released. char, word and WordPiece are
    lossy (their <unk> / [UNK], and WordPiece's lower-casing and dropped spaces), BPE is not.

Fairness: each side gets one untimed warm-up run (numba loads its compiled kernels, HF and
tiktoken fill their allocators), then the best of ``--repeat`` runs on the same input.
``--threads`` caps HF's thread pool (``RAYON_NUM_THREADS``, set before ``tokenizers`` is
first imported); tinylm's trainer and encoder are serial, and so is tiktoken's
``encode_ordinary``. ``--chars`` cuts every text to its first N characters (a quick run).
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path

from tinylm.data.bpe import GPT2_SPLIT_PATTERN, BPETokenizer
from tinylm.data.datasets import dataset_path, load_text
from tinylm.data.openai_bpe import ENCODINGS, OpenAIBPETokenizer
from tinylm.data.tokenizers import CharTokenizer, WordTokenizer
from tinylm.data.wordpiece import WordPieceTokenizer

WORDPIECE_MIN_FREQUENCY = 20     # as tinylm's pre-training vocabulary (wordpiece.py says why)


def add_arguments(parser) -> None:
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (best is kept)")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--chars", type=int, default=None, help="cut each text to N chars")
    parser.add_argument("--threads", type=int, default=1, help="HF's thread pool")
    parser.add_argument("--no-oracles", action="store_true", help="time tinylm alone")


def best_seconds(fn, repeat: int, before=None) -> float:
    """Best wall time of ``fn()`` over ``repeat`` runs after one untimed one; ``before()``
    (untimed) runs ahead of each."""
    best = float("inf")
    for run in range(1 + max(1, repeat)):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        if run > 0:
            best = min(best, elapsed)
    return best


def _import(name: str, skip: bool):
    if skip:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# -- (a) training ----------------------------------------------------------------------------------
def _hf_trainer(hf, text: str, vocab_size: int):
    def train():
        model = hf.Tokenizer(hf.models.BPE())
        model.pre_tokenizer = hf.pre_tokenizers.ByteLevel(add_prefix_space=False,
                                                          use_regex=True)
        trainer = hf.trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                         initial_alphabet=hf.pre_tokenizers.ByteLevel.alphabet())
        model.train_from_iterator([text], trainer)
    return train


def bench_training(text: str, vocab_size: int, repeat: int, hf) -> dict:
    seconds = best_seconds(lambda: BPETokenizer.train(text, vocab_size, GPT2_SPLIT_PATTERN),
                           repeat)
    result = {"train_vocab_size": vocab_size, "tinylm_train_s": round(seconds, 3),
              "hf_train_s": None, "train_ratio": None,
              "hf_version": getattr(hf, "__version__", None)}
    if hf is not None:
        hf_seconds = best_seconds(_hf_trainer(hf, text, vocab_size), repeat)
        result.update(hf_train_s=round(hf_seconds, 3), train_ratio=round(seconds / hf_seconds, 3))
    return result


# -- (b) encoding ----------------------------------------------------------------------------------
def _tiktoken_gpt2(tiktoken):
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(dataset_path(ENCODINGS["gpt2"].dataset)))
    return tiktoken.Encoding("gpt2", pat_str=GPT2_SPLIT_PATTERN, mergeable_ranks=ranks,
                             special_tokens=ENCODINGS["gpt2"].special_tokens)


def bench_encoding(text: str, repeat: int, tiktoken) -> dict:
    megabytes = len(text.encode("utf-8")) / 1e6
    gpt2 = OpenAIBPETokenizer("gpt2")
    cold = best_seconds(lambda: gpt2.encode_ordinary(text), repeat, before=gpt2.clear_cache)
    warm = best_seconds(lambda: gpt2.encode_ordinary(text), repeat)
    result = {"encode_megabytes": round(megabytes, 3),
              "tinylm_encode_mb_per_s": round(megabytes / cold, 2),
              "tinylm_encode_mb_per_s_warm_cache": round(megabytes / warm, 2),
              "tiktoken_encode_mb_per_s": None, "encode_ratio": None,
              "encode_ratio_warm_cache": None, "ids_equal_tiktoken": None,
              "tiktoken_version": getattr(tiktoken, "__version__", None)}
    if tiktoken is not None:
        twin = _tiktoken_gpt2(tiktoken)
        theirs = best_seconds(lambda: twin.encode_ordinary(text), repeat)
        rate = megabytes / theirs
        result.update(tiktoken_encode_mb_per_s=round(rate, 2),
                      encode_ratio=round(result["tinylm_encode_mb_per_s"] / rate, 3),
                      encode_ratio_warm_cache=round(
                          result["tinylm_encode_mb_per_s_warm_cache"] / rate, 3),
                      ids_equal_tiktoken=gpt2.encode_ordinary(text).tolist()
                      == twin.encode_ordinary(text))
    return result


# -- (c) bytes per token ---------------------------------------------------------------------------
def _texts(chars: int | None) -> dict:
    chinese = "\n".join(line.split("\t")[1] for line in load_text("cmn-eng").splitlines()
                        if line.count("\t") >= 1)
    source = Path(__file__).resolve().parents[1]
    code = "".join(path.read_text(encoding="utf-8") for path in sorted(source.rglob("*.py")))
    texts = {"english": load_text("tinyshakespeare"), "chinese": chinese, "code": code}
    return {name: text[:chars] for name, text in texts.items()}


def _trainable(train: str, vocab_size: int) -> dict:
    """The tokenizers trained on ``train``, each with how it encodes a text."""
    char = CharTokenizer.from_text(train, unk="<unk>")
    word = WordTokenizer.from_text(train)
    wordpiece = WordPieceTokenizer.train(train.splitlines(), vocab_size,
                                         min_frequency=WORDPIECE_MIN_FREQUENCY)
    bpe = BPETokenizer.train(train, vocab_size, GPT2_SPLIT_PATTERN)
    return {"char": char.encode, "word": word.encode, f"wordpiece-{vocab_size}": wordpiece.encode,
            f"bpe-{vocab_size}": bpe.encode_ordinary}


def bytes_per_token(chars: int | None, vocab_size: int) -> dict:
    """{tokenizer: {text: UTF-8 bytes / tokens on the held-out 10 % of the text}}."""
    released = {name: OpenAIBPETokenizer(name).encode_ordinary for name in ENCODINGS}
    table = {}
    for text_name, text in _texts(chars).items():
        lines = text.splitlines(keepends=True)
        cut = int(0.9 * len(lines))
        train, held_out = "".join(lines[:cut]), "".join(lines[cut:])
        n_bytes = len(held_out.encode("utf-8"))
        for name, encode in {**_trainable(train, vocab_size), **released}.items():
            n_tokens = max(len(encode(held_out)), 1)
            table.setdefault(name, {})[text_name] = round(n_bytes / n_tokens, 3)
    return table


def run(args) -> dict:
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    hf = _import("tokenizers", args.no_oracles)
    tiktoken = _import("tiktoken", args.no_oracles)
    text = load_text("tinyshakespeare")[:args.chars]
    result = {"text": "tinyshakespeare", "text_bytes": len(text.encode("utf-8")),
              "hf_threads": args.threads, "repeat": args.repeat}
    result.update(bench_training(text, args.vocab_size, args.repeat, hf))
    result.update(bench_encoding(text, args.repeat, tiktoken))
    result["bytes_per_token"] = bytes_per_token(args.chars, args.vocab_size)
    return result
