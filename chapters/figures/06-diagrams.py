"""Draws the diagrams of chapter 06 into chapters/figures/.

    .venv/bin/python chapters/figures/06-diagrams.py

06-rnn-unrolled.png  the Elman RNN folded and unrolled in time, with the forward step and the
                     backward-through-time rule of tinylm/functional/rnn.py
06-lstm-cell.png     one LSTM step, gates in tinylm's (PyTorch's) order i, f, g, o, as
                     tinylm/functional/lstm.py computes them
06-gru-cell.png      one GRU step in PyTorch's variant (reset gate applied after the matmul),
                     as tinylm/functional/gru.py computes it

The equations drawn are those of the modules' docstrings, symbol for symbol; a check at the
bottom runs each cell once with tinylm's functions and compares it with the drawn formulas.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from tinylm.functional.gru import gru_cell_forward  # noqa: E402
from tinylm.functional.lstm import lstm_cell_forward  # noqa: E402
from tinylm.functional.rnn import rnn_cell_forward  # noqa: E402

HERE = Path(__file__).resolve().parent
FWD, BWD, CELL = "black", "#c0392b", "#1f77b4"
GATE, STATE, PROJ = "#fdebd0", "#eaf2f8", "#e8f6e9"


def node(ax, x, y, text, width, height=0.8, fc=STATE, fontsize=10.5):
    patch = FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                           boxstyle="round,pad=0.05", fc=fc, ec="0.3", lw=1)
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return patch


def link(ax, a, b, color=FWD, lw=1.2, dashed=False, rad=0.0, label=None, label_at=0.5,
         label_offset=(0.0, 0.0)):
    """An arrow from patch (or point) a to patch (or point) b, clipped at the patches' edges."""
    kw = dict(arrowstyle="-|>", mutation_scale=12, lw=lw, color=color,
              ls="--" if dashed else "-", connectionstyle=f"arc3,rad={rad}")
    pa = a if isinstance(a, tuple) else _centre(a)
    pb = b if isinstance(b, tuple) else _centre(b)
    arrow = FancyArrowPatch(pa, pb, patchA=None if isinstance(a, tuple) else a,
                            patchB=None if isinstance(b, tuple) else b, **kw)
    ax.add_patch(arrow)
    if label:
        lx = pa[0] + label_at * (pb[0] - pa[0]) + label_offset[0]
        ly = pa[1] + label_at * (pb[1] - pa[1]) + label_offset[1]
        ax.text(lx, ly, label, fontsize=9.5, color=color, ha="center", va="center",
                bbox=dict(fc="white", ec="none", pad=0.5))


def _centre(patch):
    x, y = patch.get_x(), patch.get_y()
    return x + patch.get_width() / 2, y + patch.get_height() / 2


def canvas(width, height, figsize):
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


# -- the RNN, folded and unrolled -----------------------------------------------------------

