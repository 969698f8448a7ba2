"""Draws the figures of chapter 07 into chapters/figures/.

    .venv/bin/python chapters/figures/07-figures.py [--checkpoint runs/shakespeare-char-cpu]

07-scaling.png and 07-positional.png need nothing; 07-attention-maps.png and 07-training.png
read the checkpoint of ``tinylm train gpt --preset shakespeare-char-cpu`` (skipped if absent).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinylm.functional.attention import scaled_dot_product_attention_forward  # noqa: E402
from tinylm.functional.positional import sinusoidal_encoding  # noqa: E402

HERE = Path(__file__).resolve().parent
NANOGPT_CPU_VAL_LOSS = 1.88


def scaling():
    """Largest softmax weight over 64 keys, with and without the 1/sqrt(d) scale."""
    rng = np.random.default_rng(0)
    dims = [4, 8, 16, 32, 64, 128, 256, 512]
    scaled, unscaled = [], []
    for d in dims:
        q = rng.standard_normal((200, 1, d))
        k = rng.standard_normal((200, 64, d))
        v = np.zeros((200, 64, 1))
        _, cache = scaled_dot_product_attention_forward(q, k, v)
        scaled.append(cache[3].max(-1).mean())
        _, cache = scaled_dot_product_attention_forward(q * math.sqrt(d), k, v)   # no scaling
        unscaled.append(cache[3].max(-1).mean())
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.semilogx(dims, unscaled, "o-", label=r"softmax$(q\cdot k)$")
    ax.semilogx(dims, scaled, "s-", label=r"softmax$(q\cdot k/\sqrt{d})$")
    ax.axhline(1 / 64, color="0.6", ls=":", label="uniform (1/64)")
    ax.set_xlabel("head width d")
    ax.set_ylabel("largest attention weight (mean)")
    ax.set_title("64 keys, q, k ~ N(0, I)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "07-scaling.png", dpi=110)


def positional():
    pe = sinusoidal_encoding(128, 64, np, np.float64)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    im = axes[0].imshow(pe, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
    axes[0].set_xlabel("channel")
    axes[0].set_ylabel("position t")
    axes[0].set_title("PE[t, :]  (D = 64)")
    fig.colorbar(im, ax=axes[0])
    sims = pe @ pe.T
    for t in (20, 64, 100):
        axes[1].plot(sims[t], label=f"t = {t}")
    axes[1].set_xlabel("position t'")
    axes[1].set_title("PE[t] . PE[t']")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "07-positional.png", dpi=80)


def attention_maps(checkpoint: Path):
    from tinylm.train.restore import load_trained
    model, tokenizer, _ = load_trained(checkpoint)
    text = "ROMEO:\nBut soft, what light through yonder window"
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)[None, :48]
    model.forward(ids)
    maps = model.attention_maps()
    L, H = len(maps), maps[0].shape[1]
    labels = [repr(c)[1:-1] for c in tokenizer.decode([int(i) for i in ids[0]])]
    fig, axes = plt.subplots(L, H, figsize=(2.2 * H, 2.2 * L))
    for layer in range(L):
        for head in range(H):
            ax = axes[layer, head]
            ax.imshow(maps[layer][0, head], cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if layer == L - 1:
                ax.set_xlabel(f"head {head}", fontsize=8)
            if head == 0:
                ax.set_ylabel(f"layer {layer}", fontsize=8)
    fig.suptitle(f"attention weights on {text[:30]!r}... (row: query, column: key)", fontsize=9)
    fig.tight_layout()
    fig.savefig(HERE / "07-attention-maps.png", dpi=80)
    print("characters:", "".join(labels))


def training(checkpoint: Path):
    meta = json.loads(Path(str(checkpoint / "ckpt") + ".json").read_text())
    run = meta["run"]
    its, losses = zip(*run["train_losses"])
    window = 50
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(its[window - 1:], smooth, label=f"train (mean of {window} batches)", lw=1)
    ax.plot([e["iter"] for e in run["evals"]], [e["val_loss"] for e in run["evals"]], "o-",
            label="validation (whole split)")
    ax.axhline(NANOGPT_CPU_VAL_LOSS, color="k", ls=":", lw=1, label="nanoGPT's 1.88")
    ax.set_ylim(1.3, 3.0)
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy (nats/char)")
    ax.set_title("GPT, shakespeare-char-cpu preset (4 x 128, block 64)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "07-training.png", dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default="runs/shakespeare-char-cpu")
    args = parser.parse_args()
    scaling()
    positional()
    checkpoint = Path(args.checkpoint)
    if (checkpoint / "ckpt.json").exists():
        attention_maps(checkpoint)
        training(checkpoint)
    else:
        print(f"no checkpoint at {checkpoint}: skipped the attention maps and training curve")


if __name__ == "__main__":
    main()
