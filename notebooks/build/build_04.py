"""Writes notebooks/04-optimization.ipynb (without outputs) from the cells below.

    .venv/bin/python notebooks/build/build_04.py
"""

from pathlib import Path

import nbformat
from notebook_cells import build_notebook

OUT = Path(__file__).resolve().parents[1] / "04-optimization.ipynb"

CELLS = [
    ("md", r"""# 04 · Optimization（优化）: from gradient descent to AdamW

Companion to `chapters/04-optimization.md`. Everything here uses the optimizers in
`tinylm/optim/` (`sgd.py`, `adam.py`, `clip.py`, `schedules.py`), which match `torch.optim`
to 1e-10 (see `tests/test_optim.py`).

1. Trajectories of GD, momentum, Nesterov and Adam on a 2-D function, with hand-written gradients
2. Adam's bias correction: what the first steps look like without it
3. Learning-rate schedules: warm-up + cosine, step decay
4. A small network trained with SGD, Adam and AdamW
5. Gradient clipping, dropout, and saving / restoring an optimizer

Set `TINYLM_FAST=1` to run everything with tiny settings (the test suite does)."""),
    ("code", r"""import os
import types

import matplotlib.pyplot as plt
import numpy as np

from tinylm.functional import cross_entropy_backward, cross_entropy_forward, dropout_forward
from tinylm.nn import Linear, Parameter, Sequential, Tanh
from tinylm.optim import SGD, Adam, AdamW, clip_grad_norm, lr_at

FAST = os.environ.get("TINYLM_FAST") == "1"
print("fast mode" if FAST else "full mode")"""),
    ("md", r"""## 1. Trajectories on an ill-conditioned quadratic

$f(x, y) = \tfrac12 (x^2 + 25 y^2)$ is 25 times more curved along $y$ than along $x$
(condition number 25). Its gradient is $(x, 25y)$, which we write by hand. A `Parameter`
holds the point; each step we put the gradient into `w.grad` and call `opt.step()`,
exactly as a training loop does with a model's parameters."""),
    ("code", r"""def quadratic(w):
    x, y = w
    return 0.5 * (x**2 + 25 * y**2), np.array([x, 25 * y])


def trajectory(fn, start, opt_factory, steps):
    w = Parameter(np.array(start, dtype=np.float64))
    opt = opt_factory([w])
    path = [w.data.copy()]
    for _ in range(steps):
        opt.zero_grad()
        _, grad = fn(w.data)
        w.grad += grad
        opt.step()
        path.append(w.data.copy())
    return np.array(path)


optimizers = {
    "GD, lr 0.075": lambda p: SGD(p, lr=0.075),
    "momentum 0.7, lr 0.04": lambda p: SGD(p, lr=0.04, momentum=0.7),
    "Nesterov 0.7, lr 0.04": lambda p: SGD(p, lr=0.04, momentum=0.7, nesterov=True),
    "Adam, lr 0.3": lambda p: Adam(p, lr=0.3),
}
start, steps = (-4.5, 1.5), 40
paths = {name: trajectory(quadratic, start, make, steps) for name, make in optimizers.items()}

X, Y = np.meshgrid(np.linspace(-5, 1.5, 200), np.linspace(-2, 2, 200))
fig, ax = plt.subplots(figsize=(7, 4))
ax.contour(X, Y, quadratic(np.array([X, Y]))[0], levels=np.geomspace(0.05, 60, 12), colors="0.8")
for name, path in paths.items():
    ax.plot(path[:, 0], path[:, 1], ".-", ms=3, label=f"{name}: f = {quadratic(path[-1])[0]:.1e}")
ax.plot(0, 0, "k*", ms=10)
ax.legend(fontsize=8)
plt.show()"""),
    ("md", r"""Plain gradient descent must keep its step below $2/25$ to stay stable along the steep
$y$ axis, so it zig-zags there and crawls along the flat $x$ axis (each step shrinks $x$
by only $1 - 0.075 = 0.925$). Momentum averages the zig-zag away and accumulates speed along
$x$. Adam divides each coordinate by its own running gradient scale, so it heads for the
minimum diagonally, as if the function were round; with a constant learning rate it then
circles the minimum at a distance of order `lr`, which is why Adam is used with a decaying
schedule.

**Try it:** raise GD's lr to 0.081 (just above $2/25$) and watch it diverge."""),
    ("md", r"""## 2. Adam's bias correction

Adam starts from $m_0 = v_0 = 0$. Unrolling $m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t$ gives
$m_t = (1-\beta_1)\sum_{k=1}^t \beta_1^{t-k} g_k$, so with a steady gradient mean,
$\mathbb E[m_t] = (1-\beta_1^t)\,\mathbb E[g]$: the average is pulled towards its zero start.
Likewise $\mathbb E[v_t] = (1-\beta_2^t)\,\mathbb E[g^2]$. Adam divides the bias out.

Below, a hand-written Adam *without* the correction (the formula some texts give, including
the seed article's first version) runs next to `tinylm.optim.Adam` on a constant gradient.
The step length divided by `lr` should be 1."""),
    ("code", r"""def uncorrected_adam_steps(g, steps, lr=1.0, b1=0.9, b2=0.999, eps=1e-8):
    m = v = 0.0
    out = []
    for _ in range(steps):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        out.append(lr * m / (np.sqrt(v) + eps))
    return np.array(out)


def tinylm_adam_steps(g, steps, lr=1.0):
    w = Parameter(np.zeros(1))
    opt = Adam([w], lr=lr)
    out = []
    for _ in range(steps):
        before = w.data.copy()
        opt.zero_grad()
        w.grad += g
        opt.step()
        out.append(float(before[0] - w.data[0]))
    return np.array(out)


T = 300 if FAST else 3000
raw, corrected = uncorrected_adam_steps(0.01, T), tinylm_adam_steps(0.01, T)
print("step 1: without correction", raw[0], " with correction", corrected[0])
print(f"largest uncorrected step: {raw.max():.2f} x lr, at t = {raw.argmax() + 1}")
plt.figure(figsize=(6, 3))
plt.semilogx(np.arange(1, T + 1), raw, label="without bias correction")
plt.semilogx(np.arange(1, T + 1), corrected, label="tinylm Adam")
plt.xlabel("step t"); plt.ylabel("step / lr"); plt.legend(); plt.show()"""),
    ("md", r"""The uncorrected ratio is $(1-\beta_1^t)/\sqrt{1-\beta_2^t}$: 3.16 at the first step and
about 6.6 around $t = 12$, because $v_t$ (with $\beta_2 = 0.999$) warms up far more slowly
than $m_t$. Those are exactly the steps where the weights are random and the loss is
largest: the correction prevents an early blow-up."""),
    ("md", r"""## 3. Learning-rate schedules

`lr_at(it, config)` reads any object with the fields of `tinylm.train.config.TrainConfig`.
The training loop does `opt.lr = lr_at(it, config)` before every step."""),
    ("code", r"""cosine = types.SimpleNamespace(lr=1e-3, schedule="cosine", warmup_iters=100, min_lr=1e-4,
                               lr_decay_iters=5000, max_iters=5000)
steps_per_epoch = 2323   # PTB with batch 20 x 20 steps
step = types.SimpleNamespace(lr=1.0, schedule="step", decay_start=4 * steps_per_epoch,
                             decay_every=steps_per_epoch, decay_factor=0.5)
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
its = np.arange(0, 5500, 5)
axes[0].plot(its, [lr_at(i, cosine) for i in its]); axes[0].set_title("warm-up + cosine")
its = np.arange(0, 13 * steps_per_epoch, 50)
axes[1].plot(its / steps_per_epoch, [lr_at(i, step) for i in its])
axes[1].set_title("step decay (Zaremba)"); axes[1].set_xlabel("epoch")
plt.show()
print("iteration 0:", lr_at(0, cosine), " iteration 100:", lr_at(100, cosine),
      " iteration 5000:", lr_at(5000, cosine))"""),
    ("md", r"""## 4. A small network: SGD vs Adam vs AdamW

Three interleaved spirals in 2-D, a 2-64-64-3 tanh network (`tinylm.nn.Sequential`),
softmax cross-entropy. No autograd: `forward`, then `backward` from the loss gradient
fills every `p.grad`, then `opt.step()`."""),
    ("code", r"""def spirals(n_per_class, rng, classes=3):
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1.0, n_per_class)
        theta = 4.0 * r + 2 * np.pi * c / classes + 0.2 * rng.standard_normal(n_per_class)
        xs.append(np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1))
        ys.append(np.full(n_per_class, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


data_rng = np.random.default_rng(0)
x_train, y_train = spirals(100 if FAST else 300, data_rng)
print("data:", x_train.shape, "classes:", np.bincount(y_train))


def make_model(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(Linear(2, 64, rng=rng), Tanh(), Linear(64, 64, rng=rng), Tanh(),
                      Linear(64, 3, rng=rng))


def train(opt_factory, steps, batch_size=64, clip=None, seed=0):
    model = make_model(seed)
    opt = opt_factory(model.parameters())
    rng = np.random.default_rng(seed)
    losses, norms = [], []
    for _ in range(steps):
        idx = rng.integers(0, len(x_train), batch_size)          # a random minibatch
        logits = model.forward(x_train[idx])
        loss, cache = cross_entropy_forward(logits, y_train[idx])
        opt.zero_grad()
        model.backward(cross_entropy_backward(1.0, cache))
        if clip is not None:
            norms.append(clip_grad_norm(model.parameters(), clip))
        opt.step()
        losses.append(float(loss))
    logits = model.forward(x_train)
    accuracy = float((logits.argmax(-1) == y_train).mean())
    return np.array(losses), accuracy, norms


steps = 150 if FAST else 2000
runs = {
    "SGD lr 0.1": lambda ps: SGD(ps, lr=0.1),
    "SGD+momentum 0.9, lr 0.1": lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    "Adam lr 1e-2": lambda ps: Adam(ps, lr=1e-2),
    "AdamW lr 1e-2, wd 0.1": lambda ps: AdamW(ps, lr=1e-2, weight_decay=0.1),
}
results = {name: train(make, steps) for name, make in runs.items()}

plt.figure(figsize=(7, 3.5))
smooth = lambda a, k=20: np.convolve(a, np.ones(k) / k, mode="valid")
for name, (losses, acc, _) in results.items():
    plt.plot(smooth(losses), label=f"{name} (train acc {acc:.2f})")
plt.xlabel("step"); plt.ylabel("loss (moving average)"); plt.yscale("log"); plt.legend(fontsize=8)
plt.show()"""),
    ("md", r"""Plain SGD with the same learning rate is the slowest; momentum and Adam fit the spirals
much faster. The noise in each curve is minibatch noise: every step sees a different random
64 points, so the gradient is an unbiased but noisy estimate of the full-data gradient.
AdamW's decoupled weight decay ($\theta \leftarrow \theta - \eta\lambda\theta$ each step)
keeps the weights smaller; on this tiny problem (no held-out set) it costs a little
training loss, which is the point of a regulariser.

**Try it:** give SGD lr 1.0, or Adam lr 0.1, and watch the loss curves."""),
    ("md", r"""## 5. Gradient clipping, dropout, checkpoints

`clip_grad_norm(params, max_norm)` rescales all gradients together when their global norm
exceeds `max_norm` and returns the norm before clipping."""),
    ("code", r"""losses, acc, norms = train(lambda ps: SGD(ps, lr=0.1, momentum=0.9), 50 if FAST else 300,
                           clip=1.0)
print(f"gradient norm before clipping: median {np.median(norms):.3f}, max {np.max(norms):.3f};"
      f" {np.mean(np.array(norms) > 1.0):.0%} of the steps were clipped")"""),
    ("md", r"""Inverted dropout (`tinylm/functional/dropout.py`) zeroes each unit with probability $p$ and
scales the survivors by $1/(1-p)$, so the expected activation is unchanged and evaluation
needs no rescaling:"""),
    ("code", r"""x = np.ones((1000, 100))
y, _ = dropout_forward(x, 0.3, np.random.default_rng(0), training=True)
print("fraction kept:", (y > 0).mean(), " kept value:", y.max(), " mean:", y.mean())"""),
    ("md", r"""`opt.state_dict()` is a flat dict of NumPy arrays (step count, learning rates, Adam's
moment buffers), storable with `np.savez` and no pickle; loading it continues a run bit for
bit:"""),
    ("code", r"""def run_steps(model, opt, n, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        idx = rng.integers(0, len(x_train), 32)
        loss, cache = cross_entropy_forward(model.forward(x_train[idx]), y_train[idx])
        opt.zero_grad()
        model.backward(cross_entropy_backward(1.0, cache))
        opt.step()

model = make_model()
opt = AdamW(model.parameters(), lr=1e-2)
run_steps(model, opt, 5, seed=1)
saved_model, saved_opt = model.state_dict(), opt.state_dict()
print(sorted(saved_opt)[:6], "...")
run_steps(model, opt, 5, seed=2)

resumed = make_model(seed=99)
resumed.load_state_dict(saved_model)
opt2 = AdamW(resumed.parameters(), lr=1e-2)
opt2.load_state_dict(saved_opt)
run_steps(resumed, opt2, 5, seed=2)
print("bit-identical after resuming:",
      all(np.array_equal(a.data, b.data) for a, b in zip(model.parameters(), resumed.parameters())))"""),
]


if __name__ == "__main__":
    nbformat.write(build_notebook(CELLS), OUT)
    print("wrote", OUT)