def rnn_unrolled():
    fig, ax = canvas(17, 8.2, (14, 6.8))
    yx, yh, yo = 1.3, 3.6, 5.9                          # inputs, cells, outputs
    # folded
    cell = node(ax, 1.6, yh, "tanh", 1.3, 0.9, fc=GATE)
    xin = node(ax, 1.6, yx, r"$x_t$", 0.9)
    hout = node(ax, 1.6, yo, r"$h_t$", 0.9)
    link(ax, xin, cell, label=r"$W_x$")
    link(ax, cell, hout)
    ax.add_patch(FancyArrowPatch((2.25, yh + 0.2), (2.25, yh - 0.2), arrowstyle="-|>",
                                 mutation_scale=12, lw=1.2, color=FWD,
                                 connectionstyle="arc3,rad=-2.6"))
    ax.text(3.25, yh, r"$W_h$", fontsize=10, va="center")
    ax.text(1.6, 7.3, "folded", ha="center", fontsize=11, weight="bold")
    ax.text(3.9, yh, "=", fontsize=22, ha="center", va="center")
    # unrolled
    xs = [6.6, 9.4, 12.2, 15.0]
    names = ["1", "2", "3", "T"]
    h0 = node(ax, 4.8, yh, r"$h_0$", 0.9)
    ax.text(10.8, 7.3, "unrolled: the same $W_x$, $W_h$, $b$ at every step", ha="center",
            fontsize=11, weight="bold")
    prev = h0
    for i, (x, n) in enumerate(zip(xs, names)):
        c = node(ax, x, yh, "tanh", 1.3, 0.9, fc=GATE)
        xi = node(ax, x, yx, rf"$x_{n}$", 0.9)
        hi = node(ax, x, yo, rf"$h_{n}$", 0.9)
        link(ax, xi, c, label=r"$W_x$")
        link(ax, c, hi)
        link(ax, hi, c, color=BWD, dashed=True, rad=-0.45)
        ax.text(x + 0.68, (yh + yo) / 2 + 0.05, rf"$d\mathrm{{hs}}_{n}$", color=BWD,
                fontsize=9.5, va="center")
        if i == 3:
            ax.text((xs[2] + x) / 2, yh, r"$\cdots$", fontsize=16, ha="center", va="center")
            for y0, colour, dashed in ((yh + 0.15, FWD, False), (yh - 0.15, BWD, True)):
                ax.plot([xs[2] + 0.65, xs[2] + 1.0], [y0, y0], color=colour, lw=1.2,
                        ls="--" if dashed else "-")
            link(ax, (x - 1.0, yh + 0.15), (x - 0.65, yh + 0.15))
            link(ax, (x - 0.65, yh - 0.15), (x - 1.0, yh - 0.15), color=BWD, dashed=True)
        else:
            left = _centre(prev)[0] + (0.45 if prev is h0 else 0.65)
            link(ax, (left, yh + 0.15), (x - 0.65, yh + 0.15), label=r"$W_h$",
                 label_offset=(0, 0.3))
            link(ax, (x - 0.65, yh - 0.15), (left, yh - 0.15), color=BWD, dashed=True)
        prev = c
    ax.text(8.0, yh - 0.62, r"$da_{t+1} W_h^\top$", color=BWD, fontsize=9.5, ha="center")
    ax.text(0.3, 0.25, r"forward: $a_t = x_t W_x + h_{t-1} W_h + b,\quad h_t = \tanh(a_t)$"
            r"$\qquad$ time-major: $x$ [T, B, I], $h_t$ [B, H], $W_x$ [I, H], $W_h$ [H, H]",
            fontsize=10.5)
    ax.text(0.3, -0.35, r"backward through time (red), from $t = T$ down to 1:  "
            r"$dh_t = d\mathrm{hs}_t + da_{t+1} W_h^\top,\quad da_t = dh_t \odot (1 - h_t^2)$;"
            r"  $dW_x, dW_h, db$ are sums over $t$", fontsize=10.5, color=BWD)
    ax.set_ylim(-0.7, 8.2)
    fig.tight_layout()
    fig.savefig(HERE / "06-rnn-unrolled.png", dpi=100)
    plt.close(fig)


# -- the LSTM cell --------------------------------------------------------------------------

def equations(ax, x, y, title, lines, blue=(), step=0.56, fontsize=10.5):
    ax.text(x, y, title, fontsize=fontsize, va="center", weight="bold")
    for k, line in enumerate(lines, 1):
        ax.text(x + 0.15, y - step * k, line, fontsize=fontsize, va="center",
                color=CELL if k - 1 in blue else FWD)


