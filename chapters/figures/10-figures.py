"""Draws the figures of chapter 10 into chapters/figures/.

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        .venv/bin/python chapters/figures/10-figures.py [--checkpoint runs/shakespeare-char-cpu]

10-temperature.png needs the checkpoint of ``tinylm train gpt --preset
shakespeare-char-cpu``; 10-kv-cache.png times decoding with the shakespeare-char model
shape (6 layers, width 384, block 256; its weights do not matter for timing).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinylm.functional.softmax import softmax_forward  # noqa: E402
from tinylm.generate import filter_logits  # noqa: E402
from tinylm.models.base import LanguageModel  # noqa: E402
from tinylm.models.gpt import GPT, GPTConfig  # noqa: E402

HERE = Path(__file__).resolve().parent


def temperature(checkpoint: Path):
    from tinylm.train.restore import load_trained
    model, tok, _ = load_trained(checkpoint)
    prompt = "ROMEO:\nWhat light is th"
    logits, _ = model.start_decoding(np.asarray(tok.encode(prompt), dtype=np.int64)[None, :])
    z = logits[0].astype(np.float64)
    order = np.argsort(z)[::-1][:10]
    labels = [repr(tok.decode([int(i)]))[1:-1] for i in order]
    settings = [(r"$\tau$ = 0.5", 0.5, None), (r"$\tau$ = 1", 1.0, None),
                (r"$\tau$ = 2", 2.0, None), (r"$\tau$ = 1, top-p 0.9", 1.0, 0.9)]
    fig, axes = plt.subplots(1, 4, figsize=(12, 2.8), sharey=True)
    for ax, (title, tau, top_p) in zip(axes, settings):
        probs, _ = softmax_forward(filter_logits(z[None] / tau, None, top_p))
        ax.bar(range(len(order)), probs[0, order], color="C0" if top_p is None else "C1")
        ax.set_xticks(range(len(order)), labels)
        ax.set_title(title)
    axes[0].set_ylabel("p(next char)")
    fig.suptitle(f"next character after {prompt!r}", fontsize=10)
    fig.tight_layout()
    fig.savefig(HERE / "10-temperature.png", dpi=90)


def step_times(model, use_cache: bool, n: int, repeats: int) -> np.ndarray:
    best = np.full(n, np.inf)
    for _ in range(repeats):
        prompt = np.zeros((1, 1), dtype=np.int64)
        if use_cache:
            logits, state = model.start_decoding(prompt)
            step = model.decode_step
        else:
            logits, state = LanguageModel.start_decoding(model, prompt)
            step = lambda ids, st: LanguageModel.decode_step(model, ids, st)  # noqa: E731
        for i in range(n):
            start = time.perf_counter()
            logits, state = step(np.array([int(logits[0].argmax())]), state)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def kv_cache(repeats: int):
    model = GPT(GPTConfig(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384)).eval()
    n = 300                                   # past block_size: the window starts sliding
    cached, recomputed = step_times(model, True, n, repeats), step_times(model, False, n, repeats)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(np.arange(2, n + 2), 1e3 * recomputed, label="recompute the context", lw=1)
    ax.plot(np.arange(2, n + 2), 1e3 * cached, label="KV cache", lw=1)
    ax.axvline(256, color="0.6", ls=":", lw=1)
    ax.text(258, ax.get_ylim()[1] * 0.9, "block_size", fontsize=8, color="0.4")
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("ms per new token")
    ax.set_title("GPT 6 x 384, batch 1, float32, one CPU thread")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "10-kv-cache.png", dpi=110)
    up_to_block = slice(0, 255)
    print(f"tokens/s up to block_size: cache {255 / cached[up_to_block].sum():.1f}, "
          f"recompute {255 / recomputed[up_to_block].sum():.1f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default="runs/shakespeare-char-cpu")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    checkpoint = Path(args.checkpoint)
    if (checkpoint / "ckpt.json").exists():
        temperature(checkpoint)
    else:
        print(f"no checkpoint at {checkpoint}: skipped 10-temperature.png")
    kv_cache(args.repeats)


if __name__ == "__main__":
    main()
