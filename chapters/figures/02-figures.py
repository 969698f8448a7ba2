"""Draws the figures of chapter 02 into chapters/figures/ (about half a minute).

    .venv/bin/python chapters/figures/02-figures.py

02-bpe-vocabulary.png: bytes per token of a byte-level BPE as its vocabulary grows, trained
on the first 90 % of Tiny Shakespeare's lines and measured on the training part and on the
held-out 10 %, with GPT-2's split pattern and with no split; GPT-2's and cl100k's released
encoders on the same held-out text for comparison.

02-bytes-per-token.png: bytes per token of every tokenizer on English, Chinese and code, the
table of ``tinylm bench tokenizer --json`` (tinylm/bench/tokenizer.py, ``bytes_per_token``).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinylm.bench.tokenizer import bytes_per_token  # noqa: E402
from tinylm.data import load_text  # noqa: E402
from tinylm.data.bpe import GPT2_SPLIT_PATTERN, BPETokenizer  # noqa: E402
from tinylm.data.openai_bpe import OpenAIBPETokenizer  # noqa: E402

HERE = Path(__file__).resolve().parent
VOCAB_SIZES = [256, 320, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192]


def split_lines(text: str, fraction: float = 0.9) -> tuple[str, str]:
    """The first ``fraction`` of the lines, and the rest (the bench's split)."""
    lines = text.splitlines(keepends=True)
    cut = int(fraction * len(lines))
    return "".join(lines[:cut]), "".join(lines[cut:])


def growth_curve(train: str, held_out: str, pattern) -> dict:
    """{"train": [...], "held_out": [...]}: bytes per token with the first k merges of one
    tokenizer of the largest size, for each size in VOCAB_SIZES (k = size - 256)."""
    full = BPETokenizer.train(train, VOCAB_SIZES[-1], pattern=pattern)
    curve = {"train": [], "held_out": []}
    for size in VOCAB_SIZES:
        tok = BPETokenizer(full.merges[:size - 256], pattern=pattern)
        for name, text in (("train", train), ("held_out", held_out)):
            curve[name].append(len(text.encode("utf-8")) / len(tok.encode_ordinary(text)))
    return curve


def vocabulary_figure():
    train, held_out = split_lines(load_text("tinyshakespeare"))
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for pattern, label, color in ((GPT2_SPLIT_PATTERN, "GPT-2 split", "C0"),
                                  (None, "no split", "C1")):
        curve = growth_curve(train, held_out, pattern)
        ax.plot(VOCAB_SIZES, curve["train"], "o-", ms=3, color=color,
                label=f"{label}, training text")
        ax.plot(VOCAB_SIZES, curve["held_out"], "o--", ms=3, color=color,
                label=f"{label}, held-out 10 %")
        print(f"{label}: held-out bytes/token at 512 / 4096 / 8192 merges+bytes: "
              + " / ".join(f"{curve['held_out'][VOCAB_SIZES.index(v)]:.3f}"
                           for v in (512, 4096, 8192)))
    n_bytes = len(held_out.encode("utf-8"))
    for name, style in (("gpt2", ":"), ("cl100k", "-.")):
        rate = n_bytes / len(OpenAIBPETokenizer(name).encode_ordinary(held_out))
        ax.axhline(rate, color="0.4", ls=style, lw=1)
        ax.text(VOCAB_SIZES[0], rate + 0.03, f"{name} (released), held-out: {rate:.2f}",
                fontsize=7, color="0.3")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("vocabulary size (256 bytes + merges)")
    ax.set_ylabel("UTF-8 bytes per token")
    ax.set_title("byte-level BPE trained on Tiny Shakespeare", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(HERE / "02-bpe-vocabulary.png", dpi=110)


def bytes_per_token_figure(vocab_size: int = 4096):
    table = bytes_per_token(None, vocab_size)
    texts = ["english", "chinese", "code"]
    names = list(table)
    lossy = {"char": " (<unk> if unseen)", "word": " (lossy)",
             f"wordpiece-{vocab_size}": " (lossy)"}      # <unk> / [UNK], lower case, spaces
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        values = [table[name][t] for t in texts]
        x = np.arange(len(texts)) + (k - (len(names) - 1) / 2) * width
        bars = ax.bar(x, values, width, label=name + lossy.get(name, ""),
                      hatch="//" if name in lossy else None, edgecolor="white", lw=0)
        for rect, value in zip(bars, values):
            ax.text(rect.get_x() + rect.get_width() / 2, value * 1.03, f"{value:.1f}",
                    ha="center", va="bottom", fontsize=6)
    ax.set_yscale("log")
    ax.set_ylim(0.8, 80)
    ax.set_xticks(range(len(texts)), ["English (Tiny Shakespeare)",
                                      "Chinese (cmn-eng)", "code (tinylm's source)"])
    ax.set_ylabel("UTF-8 bytes per token (held-out 10 %)")
    ax.set_title(f"bytes per token; trainable tokenizers trained on the other 90 %, "
                 f"subwords {vocab_size}", fontsize=9)
    ax.legend(fontsize=7, ncol=3, loc="upper right")
    fig.tight_layout()
    fig.savefig(HERE / "02-bytes-per-token.png", dpi=110)
    print(table)


def main():
    vocabulary_figure()
    bytes_per_token_figure()


if __name__ == "__main__":
    main()