def lstm_cell():
    fig, ax = canvas(24, 9.4, (16, 6.3))
    ax.add_patch(FancyBboxPatch((0.6, 0.95), 12.7, 7.45, boxstyle="round,pad=0.1", fc="none",
                                ec="0.6", lw=1, ls=":"))
    ax.text(0.8, 8.1, "one LSTM step", fontsize=10, color="0.4")
    x_t = node(ax, 3.0, 0.35, r"$x_t$  [B, I]", 1.7)
    h_prev = node(ax, 7.4, 0.35, r"$h_{t-1}$  [B, H]", 2.1)
    c_prev = node(ax, 0.75, 6.95, r"$c_{t-1}$", 1.2)
    gx = [2.3, 4.5, 6.7, 8.9]
    pre = node(ax, 5.6, 2.2, r"$a_t = x_t W_x + h_{t-1} W_h + b$" "\n"
               r"[B, 4H] $=$ [$a_i$ | $a_f$ | $a_g$ | $a_o$]", 7.6, 1.1, fc=PROJ)
    i = node(ax, gx[0], 4.1, r"$i_t = \sigma(a_i)$" "\ninput gate", 1.95, 1.0, fc=GATE)
    f = node(ax, gx[1], 4.1, r"$f_t = \sigma(a_f)$" "\nforget gate", 1.95, 1.0, fc=GATE)
    g = node(ax, gx[2], 4.1, r"$g_t = \tanh(a_g)$" "\ncandidate", 1.95, 1.0, fc=GATE)
    o = node(ax, gx[3], 4.1, r"$o_t = \sigma(a_o)$" "\noutput gate", 1.95, 1.0, fc=GATE)
    c = node(ax, 4.7, 6.95, r"$c_t = f_t \odot c_{t-1} + i_t \odot g_t$", 4.3, 0.95)
    tc = node(ax, 11.6, 5.55, r"$\tanh(c_t)$", 1.5, 0.75, fc=GATE)
    h = node(ax, 11.6, 4.1, r"$h_t = o_t \odot \tanh(c_t)$", 2.95, 0.9)
    c_out = node(ax, 15.0, 6.95, r"$c_t$ to step $t{+}1$", 2.3)
    h_out = node(ax, 15.0, 4.1, r"$h_t$ to step $t{+}1$" "\nand to the output", 2.3, 1.0)

    link(ax, x_t, pre)
    link(ax, h_prev, pre)
    for gate, x in zip((i, f, g, o), gx):
        link(ax, (x, 2.75), gate)
    link(ax, f, c, label=r"$f_t$")
    link(ax, i, c, label=r"$i_t$", label_at=0.45)
    link(ax, g, c, label=r"$g_t$")
    link(ax, c_prev, c, color=CELL, lw=2.4)
    link(ax, c, c_out, color=CELL, lw=2.4)
    link(ax, (11.6, 6.95), tc)
    ax.plot([11.6], [6.95], "o", color=CELL, ms=5)
    link(ax, tc, h)
    link(ax, o, h)
    link(ax, h, h_out)
    ax.text(4.7, 7.75, "the cell: an additive, gated sum", color=CELL, fontsize=10,
            ha="center")

    equations(ax, 17.1, 8.6, "tinylm/functional/lstm.py, gates i, f, g, o", [
        r"$a_t = x_t W_x + h_{t-1} W_h + b$",
        r"$W_x$ [I, 4H],  $W_h$ [H, 4H],  $b$ [4H]",
        r"$i_t = \sigma(a_i)$,   $f_t = \sigma(a_f)$",
        r"$g_t = \tanh(a_g)$,   $o_t = \sigma(a_o)$",
        r"$c_t = f_t \odot c_{t-1} + i_t \odot g_t$",
        r"$h_t = o_t \odot \tanh(c_t)$",
        "(PyTorch's gate order and formulas)",
        r"No $(1 - f)$ term, and no extra",
        r"weight matrix from $c$ to $h$.",
        "",
        "Backward along the cell (blue):",
        r"$dc_{t-1} = dc \odot f_t$: scaled by the",
        r"forget gate only, so with $f_t \approx 1$",
        "the gradient survives many steps."], blue=(10, 11, 12, 13))
    ax.set_ylim(-0.3, 9.2)
    fig.tight_layout()
    fig.savefig(HERE / "06-lstm-cell.png", dpi=100)
    plt.close(fig)


# -- the GRU cell ---------------------------------------------------------------------------

