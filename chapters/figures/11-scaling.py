"""Draws chapters/figures/11-scaling.png: a *model* of data-parallel scaling to N machines,
not a measurement (chapter 11, "How far does it scale?").

    .venv/bin/python chapters/figures/11-scaling.py

With a fixed global batch, one step on N machines costs

    t(N) = t_compute / N + t_allreduce(N, S)

where t_compute is the step's arithmetic on one machine and S the gradient's bytes. The
all-reduce is costed with the alpha-beta model (latency alpha per message, bandwidth beta):

    naive (reduce to rank 0, broadcast back)   2 (N - 1) (alpha + S / beta)
    ring  (reduce-scatter, then all-gather)    2 (N - 1) alpha + 2 (N - 1) / N * S / beta

The inputs are the two CPU runs of the chapter: S from their parameter counts (float32), and
t_compute the fastest step time measured for them on this (shared, loaded) 2-core machine
with two ranks, less the time spent in collectives (chapter 11's table). Only the shape of
the curves is meant, not their exact values.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
MB = 1e6
# (label, gradient bytes, compute seconds per step on one 2-core machine)
MODELS = [("GPT shakespeare-char-cpu (0.81 M parameters)", 809_856 * 4, 0.17),
          ("LSTM ptb-small (4.65 M parameters)", 4_653_200 * 4, 0.17)]
# (label, bandwidth bytes/s, latency s)
NETWORKS = [("1 Gbit/s Ethernet", 117 * MB, 50e-6), ("10 Gbit/s Ethernet", 1170 * MB, 20e-6),
            ("100 Gbit/s InfiniBand", 12000 * MB, 2e-6)]
N = np.arange(1, 65)


def ring_allreduce(n, size, bandwidth, latency):
    return np.where(n > 1, 2 * (n - 1) * latency + 2 * (n - 1) / n * size / bandwidth, 0.0)


def naive_allreduce(n, size, bandwidth, latency):
    return 2 * (n - 1) * (latency + size / bandwidth)


def step_time(n, compute, size, network, allreduce=ring_allreduce):
    _, bandwidth, latency = network
    return compute / n + allreduce(n, size, bandwidth, latency)


def draw_step_time(ax, model):
    label, size, compute = model
    ax.loglog(N, compute / N, "k-", lw=2, label="compute per rank, t/N")
    for network, color in zip(NETWORKS, ("tab:red", "tab:orange", "tab:blue")):
        _, bandwidth, latency = network
        ax.loglog(N[1:], ring_allreduce(N, size, bandwidth, latency)[1:], "-", color=color,
                  label=f"ring all-reduce, {network[0]}")
        ax.loglog(N[1:], naive_allreduce(N, size, bandwidth, latency)[1:], ":", color=color,
                  label=f"naive all-reduce, {network[0]}")
    ax.set_title(f"Model: time per step, {label}", fontsize=9)
    ax.set_xlabel("machines N")
    ax.set_ylabel("seconds per step")
    ax.legend(fontsize=6.5)
    ax.grid(True, which="both", alpha=0.3)


def draw_speedup(ax):
    ax.loglog(N, N, "k--", lw=1, label="ideal, N")
    for model, style in zip(MODELS, ("-", "-.")):
        label, size, compute = model
        for network, color in zip(NETWORKS, ("tab:red", "tab:orange", "tab:blue")):
            speedup = compute / step_time(N, compute, size, network)
            ax.loglog(N, speedup, style, color=color,
                      label=f"{label.split(' (')[0]}, {network[0]}")
    ax.set_title("Model: speed-up t(1) / t(N), fixed global batch, ring all-reduce",
                 fontsize=9)
    ax.set_xlabel("machines N")
    ax.set_ylabel("speed-up")
    ax.legend(fontsize=6.5)
    ax.grid(True, which="both", alpha=0.3)


def main():
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    draw_step_time(axes[0], MODELS[0])
    draw_speedup(axes[1])
    fig.suptitle("A model of data-parallel scaling (alpha-beta cost model), not a measurement",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(HERE / "11-scaling.png", dpi=130)


if __name__ == "__main__":
    main()
