"""Draws the figures of chapter 04 (chapters/figures/04-*.png) with the tinylm optimizers.

    .venv/bin/python chapters/figures/04-figures.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinylm.nn import Parameter  # noqa: E402
from tinylm.optim import SGD, Adam, AdamW, step_decay, warmup_cosine  # noqa: E402

HERE = Path(__file__).resolve().parent


# -- two test functions with hand-written gradients ----------------------------------------
def quadratic(w):
    """f = (x^2 + 25 y^2) / 2: curvature 1 along x, 25 along y (condition number 25)."""
    x, y = w
    return 0.5 * (x ** 2 + 25 * y ** 2), np.array([x, 25 * y])


def rosenbrock(w):
    """f = (1 - x)^2 + 100 (y - x^2)^2, minimum at (1, 1) at the end of a curved valley."""
    x, y = w
    f = (1 - x) ** 2 + 100 * (y - x ** 2) ** 2
    return f, np.array([-2 * (1 - x) - 400 * x * (y - x ** 2), 200 * (y - x ** 2)])


def trajectory(fn, start, make_opt, steps):
    """Run an optimizer from ``start`` on ``fn``; return the visited points [steps+1, 2]."""
    w = Parameter(np.array(start, dtype=np.float64))
    opt = make_opt([w])
    path = [w.data.copy()]
    for _ in range(steps):
        opt.zero_grad()
        _, g = fn(w.data)
        w.grad += g
        opt.step()
        path.append(w.data.copy())
    return np.array(path)


def draw_panel(ax, fn, runs, box, levels, minimum, title):
    xs = np.linspace(*box[0], 300)
    ys = np.linspace(*box[1], 300)
    X, Y = np.meshgrid(xs, ys)
    Z, _ = fn(np.array([X, Y]))
    ax.contour(X, Y, Z, levels=levels, colors="0.8", linewidths=0.7)
    for label, (path, color) in runs.items():
        ax.plot(path[:, 0], path[:, 1], "-", color=color, lw=1.3, label=label)
        ax.plot(path[:, 0], path[:, 1], ".", color=color, ms=2)
    ax.plot(*minimum, "k*", ms=10)
    ax.set_xlim(*box[0])
    ax.set_ylim(*box[1])
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")


def trajectories_figure():
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    start, steps = (-4.5, 1.5), 40
    settings = {
        "GD, lr 0.075": (lambda p: SGD(p, lr=0.075), "C0"),
        "momentum 0.7, lr 0.04": (lambda p: SGD(p, lr=0.04, momentum=0.7), "C1"),
        "Nesterov 0.7, lr 0.04": (lambda p: SGD(p, lr=0.04, momentum=0.7, nesterov=True), "C2"),
        "Adam, lr 0.3": (lambda p: Adam(p, lr=0.3), "C3"),
    }
    draw_panel(axes[0], quadratic, run_all(quadratic, start, settings, steps),
               ((-5, 1.5), (-2, 2)), np.geomspace(0.05, 60, 12), (0, 0),
               r"$f=(x^2+25y^2)/2$, " f"{steps} steps from {start}")
    start, steps = (-1.5, 2.0), 1000
    settings = {
        "GD, lr 1e-3": (lambda p: SGD(p, lr=1e-3), "C0"),
        "momentum 0.9, lr 2e-4": (lambda p: SGD(p, lr=2e-4, momentum=0.9), "C1"),
        "Adam, lr 0.05": (lambda p: Adam(p, lr=0.05), "C3"),
    }
    draw_panel(axes[1], rosenbrock, run_all(rosenbrock, start, settings, steps),
               ((-2, 2), (-1, 3)), np.geomspace(0.5, 2000, 12), (1, 1),
               f"Rosenbrock, {steps} steps from {start}")
    fig.tight_layout()
    fig.savefig(HERE / "04-trajectories.png", dpi=100)
    plt.close(fig)


def run_all(fn, start, settings, steps):
    """{label: (path, color)}, the label extended with the final value of f."""
    runs = {}
    for label, (make_opt, color) in settings.items():
        path = trajectory(fn, start, make_opt, steps)
        runs[f"{label}: f={fn(path[-1])[0]:.1e}"] = (path, color)
    return runs


def bias_correction_figure():
    """Left: Adam's step size on a constant gradient, with and without bias correction.
    Right: the first moment estimate of a noisy gradient with mean 1."""
    b1, b2, lr, T = 0.9, 0.999, 1.0, 3000
    t = np.arange(1, T + 1)
    uncorrected = lr * (1 - b1 ** t) / np.sqrt(1 - b2 ** t)     # m_t / sqrt(v_t) for g = const
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax = axes[0]
    ax.semilogx(t, uncorrected, label=r"without correction: $m_t/\sqrt{v_t}$")
    ax.semilogx(t, np.ones(T), label=r"with correction: $\hat m_t/\sqrt{\hat v_t}$")
    ax.set_xlabel("step t")
    ax.set_ylabel("step length / lr  (constant gradient)")
    ax.set_title(r"$\beta_1=0.9,\ \beta_2=0.999$: early steps up to "
                 f"{uncorrected.max():.1f}x too long", fontsize=10)
    ax.legend(fontsize=8)
    rng = np.random.default_rng(0)
    g = 1.0 + 0.5 * rng.standard_normal(60)
    m, ms = 0.0, []
    for gt in g:
        m = b1 * m + (1 - b1) * gt
        ms.append(m)
    ms = np.array(ms)
    k = np.arange(1, len(g) + 1)
    ax = axes[1]
    ax.plot(k, g, ".", color="0.6", label="gradient samples, mean 1")
    ax.plot(k, ms, label=r"$m_t$ (biased towards 0)")
    ax.plot(k, ms / (1 - b1 ** k), label=r"$\hat m_t = m_t / (1-\beta_1^t)$")
    ax.axhline(1.0, color="k", lw=0.7)
    ax.set_xlabel("step t")
    ax.set_title("first-moment estimate", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "04-bias-correction.png", dpi=110)
    plt.close(fig)


def schedules_figure():
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    its = np.arange(0, 5500)
    lrs = [warmup_cosine(i, 1e-3, 100, 5000, 1e-4) for i in its]
    axes[0].plot(its, lrs)
    axes[0].set_title("warm-up + cosine (nanoGPT shakespeare-char:\n"
                      "lr 1e-3, warmup 100, decay to 1e-4 at 5000)", fontsize=10)
    axes[0].set_xlabel("iteration")
    axes[0].set_ylabel("learning rate")
    spe = 2323                                   # PTB: 929k tokens / (20 * 20) per step
    its = np.arange(0, 13 * spe)
    lrs = [step_decay(i, 1.0, 4 * spe, spe, 0.5) for i in its]
    axes[1].plot(its / spe, lrs)
    axes[1].set_title("step decay (Zaremba et al. PTB LSTM:\nlr 1, halved every epoch after 4)",
                      fontsize=10)
    axes[1].set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(HERE / "04-schedules.png", dpi=110)
    plt.close(fig)


def weight_decay_figure():
    """L2-in-Adam vs decoupled decay on two weights that receive pure noise as gradient (no
    signal), one loud (std 10) and one quiet (std 0.01). AdamW shrinks both at the same rate
    (1 - lr wd per step); Adam's L2 term is divided by sqrt(v_hat) like the rest of the
    gradient, so the loud weight is hardly decayed and the quiet one collapses."""
    scales = np.array([10.0, 0.01])
    steps, lr, wd = 10_000, 1e-3, 0.1
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for cls, color in [(Adam, "C3"), (AdamW, "C0")]:
        w = Parameter(np.ones(2))
        opt = cls([w], lr=lr, weight_decay=wd)
        noise = np.random.default_rng(1)
        hist = [w.data.copy()]
        for _ in range(steps):
            opt.zero_grad()
            w.grad += scales * noise.standard_normal(2)
            opt.step()
            hist.append(w.data.copy())
        hist = np.array(hist)
        for j, style in enumerate(("-", "--")):
            ax.plot(hist[:, j], style, color=color,
                    label=f"{cls.__name__}, gradient noise std {scales[j]:g}")
    ax.plot(np.arange(steps + 1), (1 - lr * wd) ** np.arange(steps + 1), ":", color="k",
            lw=0.8, label=r"$(1-\eta\lambda)^t$")
    ax.set_xlabel("step")
    ax.set_ylabel("weight (starts at 1)")
    ax.set_title(f"weight decay {wd}, lr {lr}: L2 in Adam vs decoupled (AdamW)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "04-weight-decay.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    trajectories_figure()
    bias_correction_figure()
    schedules_figure()
    weight_decay_figure()
    for png in sorted(HERE.glob("04-*.png")):
        print(png.name, png.stat().st_size // 1024, "KB")