def gru_cell():
    fig, ax = canvas(25, 9.6, (16, 6.2))
    ax.add_patch(FancyBboxPatch((0.4, 0.95), 13.6, 7.75, boxstyle="round,pad=0.1", fc="none",
                                ec="0.6", lw=1, ls=":"))
    ax.text(0.6, 8.4, "one GRU step", fontsize=10, color="0.4")
    x_t = node(ax, 2.9, 0.35, r"$x_t$  [B, I]", 1.7)
    h_prev = node(ax, 9.4, 0.35, r"$h_{t-1}$  [B, H]", 2.1)
    px = node(ax, 2.9, 2.2, r"$x_t W_x + b_x$   [B, 3H]" "\nblocks r | z | n", 3.9, 1.05,
              fc=PROJ)
    ph = node(ax, 9.4, 2.2, r"$h_{t-1} W_h + b_h$   [B, 3H]" "\nblocks r | z | n", 3.9, 1.05,
              fc=PROJ)
    r = node(ax, 2.3, 4.6, r"$r_t = \sigma(x_t W_{xr} + b_{xr}$" "\n"
             r"$+\; h_{t-1} W_{hr} + b_{hr})$" "\nreset gate", 3.5, 1.45, fc=GATE)
    m = node(ax, 6.4, 4.6, r"$m = h_{t-1} W_{hn} + b_{hn}$", 2.95, 0.8)
    z = node(ax, 11.2, 4.6, r"$z_t = \sigma(x_t W_{xz} + b_{xz}$" "\n"
             r"$+\; h_{t-1} W_{hz} + b_{hz})$" "\nupdate gate", 3.5, 1.45, fc=GATE)
    n = node(ax, 4.6, 6.45, r"$n_t = \tanh(x_t W_{xn} + b_{xn} + r_t \odot m)$" "\ncandidate",
             5.3, 1.0, fc=GATE)
    h = node(ax, 8.4, 8.05, r"$h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$", 5.7, 0.8)
    h_out = node(ax, 16.4, 8.05, r"$h_t$ to step $t{+}1$" "\nand to the output", 2.4, 1.0)

    link(ax, x_t, px)
    link(ax, h_prev, ph)
    link(ax, (1.9, 2.75), r, label="r", label_at=0.45, label_offset=(-0.25, 0))
    link(ax, (3.6, 2.75), z, label="z", label_at=0.62)
    link(ax, (4.45, 2.75), (4.45, 5.95), label="n", label_at=0.62)
    link(ax, (8.6, 2.75), r, label="r", label_at=0.25)
    link(ax, (10.2, 2.75), z, label="z")
    link(ax, (9.4, 2.75), m, label="n", label_at=0.4)
    link(ax, r, n, label=r"$r_t$", label_offset=(-0.25, 0.0))
    link(ax, m, n, label=r"$m$", label_offset=(0.25, 0.0))
    link(ax, n, h, label=r"$n_t$")
    link(ax, z, h, label=r"$z_t$")
    # the direct path of the old state: round the right side of the cell, into h_t
    ax.plot([10.45, 13.5, 13.5, 10.3], [0.35, 0.35, 7.3, 7.3], color=CELL, lw=2.4)
    link(ax, (10.3, 7.3), (10.3, 7.63), color=CELL, lw=2.4)
    ax.text(13.35, 6.0, r"$h_{t-1}$", color=CELL, fontsize=10.5, ha="right")
    link(ax, h, h_out)

    equations(ax, 15.0, 6.9, "tinylm/functional/gru.py, PyTorch's variant, blocks r, z, n", [
        r"$r_t = \sigma(x_t W_{xr} + b_{xr} + h_{t-1} W_{hr} + b_{hr})$",
        r"$z_t = \sigma(x_t W_{xz} + b_{xz} + h_{t-1} W_{hz} + b_{hz})$",
        r"$n_t = \tanh(x_t W_{xn} + b_{xn} + r_t \odot (h_{t-1} W_{hn} + b_{hn}))$",
        r"$h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$",
        r"$W_x$ [I, 3H],  $W_h$ [H, 3H],  $b_x, b_h$ [3H]",
        r"The reset gate multiplies $h_{t-1} W_{hn} + b_{hn}$ after",
        r"the matmul (PyTorch, cuDNN); Cho et al. wrote",
        r"$(r_t \odot h_{t-1}) W_{hn}$, a different function. So",
        r"$b_{hn}$ cannot be folded into $b_{xn}$: two bias vectors.",
        r"$z$ weights the old state (some texts swap $z$ and $1 - z$).",
        "Backward along the blue path: the direct part",
        r"$dh_t \odot z_t$ of $dh_{t-1}$; with $z_t \approx 1$ it passes unchanged."],
        blue=(10, 11), step=0.52, fontsize=10)
    ax.set_ylim(-0.3, 9.1)
    fig.tight_layout()
    fig.savefig(HERE / "06-gru-cell.png", dpi=100)
    plt.close(fig)


# -- the drawn formulas are tinylm's ----------------------------------------------------------

def check_formulas():
    """Each cell, run once with tinylm's functions, equals the formulas drawn above."""
    rng = np.random.default_rng(0)
    B, I, H = 2, 3, 4
    s = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    x = rng.standard_normal((B, I))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))

    W_x, W_h, b = rng.standard_normal((I, H)), rng.standard_normal((H, H)), rng.standard_normal(H)
    h, _ = rnn_cell_forward(x, h0, W_x, W_h, b)
    assert np.allclose(h, np.tanh(x @ W_x + h0 @ W_h + b))

    W_x, W_h, b = (rng.standard_normal((I, 4 * H)), rng.standard_normal((H, 4 * H)),
                   rng.standard_normal(4 * H))
    (h, c), _ = lstm_cell_forward(x, h0, c0, W_x, W_h, b)
    a = x @ W_x + h0 @ W_h + b
    i, f, g, o = s(a[:, :H]), s(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), s(a[:, 3 * H:])
    assert np.allclose(c, f * c0 + i * g) and np.allclose(h, o * np.tanh(f * c0 + i * g))

    W_x, W_h = rng.standard_normal((I, 3 * H)), rng.standard_normal((H, 3 * H))
    b_x, b_h = rng.standard_normal(3 * H), rng.standard_normal(3 * H)
    h, _ = gru_cell_forward(x, h0, W_x, W_h, b_x, b_h)
    px, ph = x @ W_x + b_x, h0 @ W_h + b_h
    r, z = s(px[:, :H] + ph[:, :H]), s(px[:, H:2 * H] + ph[:, H:2 * H])
    n = np.tanh(px[:, 2 * H:] + r * ph[:, 2 * H:])
    assert np.allclose(h, (1 - z) * n + z * h0)


def main():
    check_formulas()
    rnn_unrolled()
    lstm_cell()
    gru_cell()
    print("drawn formulas match rnn_cell_forward, lstm_cell_forward and gru_cell_forward")


if __name__ == "__main__":
    main()
