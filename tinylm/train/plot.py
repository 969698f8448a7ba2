"""The loss curve of a run, saved as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path


def smooth(values, window: int):
    """Trailing moving average, so the noisy per-batch losses become readable."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_history(run, path, title: str = "training") -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if run.train_losses:
        steps, losses = zip(*run.train_losses)
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, lw=0.8, label="train (batch)")
        ax.plot(steps, smooth(list(losses), 50), color="tab:blue", label="train (moving avg)")
    if run.evals:
        ax.plot([e["iter"] for e in run.evals], [e["val_loss"] for e in run.evals], "o-",
                color="tab:orange", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
