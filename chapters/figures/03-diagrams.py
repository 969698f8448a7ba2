"""Draws the computational-graph diagram of chapter 03 into chapters/figures/.

    .venv/bin/python chapters/figures/03-diagrams.py

03-computational-graph.png: a two-layer network on one example, x -> linear -> tanh ->
linear -> softmax + cross-entropy -> L, with the forward value of every array (black) and the
gradient dL/d(array) that backpropagation hands back to it (red). The numbers are computed
here with tinylm's own forward/backward pairs (tinylm/functional/), in float64, and checked
against central finite differences before anything is drawn, so the figure cannot be wrong.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from tinylm.functional.activations import tanh_backward, tanh_forward  # noqa: E402
from tinylm.functional.cross_entropy import (cross_entropy_backward,  # noqa: E402
                                             cross_entropy_forward)
from tinylm.functional.linear import linear_backward, linear_forward  # noqa: E402

HERE = Path(__file__).resolve().parent
FWD, BWD = "black", "#c0392b"

# The tiny example: one input of 2 features, 2 hidden units, 3 classes, target class 2.
X = np.array([[1.0, -2.0]])                                   # [N=1, I=2]
W1 = np.array([[0.5, -0.3], [0.2, 0.4]])                      # [I=2, H=2]
B1 = np.array([0.1, -0.1])                                    # [H]
W2 = np.array([[0.7, -0.5, 0.2], [-0.4, 0.6, 0.3]])           # [H=2, K=3]
B2 = np.array([0.0, 0.1, -0.1])                               # [K]
Y = np.array([2])                                             # [N] target class


def forward_backward(x, W1, b1, W2, b2, y):
    """The forward pass, then the backward pass, with tinylm's functional pairs."""
    a, lin1 = linear_forward(x, W1, b1)                       # [1, 2]
    h, act = tanh_forward(a)                                  # [1, 2]
    z, lin2 = linear_forward(h, W2, b2)                       # [1, 3]
    L, ce = cross_entropy_forward(z, y)                       # scalar
    dz = cross_entropy_backward(1.0, ce)                      # dL/dL = 1 starts the chain
    dh, dW2, db2 = linear_backward(dz, lin2)
    da = tanh_backward(dh, act)
    dx, dW1, db1 = linear_backward(da, lin1)
    p = ce[0]                                                 # softmax(z), kept for backward
    values = dict(x=x, W1=W1, b1=b1, a=a, h=h, W2=W2, b2=b2, z=z, p=p, L=float(L))
    grads = dict(x=dx, W1=dW1, b1=db1, a=da, h=dh, W2=dW2, b2=db2, z=dz)
    return values, grads


def check_by_finite_differences(grads, eps=1e-6):
    """Every drawn gradient of an input or parameter equals (L(v + eps) - L(v - eps)) / 2 eps."""
    arrays = dict(x=X, W1=W1, b1=B1, W2=W2, b2=B2)
    for name, array in arrays.items():
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            for sign in (+1, -1):
                moved = {k: v.copy() for k, v in arrays.items()}
                moved[name][index] += sign * eps
                L = forward_backward(moved["x"], moved["W1"], moved["b1"], moved["W2"],
                                     moved["b2"], Y)[0]["L"]
                numeric[index] += sign * L / (2 * eps)
        assert np.allclose(numeric, grads[name], atol=1e-8), (name, numeric, grads[name])


def vec(v) -> str:
    return "[" + ", ".join(f"{e:.2f}" for e in np.ravel(v)) + "]"


def mat(m) -> str:
    return "\n".join(vec(row) for row in m)


def box(ax, x, y, title, value, grad, width=1.7, height=1.45):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.04", fc="#f4f6f8", ec="0.3", lw=1))
    ax.text(x, y + height / 2 - 0.2, title, ha="center", va="center", fontsize=10,
            weight="bold")
    ax.text(x, y + 0.02, value, ha="center", va="center", fontsize=8.5, color=FWD,
            family="monospace", linespacing=1.1)
    if grad is not None:
        ax.text(x, y - height / 2 + 0.27, grad, ha="center", va="center", fontsize=8.5,
                color=BWD, family="monospace", linespacing=1.1)


def op(ax, x, y, label, r=0.5):
    ax.add_patch(plt.Circle((x, y), r, fc="#fdebd0", ec="0.3", lw=1))
    ax.text(x, y, label, ha="center", va="center", fontsize=9)


def arrow(ax, start, end, color, dashed=False, rad=0.0):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11, lw=1.1,
                                 color=color, ls="--" if dashed else "-",
                                 connectionstyle=f"arc3,rad={rad}"))


def param_arrows(ax, box_xy, circle_xy, r=0.5):
    """A forward arrow from a parameter's box into an operation, the gradient back beside it."""
    (bx, by), (cx, cy) = box_xy, circle_xy
    d = np.array([bx - cx, by - cy])
    d /= np.linalg.norm(d)
    n = np.array([-d[1], d[0]]) * 0.09                     # offset the two arrows sideways
    tip = np.array([cx, cy]) + r * d
    arrow(ax, tuple(np.array([bx, by]) + n), tuple(tip + n), FWD)
    arrow(ax, tuple(tip - n), tuple(np.array([bx, by]) - n), BWD, dashed=True)


