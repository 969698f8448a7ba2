"""Draws the figures of chapter 08 into chapters/figures/ from trained runs.

    .venv/bin/python chapters/figures/08-figures.py [--runs runs]

08-attention-date.png: the Luong attention of ``tinylm train seq2seq --preset date``;
08-attention-fra-eng.png and 08-attention-cmn-eng.png: the last decoder block's
cross-attention (mean over heads) of the two Transformer translators; 08-training.png: the
validation loss of the runs against their training steps. A run that is absent is skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tinylm.train.plot import plot_attention  # noqa: E402
from tinylm.train.translator import attention_of, load_translator  # noqa: E402

HERE = Path(__file__).resolve().parent
SENTENCES = {"date": "saturday, july 4, 1998",
             "fra-eng": "Je ne sais pas ce que tu veux dire.",
             "cmn-eng": "我不知道他在哪里。"}


def attention_figure(run: Path, name: str) -> None:
    translator = load_translator(run)
    weights, src_tokens, out_tokens = attention_of(translator, SENTENCES[name], beam=5)
    if name == "cmn-eng":                    # no CJK glyphs guaranteed: number the characters
        src_tokens = [f"{i}:{ord(c):x}" if ord(c) > 0x2e80 else c
                      for i, c in enumerate(src_tokens)]
    path = plot_attention(weights, src_tokens, [t.replace("\u2581", "_") for t in out_tokens],
                          HERE / f"08-attention-{name}.png", title=f"{name}: {SENTENCES[name]}"
                          if name != "cmn-eng" else "cmn-eng (source characters by code point)")
    print(f"wrote {path}")


def training_figure(runs: dict) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name, run in runs.items():
        meta = json.loads((run / "ckpt.json").read_text())
        evals = meta["run"]["evals"]
        ax.plot([e["iter"] for e in evals], [e["val_loss"] for e in evals], marker="o",
                label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation cross-entropy (nats / token)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("seq2seq runs on 2 CPU cores")
    fig.tight_layout()
    fig.savefig(HERE / "08-training.png", dpi=110)
    plt.close(fig)
    print(f"wrote {HERE / '08-training.png'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default="runs", help="the folder holding the run folders")
    args = parser.parse_args()
    present = {name: Path(args.runs) / name for name in ("date", "addition", "fra-eng", "cmn-eng")
               if (Path(args.runs) / name / "ckpt.json").exists()}
    for name in ("date", "fra-eng", "cmn-eng"):
        if name in present:
            attention_figure(present[name], name)
    if present:
        training_figure(present)


if __name__ == "__main__":
    main()
