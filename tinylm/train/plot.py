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
    return _save(fig, path)


def plot_attention(weights, source_tokens, output_tokens, path, title: str = "attention") -> Path:
    """A heatmap of attention weights [T, S]: row t (an output token) shows how much the
    decoder looked at each source token (column s) while predicting it; rows sum to 1."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T, S = weights.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * S + 2), max(3.0, 0.4 * T + 1.5)))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(S), source_tokens, rotation=60, ha="right")
    ax.set_yticks(range(T), output_tokens)
    ax.set_xlabel("source token (as the encoder read it)")
    ax.set_ylabel("output token")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def _save(fig, path) -> Path:
    """Write ``fig`` to ``path`` (its folder created) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
