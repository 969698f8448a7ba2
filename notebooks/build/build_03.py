"""Writes notebooks/03-neural-networks.ipynb (without outputs) from the cells below.

    .venv/bin/python notebooks/build/build_03.py              write the notebook
    .venv/bin/python notebooks/build/build_03.py --figures    also run it (full settings) and
                                                              save chapters/figures/03-*.png

The figures of chapter 03 are drawn by the notebook itself: when ``TINYLM_FIGURES_DIR`` is
set, its ``save`` helper writes each figure there.
"""

import argparse
import os
from pathlib import Path

import nbformat
from notebook_cells import build_notebook

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "notebooks" / "03-neural-networks.ipynb"
FIGURES = ROOT / "chapters" / "figures"

CELLS = [
    ("md", r"""# 03 · Neural networks（神经网络）: layers, backpropagation and gradient checks

Companion to `chapters/03-neural-networks.md`. Every layer used here is a pair of
hand-written functions in `tinylm/functional/` (`foo_forward` returns an output and a cache,
`foo_backward` turns the upstream gradient into the gradients of the inputs), wrapped as a
module in `tinylm/nn/`. There is no autograd: we call `backward` ourselves.

1. Gradient-check every layer against finite differences (the tables of `tinylm gradcheck`)
2. Activations and their derivatives
3. Choosing the step $h$ of a finite difference: truncation against rounding
4. Backpropagation through a whole MLP, checked parameter by parameter
5. An MLP learns to separate three spirals, trained by plain SGD written here

Set `TINYLM_FAST=1` for tiny settings (the test suite does)."""),
    ("code", r"""import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tinylm import nn
from tinylm.commands.gradcheck import discover_cases
from tinylm.functional import (cross_entropy_backward, cross_entropy_forward, gelu_backward,
                               gelu_forward, relu_backward, relu_forward, sigmoid_backward,
                               sigmoid_forward, tanh_backward, tanh_forward)
from tinylm.gradcheck import GradcheckReport, compare, numerical_gradient

FAST = os.environ.get("TINYLM_FAST") == "1"
FIGURES_DIR = os.environ.get("TINYLM_FIGURES_DIR")      # set by notebooks/build/build_03.py


def save(fig, name):
    # Writes the chapter's figure only when asked to (never during tests).
    if FIGURES_DIR:
        fig.savefig(Path(FIGURES_DIR) / name, dpi=100, bbox_inches="tight")


print("fast mode" if FAST else "full mode")"""),
    ("md", r"""## 1. Every backward against finite differences

Each module of `tinylm/functional/` declares its checks in a `gradcheck_cases()` function:
the forward/backward pair and a recipe for small float64 inputs. `tinylm gradcheck` runs all
of them; here we run them one by one. For each input tensor the table gives the largest
absolute difference between the analytic gradient and the central difference, and the
relative error: that difference divided by the largest gradient entry. A correct backward
sits near $10^{-9}$; a wrong one is off by something of order 1."""),
    ("code", r"""reports = [case.run() for case in discover_cases()]
for report in reports:
    print(report, end="\n\n")
print(f"{sum(r.passed for r in reports)}/{len(reports)} cases pass")"""),
    ("md", r"""A check is only worth something if it can fail. Here is a sigmoid backward that
forgot the factor $(1 - s)$ of $\sigma'(x) = s(1 - s)$:"""),
    ("code", r"""from tinylm.gradcheck import check_gradients

def sigmoid_backward_wrong(dout, s):
    return dout * s                     # should be dout * s * (1 - s)

print(check_gradients(sigmoid_forward, sigmoid_backward_wrong, {"x": np.linspace(-3, 3, 7)},
                      title="sigmoid with a wrong backward"))"""),
    ("md", r"""## 2. Activations（激活函数）and their derivatives

The derivative of each activation is computed by its own backward: feeding an upstream
gradient of ones gives $f'(x)$ element by element."""),
    ("code", r"""x = np.linspace(-4, 4, 401)
pairs = {"sigmoid": (sigmoid_forward, sigmoid_backward), "tanh": (tanh_forward, tanh_backward),
         "ReLU": (relu_forward, relu_backward),
         "GELU": (lambda v: gelu_forward(v, "none"), gelu_backward)}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for name, (forward, backward) in pairs.items():
    y, cache = forward(x)
    axes[0].plot(x, y, label=name)
    axes[1].plot(x, backward(np.ones_like(x), cache), label=name)
axes[0].set_title("activation $f(x)$")
axes[1].set_title("derivative $f'(x)$ (from each backward)")
for ax in axes:
    ax.axhline(0, color="0.8", lw=0.8)
    ax.set_xlabel("x")
    ax.legend()
axes[0].set_ylim(-1.5, 4)
fig.tight_layout()
save(fig, "03-activations.png")"""),
    ("md", r"""Sigmoid's derivative never exceeds 1/4, and tanh's is near 0 once $|x| > 3$: stacked
layers multiply such factors, which is why deep sigmoid networks learn slowly (vanishing
gradients, chapter 06). ReLU passes the gradient through unchanged where $x > 0$; GELU is a
smooth ReLU: its derivative is negative for $x < -0.75$ (where GELU has its minimum) and
lowest, about $-0.13$, at $x = -\sqrt 2$."""),
    ("md", r"""## 3. The step of a finite difference

The forward difference $(f(x+h) - f(x))/h$ has a truncation error $\tfrac{h}{2}|f''|$; the
central difference $(f(x+h) - f(x-h))/(2h)$ has $\tfrac{h^2}{6}|f'''|$. Both also suffer
rounding: $f$ is known only to about $\varepsilon |f|$ ($\varepsilon$ = machine epsilon),
and dividing by $h$ magnifies that to $\approx \varepsilon |f| / h$. Small $h$ is not better:
the total error is a V in log-log axes, smallest near $h \approx \varepsilon^{1/2}$ (forward)
or $\varepsilon^{1/3}$ (central)."""),
    ("code", r"""def derivative_errors(dtype, difference, hs, x0=0.7):
    f = lambda v: np.tanh(np.asarray(v, dtype=dtype))
    exact = 1.0 - np.tanh(x0) ** 2
    errors = []
    for h in hs:
        h_d = dtype(h)
        if difference == "central":
            estimate = (f(dtype(x0) + h_d) - f(dtype(x0) - h_d)) / (2 * h_d)
        else:
            estimate = (f(dtype(x0) + h_d) - f(dtype(x0))) / h_d
        errors.append(abs(float(estimate) - exact))
    return np.maximum(errors, 1e-17)

hs = np.logspace(-14, -0.5, 60 if FAST else 200)
fig, ax = plt.subplots(figsize=(6.5, 4.2))
for dtype, difference, style in [(np.float64, "central", "-"), (np.float64, "forward", "--"),
                                 (np.float32, "central", ":")]:
    ax.loglog(hs, derivative_errors(dtype, difference, hs), style,
              label=f"{difference}, {dtype.__name__}")
ax.axvline(1e-6, color="0.6", lw=0.8)
ax.text(8e-7, 3e-13, "h = 1e-6 (tinylm.gradcheck) ", fontsize=8, color="0.4", ha="right")
ax.set_xlabel("step h")
ax.set_ylabel("|estimate - exact derivative|")
ax.set_title("d tanh(x)/dx at x = 0.7: truncation (right) vs rounding (left)")
ax.legend(loc="lower right")
fig.tight_layout()
save(fig, "03-finite-differences.png")"""),
    ("md", r"""In float64 the central difference reaches about $10^{-11}$ near $h = 10^{-5}$ to
$10^{-6}$; in float32 the error near its best step is noisy, mostly $10^{-6}$ to $10^{-5}$
and $10^{-7}$ only at a few lucky steps: four to five orders of magnitude worse and unpredictable,
too coarse to tell a correct backward from one with a small bug. That is why every gradient check in tinylm runs in
float64 with $h = 10^{-6}$."""),
    ("md", r"""## 4. Backpropagation（反向传播）through a whole MLP

A `Sequential` calls each module's `forward` in order and each `backward` in reverse: the
chain rule, one local derivative at a time. To check the whole chain we nudge every entry of
every parameter and compare the change of the loss with `Parameter.grad`."""),
    ("code", r"""rng = np.random.default_rng(0)
mlp = nn.Sequential(nn.Linear(2, 5, rng=rng), nn.Tanh(), nn.Linear(5, 4, rng=rng), nn.GELU(),
                    nn.LayerNorm(4), nn.Linear(4, 3, rng=rng)).to(np.float64)
x_small = rng.standard_normal((6, 2))
y_small = rng.integers(0, 3, size=6)

def loss_value():
    return float(cross_entropy_forward(mlp.forward(x_small), y_small)[0])

loss, cache = cross_entropy_forward(mlp.forward(x_small), y_small)
mlp.zero_grad()
mlp.backward(cross_entropy_backward(1.0, cache))

report = GradcheckReport("whole MLP: d loss / d parameter", tolerance=1e-7)
for name, p in mlp.named_parameters():
    report.tensors.append(compare(name, p.grad, numerical_gradient(loss_value, p.data), 1e-7))
print(report)"""),
    ("md", r"""## 5. Three spirals

A classic toy problem: points on three interleaved spirals, one class per spiral. No
straight line separates them, so a linear model fails; a two-hidden-layer MLP bends the
boundaries around the arms. Training is plain gradient descent written out in full:
forward, loss, zero the gradients, backward, step."""),
    ("code", r"""def spirals(points_per_class, classes=3, noise=0.2, seed=0):
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1.0, points_per_class)
        start = 2 * np.pi * c / classes
        t = np.linspace(start, start + 1.75 * np.pi, points_per_class)
        t = t + noise * rng.standard_normal(points_per_class)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        ys.append(np.full(points_per_class, c))
    return np.concatenate(xs), np.concatenate(ys)

points, hidden, steps, lr = (60, 32, 600, 1.0) if FAST else (100, 64, 2000, 1.0)
X, y = spirals(points)
rng = np.random.default_rng(0)
model = nn.Sequential(nn.Linear(2, hidden, rng=rng), nn.Tanh(),
                      nn.Linear(hidden, hidden, rng=rng), nn.Tanh(),
                      nn.Linear(hidden, 3, rng=rng)).to(np.float64)
print(model)

losses = []
for step in range(steps):
    logits = model.forward(X)                          # [N, 3]
    loss, cache = cross_entropy_forward(logits, y)
    model.zero_grad()
    model.backward(cross_entropy_backward(1.0, cache))
    for p in model.parameters():                       # plain SGD
        p.data -= lr * p.grad
    losses.append(float(loss))

accuracy = (model.forward(X).argmax(axis=1) == y).mean()
print(f"loss {losses[0]:.3f} -> {losses[-1]:.4f}, training accuracy {accuracy:.1%}")"""),
    ("code", r"""grid_size = 120 if FAST else 300
g = np.linspace(-1.2, 1.2, grid_size)
gx, gy = np.meshgrid(g, g)
grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
regions = model.forward(grid).argmax(axis=1).reshape(gx.shape)

colors = np.array(["tab:red", "tab:blue", "tab:green"])
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
axes[0].contourf(gx, gy, regions, levels=[-0.5, 0.5, 1.5, 2.5], colors=colors, alpha=0.25)
axes[0].scatter(X[:, 0], X[:, 1], c=colors[y], s=10, edgecolors="k", linewidths=0.3)
axes[0].set_title(f"decision regions (training accuracy {accuracy:.0%})")
axes[0].set_aspect("equal")
axes[1].semilogy(losses)
axes[1].set_xlabel("SGD step")
axes[1].set_ylabel("cross-entropy")
axes[1].set_title("training loss")
fig.tight_layout()
save(fig, "03-spirals.png")"""),
    ("md", r"""Try it: replace `nn.Tanh()` with `nn.ReLU()`, halve `hidden`, or raise `lr` to 5 and
watch the loss curve; then remove the hidden layers and see a linear model fail."""),
]


def draw_figures(nb) -> None:
    """Run a copy of the notebook with full settings; its ``save`` writes the figures."""
    import nbclient

    os.environ["TINYLM_FIGURES_DIR"] = str(FIGURES)
    os.environ.pop("TINYLM_FAST", None)
    os.environ.setdefault("MPLBACKEND", "Agg")
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", action="store_true",
                        help="run the notebook with full settings and save the chapter's figures")
    args = parser.parse_args()
    nbformat.write(build_notebook(CELLS), OUT)
    print("wrote", OUT)
    if args.figures:
        draw_figures(build_notebook(CELLS))
        print("figures in", FIGURES)