def draw(values, grads):
    fig, ax = plt.subplots(figsize=(15, 7.9))
    ax.set_xlim(-0.2, 16.2)
    ax.set_ylim(-0.7, 7.9)
    ax.set_aspect("equal")
    ax.axis("off")
    yc, yp = 3.3, 6.0                                  # the chain, the parameters above it
    xs = dict(x=0.8, lin1=2.75, a=4.7, tanh=6.4, h=8.1, lin2=10.05, z=12.05, ce=14.0, L=15.6)
    g = {k: vec(v) for k, v in grads.items() if k not in ("W1", "W2")}

    box(ax, xs["x"], yc, "x  [1, 2]", vec(values["x"]), g["x"])
    box(ax, xs["a"], yc, "a  [1, 2]", vec(values["a"]), g["a"])
    box(ax, xs["h"], yc, "h  [1, 2]", vec(values["h"]), g["h"])
    box(ax, xs["z"], yc, "z  [1, 3]", vec(values["z"]), g["z"], width=1.95)
    ax.text(xs["z"], yc - 1.0, "p = softmax(z)\n" + vec(values["p"]), ha="center", va="top",
            fontsize=8.5, family="monospace")
    box(ax, xs["L"], yc, "L", f"{values['L']:.3f}", "1.00", width=1.0)
    W1_xy, b1_xy = (xs["lin1"] - 1.0, yp), (xs["lin1"] + 1.0, yp)
    W2_xy, b2_xy = (xs["lin2"] - 1.1, yp), (xs["lin2"] + 1.1, yp)
    box(ax, *W1_xy, "W1  [2, 2]", mat(values["W1"]), mat(grads["W1"]), width=1.75, height=1.9)
    box(ax, *b1_xy, "b1  [2]", vec(values["b1"]), g["b1"], width=1.55)
    box(ax, *W2_xy, "W2  [2, 3]", mat(values["W2"]), mat(grads["W2"]), width=2.05, height=1.9)
    box(ax, *b2_xy, "b2  [3]", vec(values["b2"]), g["b2"], width=1.95)
    box(ax, xs["ce"], yp, "y (target)", "class 2", None, width=1.45, height=1.0)

    op(ax, xs["lin1"], yc, "linear")
    op(ax, xs["tanh"], yc, "tanh")
    op(ax, xs["lin2"], yc, "linear")
    op(ax, xs["ce"], yc, "softmax\n+ CE", r=0.62)

    def chain(a, b, ra, rb):                   # forward above the midline, backward below it
        arrow(ax, (xs[a] + ra, yc + 0.15), (xs[b] - rb, yc + 0.15), FWD)
        arrow(ax, (xs[b] - rb, yc - 0.15), (xs[a] + ra, yc - 0.15), BWD, dashed=True)

    chain("x", "lin1", 0.85, 0.5)
    chain("lin1", "a", 0.5, 0.85)
    chain("a", "tanh", 0.85, 0.5)
    chain("tanh", "h", 0.5, 0.85)
    chain("h", "lin2", 0.85, 0.5)
    chain("lin2", "z", 0.5, 0.98)
    chain("z", "ce", 0.98, 0.62)
    chain("ce", "L", 0.62, 0.5)
    param_arrows(ax, (W1_xy[0] + 0.3, yp - 0.95), (xs["lin1"], yc))
    param_arrows(ax, (b1_xy[0] - 0.3, yp - 0.73), (xs["lin1"], yc))
    param_arrows(ax, (W2_xy[0] + 0.3, yp - 0.95), (xs["lin2"], yc))
    param_arrows(ax, (b2_xy[0] - 0.3, yp - 0.73), (xs["lin2"], yc))
    arrow(ax, (xs["ce"], yp - 0.5), (xs["ce"], yc + 0.62), FWD)

    forward = [(xs["lin1"], r"$a = xW_1 + b_1$"), (xs["tanh"], r"$h = \tanh(a)$"),
               (xs["lin2"], r"$z = hW_2 + b_2$"),
               (xs["ce"], r"$L = \log\sum_j e^{z_j} - z_y$")]
    for x, text in forward:
        ax.text(x, 1.75, text, ha="center", va="center", fontsize=10, color=FWD)
    rules = [  # the backward rule of each operation, as tinylm's *_backward computes it
        (xs["lin1"], r"$\bar x = \bar a\,W_1^\top$" "\n" r"$\bar W_1 = x^\top \bar a$" "\n"
                     r"$\bar b_1 = $ row sum of $\bar a$"),
        (xs["tanh"], r"$\bar a = \bar h \odot (1 - h^2)$"),
        (xs["lin2"], r"$\bar h = \bar z\,W_2^\top$" "\n" r"$\bar W_2 = h^\top \bar z$" "\n"
                     r"$\bar b_2 = $ row sum of $\bar z$"),
        (xs["ce"], r"$\bar z = p - \mathrm{onehot}(y)$" "\n" r"(mean over $N = 1$ row)"),
    ]
    for x, text in rules:
        ax.text(x, 1.3, text, ha="center", va="top", fontsize=10, color=BWD, linespacing=1.7)

    ax.text(0.0, 7.6, "Forward: values (black, solid arrows).   Backward: gradients "
            r"$\bar v = \partial L/\partial v$ (red, dashed arrows), each the shape of $v$.",
            fontsize=11, va="center")
    ax.text(0.0, -0.5, "Computed with linear_forward/backward, tanh_forward/backward and "
            "cross_entropy_forward/backward (float64); every red number of x, W1, b1, W2, b2 "
            "equals its central finite difference.", fontsize=8.5, color="0.35", va="center")
    fig.tight_layout()
    fig.savefig(HERE / "03-computational-graph.png", dpi=100)
    plt.close(fig)


def main():
    values, grads = forward_backward(X, W1, B1, W2, B2, Y)
    check_by_finite_differences(grads)
    draw(values, grads)
    print(f"L = {values['L']:.6f}; gradients agree with finite differences")


if __name__ == "__main__":
    main()
