"""Draws the diagrams of chapter 07 into chapters/figures/.

    .venv/bin/python chapters/figures/07-diagrams.py

07-causal-mask.png  the causal mask of tinylm/functional/attention.py (``causal_mask``): the
                    scores a query may not see set to -inf, the softmax weights that result
                    (computed here by ``scaled_dot_product_attention_forward``), and the
                    offset mask j <= i + (Tk - Tq) of decoding with cached keys
07-head-split.png   [B, T, D] -> [B, H, T, hd] -> back, drawn from the output of tinylm's own
                    ``split_heads``, ``merge_heads`` and ``split_qkv`` on a labelled array
07-pre-ln-block.png the pre-LN block of tinylm/nn/transformer.py (GPT-2), beside the post-LN
                    one (``norm_first=False``, BERT)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle  # noqa: E402

from tinylm.functional.attention import (causal_mask, merge_heads,  # noqa: E402
                                         scaled_dot_product_attention_forward, split_heads,
                                         split_qkv)

HERE = Path(__file__).resolve().parent
HEAD_COLOURS = ["#aed6f1", "#f9e79f", "#abebc6", "#f5b7b1"]


# -- the causal mask ------------------------------------------------------------------------

def causal_mask_figure():
    T = 6
    allowed = causal_mask(T, T, np)                                  # [T, T] bool
    rng = np.random.default_rng(3)
    q, k = rng.standard_normal((T, 4)), rng.standard_normal((T, 4))
    _, cache = scaled_dot_product_attention_forward(q, k, np.zeros((T, 1)), causal=True)
    P = cache.p                                                      # [T, T]
    assert np.allclose(P.sum(-1), 1) and np.all(P[~allowed] == 0)
    Tq, Tk = 2, 6
    offset = causal_mask(Tq, Tk, np)                                 # [2, 6]

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.9),
                             gridspec_kw=dict(width_ratios=[1, 1, 1.05]))

    def grid(ax, shape, title, xlabel="key j", ylabel="query i", row_labels=None):
        rows, cols = shape
        ax.set_xlim(-0.5, cols - 0.5)
        ax.set_ylim(rows - 0.5, -0.5)
        ax.set_xticks(range(cols))
        ax.set_yticks(range(rows), row_labels if row_labels else range(rows))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10.5)
        ax.set_aspect("equal")
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)

    ax = axes[0]
    grid(ax, (T, T), "scores S = Q K$^\\top$/$\\sqrt{d}$ after the mask")
    for i in range(T):
        for j in range(T):
            ok = allowed[i, j]
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fc="#d6eaf8" if ok else "0.85",
                                   ec="white", lw=2))
            ax.text(j, i, f"$s_{{{i}{j}}}$" if ok else r"$-\infty$", ha="center", va="center",
                    fontsize=9.5, color="black" if ok else "0.45")

    ax = axes[1]
    grid(ax, (T, T), "weights P = softmax(S), row by row")
    for i in range(T):
        for j in range(T):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1,
                                   fc=plt.cm.Blues(0.15 + 0.8 * P[i, j]) if allowed[i, j]
                                   else "0.85", ec="white", lw=2))
            ax.text(j, i, f"{P[i, j]:.2f}" if allowed[i, j] else "0", ha="center",
                    va="center", fontsize=9, color="white" if P[i, j] > 0.6 else "black")
        ax.text(T - 0.3, i, "  sums to 1", fontsize=8, va="center", color="0.4")

    ax = axes[2]
    grid(ax, (Tq, Tk), f"decoding with cached keys: Tq = {Tq}, Tk = {Tk}\n"
         r"query i may see key j when $j \leq i + (T_k - T_q)$",
         row_labels=[f"{i} (position {i + Tk - Tq})" for i in range(Tq)])
    for i in range(Tq):
        for j in range(Tk):
            ok = offset[i, j]
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fc="#d6eaf8" if ok else "0.85",
                                   ec="white", lw=2))
            ax.text(j, i, "sees" if ok else r"$-\infty$", ha="center", va="center",
                    fontsize=9, color="black" if ok else "0.45")
    ax.text(-0.5, Tq + 0.55, "causal_mask(Tq, Tk) = tril(ones, k = Tk - Tq):\n"
            "the queries are the last Tq positions\n(chapter 10's KV cache).", fontsize=9,
            va="top", color="0.3")
    fig.suptitle("The causal mask: query i sees keys 0..i; a masked score is -inf, so its "
                 "weight is exactly 0", fontsize=11.5)
    fig.tight_layout()
    fig.savefig(HERE / "07-causal-mask.png", dpi=100)
    plt.close(fig)


# -- splitting and merging heads ------------------------------------------------------------

def draw_matrix(ax, x0, y0, labels, colours, cell=0.62, title=None, fontsize=7.5):
    """labels [rows, cols] strings drawn from (x0, y0) downwards, one colour per cell."""
    rows, cols = labels.shape
    for r in range(rows):
        for c in range(cols):
            ax.add_patch(Rectangle((x0 + c * cell, y0 - (r + 1) * cell), cell, cell,
                                   fc=colours[r][c], ec="white", lw=1.5))
            ax.text(x0 + (c + 0.5) * cell, y0 - (r + 0.5) * cell, labels[r, c], ha="center",
                    va="center", fontsize=fontsize)
    if title:
        ax.text(x0 + cols * cell / 2, y0 + 0.3, title, ha="center", va="bottom", fontsize=9.5)
    return x0 + cols * cell, y0 - rows * cell


def head_split_figure():
    B, T, H, hd = 1, 3, 2, 3
    D = H * hd
    # label every entry of x [B, T, D] by (t, c); follow the labels through tinylm's reshapes
    code = np.arange(T)[None, :, None] * 100 + np.arange(D)[None, None, :]   # [1, T, D]
    x = code.astype(float)
    heads = split_heads(x, H)                                            # [1, H, T, hd]
    merged = merge_heads(heads)                                          # [1, T, D]
    assert heads.shape == (B, H, T, hd) and np.array_equal(merged, x)
    lab = np.vectorize(lambda v: f"t{int(v) // 100},c{int(v) % 100}")
    head_of = lambda v: (int(v) % 100) // hd                            # noqa: E731

    fig, ax = plt.subplots(figsize=(14.5, 5.9))
    ax.set_xlim(0, 22.2)
    ax.set_ylim(-2.8, 6.2)
    ax.set_aspect("equal")
    ax.axis("off")
    cell = 0.62
    colours = [[HEAD_COLOURS[head_of(v)] for v in row] for row in x[0]]
    xr, _ = draw_matrix(ax, 0.3, 4.8, lab(x[0]), colours, cell,
                        "x  [B, T, D] (one batch row)\nhead h owns columns h*hd .. (h+1)*hd - 1")
    ax.annotate("", xy=(7.3, 3.85), xytext=(xr + 0.3, 3.85),
                arrowprops=dict(arrowstyle="-|>", lw=1.3))
    ax.text((xr + 7.3) / 2, 4.1, "split_heads:\nreshape(B, T, H, hd)\n.transpose(0, 2, 1, 3)",
            ha="center", va="bottom", fontsize=8.5, family="monospace")
    xh = 7.5
    for h in range(H):
        hc = [[HEAD_COLOURS[h]] * hd for _ in range(T)]
        draw_matrix(ax, xh + h * (hd * cell + 0.45), 4.8, lab(heads[0, h]), hc, cell,
                    f"head {h}  [T, hd]")
    xe = xh + H * (hd * cell + 0.45) - 0.45
    ax.text((xh + xe) / 2, 2.4, "[B, H, T, hd]: a view, no copy", ha="center", fontsize=9)
    ax.annotate("", xy=(xe + 3.2, 3.85), xytext=(xe + 0.3, 3.85),
                arrowprops=dict(arrowstyle="-|>", lw=1.3))
    ax.text(xe + 1.75, 4.1, "each head on its own:\n" r"softmax$(q k^\top/\sqrt{hd})\,v$",
            ha="center", va="bottom", fontsize=9)
    ax.annotate("", xy=(xe + 6.5, 3.85), xytext=(xe + 3.4, 3.85),
                arrowprops=dict(arrowstyle="-|>", lw=1.3))
    ax.text(xe + 4.95, 4.1, "merge_heads:\ntranspose(0, 2, 1, 3)\n.reshape(B, T, H*hd)",
            ha="center", va="bottom", fontsize=8.5, family="monospace")
    draw_matrix(ax, xe + 6.7, 4.8, lab(merged[0]), colours, cell,
                "y  [B, T, D], then c_proj")

    # the packed qkv of c_attn: 3H heads of width hd, queries then keys then values
    qkv_code = np.arange(3 * D)[None, None, :].repeat(T, axis=1).astype(float)  # [1, T, 3D]
    q, k, v = split_qkv(qkv_code, H)
    owner = {}
    for name, part in (("q", q), ("k", k), ("v", v)):
        for h in range(H):
            for col in part[0, h, 0]:
                owner[int(col)] = (name, h)
    y0 = 0.6
    ax.text(0.3, y0 + 0.35, "c_attn gives qkv [B, T, 3D] in one matmul; split_qkv = "
            "split_heads(qkv, 3H): heads 0..H-1 are the queries, H..2H-1 the keys, "
            "2H..3H-1 the values", fontsize=9.5)
    kind_colour = {"q": "#d2b4de", "k": "#f5cba7", "v": "#a3e4d7"}
    for col in range(3 * D):
        name, h = owner[col]
        ax.add_patch(Rectangle((0.3 + col * 0.95, y0 - 1.1), 0.95, 0.9, fc=kind_colour[name],
                               ec="white", lw=1.5, alpha=1.0 if h == 0 else 0.6))
        ax.text(0.3 + (col + 0.5) * 0.95, y0 - 0.65, f"c{col}", ha="center", va="center",
                fontsize=8)
    for name, start in (("q", 0), ("k", D), ("v", 2 * D)):
        for h in range(H):
            c0 = start + h * hd
            ax.text(0.3 + (c0 + hd / 2) * 0.95, y0 - 1.5, f"{name} head {h}", ha="center",
                    va="center", fontsize=9)
    ax.text(0.3, y0 - 2.4, f"Here B = {B}, T = {T}, D = {D}, H = {H}, hd = D / H = {hd}. "
            "Labels t,c: the entry at time t, channel c of x, followed through tinylm's own "
            "split_heads and merge_heads.", fontsize=9, color="0.3")
    ax.text(0.3, y0 - 3.0, "dqkv goes back the same way (merge_qkv): the backward of a "
            "reshape or transpose is the inverse reshape or transpose.", fontsize=9,
            color="0.3")
    fig.tight_layout()
    fig.savefig(HERE / "07-head-split.png", dpi=100)
    plt.close(fig)


# -- the pre-LN block (and post-LN for comparison) ------------------------------------------

def box(ax, x, y, text, width, height=0.7, fc="#eaf2f8", fontsize=9.5):
    patch = FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                           boxstyle="round,pad=0.05", fc=fc, ec="0.3", lw=1)
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, linespacing=1.25)
    return patch


def plus(ax, x, y):
    ax.add_patch(plt.Circle((x, y), 0.25, fc="white", ec="0.2", lw=1.2))
    ax.text(x, y - 0.02, "+", ha="center", va="center", fontsize=13)


def line(ax, points, arrow=True, colour="black", lw=1.3):
    xs, ys = zip(*points)
    ax.plot(xs[:-1] if arrow else xs, ys[:-1] if arrow else ys, color=colour, lw=lw)
    if arrow:
        ax.add_patch(FancyArrowPatch(points[-2], points[-1], arrowstyle="-|>",
                                     mutation_scale=12, lw=lw, color=colour))


ATTN = ("attn: MultiHeadAttention (causal)\nc_attn D→3D, split heads,\n"
        "softmax(QKᵀ/√hd) V per head,\nmerge, c_proj D→D, dropout")
MLP = "mlp: c_fc D→4D, GELU (tanh),\nc_proj 4D→D, dropout"
LN, BR, STREAM = "#fdebd0", "#e8f6e9", "#1f77b4"


def pre_ln_block_figure():
    fig, ax = plt.subplots(figsize=(14, 8.4))
    ax.set_xlim(0, 20)
    ax.set_ylim(-1.9, 10.8)
    ax.set_aspect("equal")
    ax.axis("off")

    # pre-LN: the residual stream goes straight up; each branch normalises its own input
    s, bx = 1.6, 5.4                              # stream and branch columns
    ax.text(s + 2.0, 10.4, "pre-LN (GPT-2; tinylm's default)", ha="center", fontsize=12,
            weight="bold")
    box(ax, s, -0.6, "x  [B, T, D]", 2.0)
    plus(ax, s, 4.2)
    plus(ax, s, 8.4)
    box(ax, s, 9.6, "out  [B, T, D]", 2.2)
    line(ax, [(s, -0.25), (s, 3.95)], colour=STREAM, lw=2.4)
    line(ax, [(s, 4.45), (s, 8.15)], colour=STREAM, lw=2.4)
    line(ax, [(s, 8.65), (s, 9.25)], colour=STREAM, lw=2.4)
    box(ax, bx, 0.95, "ln_1: LayerNorm", 2.6, fc=LN)
    box(ax, bx, 2.55, ATTN, 4.4, 1.65, fc=BR, fontsize=9)
    box(ax, bx, 5.55, "ln_2: LayerNorm", 2.6, fc=LN)
    box(ax, bx, 6.95, MLP, 4.0, 1.05, fc=BR, fontsize=9)
    line(ax, [(s, 0.2), (bx, 0.2), (bx, 0.6)])
    line(ax, [(bx, 1.3), (bx, 1.72)])
    line(ax, [(bx, 3.38), (bx, 4.2), (s + 0.25, 4.2)])
    ax.text(s + 0.35, 4.5, r"$x_1$", fontsize=11)
    line(ax, [(s, 4.8), (bx, 4.8), (bx, 5.2)])
    line(ax, [(bx, 5.9), (bx, 6.42)])
    line(ax, [(bx, 7.48), (bx, 8.4), (s + 0.25, 8.4)])
    ax.text(s - 0.3, 6.2, "residual stream:\nnever normalised,\nonly added to", fontsize=9,
            color=STREAM, ha="right", va="center")
    ax.text(0.2, -1.55, r"$x_1 = x + \mathrm{attn}(\mathrm{ln\_1}(x)),\quad "
            r"\mathrm{out} = x_1 + \mathrm{mlp}(\mathrm{ln\_2}(x_1))$", fontsize=11)

    # post-LN: the layer norm sits on the stream, after each sum
    s2, bx2 = 11.4, 14.9
    ax.text(s2 + 2.6, 10.4, "post-LN (norm_first=False; the 2017 paper, BERT)", ha="center",
            fontsize=12, weight="bold")
    box(ax, s2, -0.6, "x  [B, T, D]", 2.0)
    plus(ax, s2, 3.2)
    box(ax, s2, 4.2, "ln_1", 1.4, fc=LN)
    plus(ax, s2, 7.2)
    box(ax, s2, 8.2, "ln_2", 1.4, fc=LN)
    box(ax, s2, 9.6, "out  [B, T, D]", 2.2)
    line(ax, [(s2, -0.25), (s2, 2.95)], colour=STREAM, lw=2.4)
    line(ax, [(s2, 3.45), (s2, 3.85)], colour=STREAM, lw=2.4)
    line(ax, [(s2, 4.55), (s2, 6.95)], colour=STREAM, lw=2.4)
    line(ax, [(s2, 7.45), (s2, 7.85)], colour=STREAM, lw=2.4)
    line(ax, [(s2, 8.55), (s2, 9.25)], colour=STREAM, lw=2.4)
    box(ax, bx2, 1.55, ATTN.replace(" (causal)", ""), 4.4, 1.65, fc=BR, fontsize=9)
    box(ax, bx2, 5.7, MLP, 4.0, 1.05, fc=BR, fontsize=9)
    line(ax, [(s2, 0.2), (bx2, 0.2), (bx2, 0.72)])
    line(ax, [(bx2, 2.38), (bx2, 3.2), (s2 + 0.25, 3.2)])
    line(ax, [(s2, 4.8), (bx2, 4.8), (bx2, 5.17)])
    line(ax, [(bx2, 6.23), (bx2, 7.2), (s2 + 0.25, 7.2)])
    ax.text(s2 + 0.35, 4.95, r"$x_1$", fontsize=11)
    ax.text(10.2, -1.55, r"$x_1 = \mathrm{ln\_1}(x + \mathrm{attn}(x)),\quad "
            r"\mathrm{out} = \mathrm{ln\_2}(x_1 + \mathrm{mlp}(x_1))$", fontsize=11)
    fig.text(0.5, 0.03, "Block in tinylm/nn/transformer.py; the same blocks as single "
             "functional pairs: tinylm/functional/transformer_block.py (pre-LN) and "
             "post_ln_block.py.\nIn the backward pass each + hands its gradient to both "
             "paths unchanged; in pre-LN the blue path reaches the first block through no "
             "layer norm and no weight.", ha="center", fontsize=9, color="0.3")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(HERE / "07-pre-ln-block.png", dpi=100)
    plt.close(fig)


def main():
    causal_mask_figure()
    head_split_figure()
    pre_ln_block_figure()
    print("wrote 07-causal-mask.png, 07-head-split.png, 07-pre-ln-block.png")


if __name__ == "__main__":
    main()
