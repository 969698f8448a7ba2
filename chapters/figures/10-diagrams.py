"""Draws the KV-cache diagram of chapter 10 into chapters/figures/.

    .venv/bin/python chapters/figures/10-diagrams.py

10-kv-cache-growing.png: one layer's cache during decoding (tinylm/nn/attention.py,
``KVCache``; tinylm/models/gpt.py, ``start_decoding`` and ``decode_step``). The prompt fills
the first slots; each new token appends one key and one value and attends with one query
over every cached position; once ``length`` reaches ``block_size`` the window slides, the
cached keys belong to other positions, and GPT recomputes the last ``block_size`` tokens
without the cache. The fill levels drawn are those a real ``KVCache`` reports, step by step.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from tinylm.nn.attention import KVCache  # noqa: E402

HERE = Path(__file__).resolve().parent
BLOCK, PROMPT, STEPS = 8, 3, 5                 # block_size, prompt tokens, decode steps drawn
OLD, NEW, EMPTY, QUERY = "#aed6f1", "#f5b041", "white", "#f1948a"


def fill_levels():
    """(new positions, length after the append) for the prefill and each decode step, read
    from a real KVCache; then the append that no longer fits."""
    cache = KVCache(batch=1, n_head=1, capacity=BLOCK, head_dim=2, xp=np, dtype=np.float64)
    rows = []
    k = np.zeros((1, 1, PROMPT, 2))
    cache.append(k, k)
    rows.append((PROMPT, cache.length))
    for _ in range(STEPS):
        k = np.zeros((1, 1, 1, 2))
        cache.append(k, k)
        rows.append((1, cache.length))
    assert cache.length == BLOCK
    try:
        cache.append(k, k)
        raise AssertionError("KVCache accepted more than block_size positions")
    except ValueError:
        pass
    return rows


def main():
    rows = fill_levels()
    fig, ax = plt.subplots(figsize=(13.5, 7.4))
    ax.set_xlim(-5.6, 17.4)
    ax.set_ylim(-3.1, len(rows) * 1.25 + 1.0)
    ax.axis("off")
    ax.set_aspect("equal")
    top = len(rows) * 1.25
    ax.text(0, top + 0.55, f"one layer's K cache  [B, H, block_size = {BLOCK}, hd]  "
            "(V is the same shape and fills the same way)", fontsize=10.5)
    for r, (new, length) in enumerate(rows):
        y = top - (r + 1) * 1.25
        label = (f"prompt: {new} tokens\nstart_decoding" if r == 0
                 else f"step {r}: 1 new token\ndecode_step")
        ax.text(-0.4, y + 0.4, label, ha="right", va="center", fontsize=9.5)
        for j in range(BLOCK):
            fc = NEW if length - new <= j < length else OLD if j < length else EMPTY
            ax.add_patch(Rectangle((j, y), 1, 0.8, fc=fc, ec="0.4", lw=1))
            if j < length:
                ax.text(j + 0.5, y + 0.4, f"$k_{j}$", ha="center", va="center", fontsize=9.5)
        # the new token's query (or the prompt's queries) against every cached key
        ax.add_patch(Rectangle((BLOCK + 0.6, y), 1.1, 0.8, fc=QUERY, ec="0.4", lw=1))
        ax.text(BLOCK + 1.15, y + 0.4, "q" if new == 1 else f"{new} q", ha="center",
                va="center", fontsize=9.5)
        ax.text(BLOCK + 2.0, y + 0.4, f"length = {length}: "
                + (f"{new} queries, causal over {length} keys" if new > 1
                   else f"1 query x {length} keys"),
                va="center", fontsize=9.5)
    y = top - (len(rows) + 1) * 1.25
    ax.text(-0.4, y + 0.4, f"step {len(rows)}: context\nlonger than block_size", ha="right",
            va="center", fontsize=9.5)
    for j in range(BLOCK):
        ax.add_patch(Rectangle((j, y), 1, 0.8, fc="0.9", ec="0.4", lw=1, hatch="//"))
    ax.text(BLOCK + 0.6, y + 0.4, "the window slides: every cached key was computed at a "
            "position\nthat has changed, so GPT runs a full forward on the last block_size "
            "\ntokens (what decoding without a cache always does)", va="center",
            fontsize=9.5)

    handles = [Rectangle((0, 0), 1, 1, fc=c, ec="0.4") for c in (OLD, NEW, EMPTY, QUERY)]
    ax.legend(handles, ["cached earlier", "appended this step", "preallocated, empty",
                        "queries computed this step"], loc="lower left",
              bbox_to_anchor=(0.0, -0.02), ncol=4, fontsize=9, frameon=False)
    ax.text(-5.4, -2.55, r"per step: compute $q, k, v$ of the new token, append $k, v$, then "
            r"$o = \mathrm{softmax}(q\,[K; k]^\top/\sqrt{h_d})\,[V; v]$;  one cache per layer, "
            r"$2 \cdot L \cdot B \cdot T \cdot D$ numbers in all", fontsize=10)
    fig.tight_layout()
    fig.savefig(HERE / "10-kv-cache-growing.png", dpi=100)
    plt.close(fig)
    print("fill levels:", [length for _, length in rows])


if __name__ == "__main__":
    main()
