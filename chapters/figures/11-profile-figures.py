"""Draws the measured figures of chapter 11's first half into chapters/figures/.

    nice .venv/bin/python chapters/figures/11-profile-figures.py [--threads 1] [--steps 5]
        [--kernels-json kernels.json]

11-step-profile.png   where the time of one GPT training step goes (forward, backward and
                      AdamW), split by part of the model, for the CPU preset's shape with the
                      numba kernels, the same with TINYLM_KERNELS=reference, and the 6-layer
                      shakespeare-char shape (width 384, block 256) at batch 4. Measured here
                      with the small profiler below: each part's forward and backward are
                      wrapped in a timer of the process's CPU time (on a machine other jobs
                      share, wall time would count their turns too), and "other" is the rest
                      of the step (residual additions, Python and NumPy glue).
11-kernel-speedups.png  each kernel's speed-up over its plain NumPy reference and its speed
                      against PyTorch, from the JSON of ``tinylm bench kernels --json``
                      (``--kernels-json``); without it, the script runs
                      ``tinylm bench kernels --threads 1 --clock cpu --repeat 3 --budget 1
                      --json`` itself (a minute or two).

The step profile prints its table too, so the chapter can quote it with this command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
PARTS = ["attention projections (QKV, output)", "attention softmax(QKᵀ/√d)V",
         "MLP matrix products", "GELU", "layer norm", "tied head x·Wᵀ",
         "embeddings (token + position)", "cross-entropy", "AdamW", "other (glue)"]


# -- a small profiler: wrap the forward and backward of each part in a timer ----------------

CLOCK = time.process_time   # CPU seconds of this process (all its threads): on a machine that
                            # other jobs share, wall time would also count their turns


class StepProfiler:
    """Accumulates seconds per part while installed; ``restore()`` removes every wrapper."""

    def __init__(self):
        self.seconds = {part: 0.0 for part in PARTS}
        self._undo = []

    def wrap(self, owner, name: str, part: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = CLOCK()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[part] += CLOCK() - start

        self._undo.append((owner, name, original, name in vars(owner)))
        object.__setattr__(owner, name, timed)

    def wrap_pair(self, owner, stem: str, part: str) -> None:
        for suffix in ("forward", "backward"):
            self.wrap(owner, f"{stem}{suffix}", part)

    def restore(self) -> None:
        for owner, name, original, was_own in reversed(self._undo):
            if was_own:                      # a module's function: put it back
                object.__setattr__(owner, name, original)
            else:                            # an instance's method: drop the wrapper
                object.__delattr__(owner, name)
        self._undo.clear()


def install(profiler: StepProfiler, model) -> None:
    """Wrap the parts of a GPT: instance methods of its modules, and the functional pairs at
    the places the model looks them up."""
    import tinylm.functional.activations as activations
    import tinylm.models.base as base
    import tinylm.models.gpt as gpt
    import tinylm.nn.attention as attention

    for block in model.h:
        for linear in (block.attn.c_attn, block.attn.c_proj):
            profiler.wrap_pair(linear, "", PARTS[0])
        for linear in (block.mlp.c_fc, block.mlp.c_proj):
            profiler.wrap_pair(linear, "", PARTS[2])
        for norm in (block.ln_1, block.ln_2):
            profiler.wrap_pair(norm, "", PARTS[4])
    profiler.wrap_pair(model.ln_f, "", PARTS[4])
    profiler.wrap_pair(attention, "attention_heads_", PARTS[1])
    profiler.wrap_pair(activations, "gelu_", PARTS[3])
    profiler.wrap_pair(gpt, "linear_", PARTS[5])            # only the tied head calls it there
    profiler.wrap_pair(gpt, "embedding_", PARTS[6])
    profiler.wrap_pair(gpt, "learned_positional_", PARTS[6])
    profiler.wrap_pair(base, "cross_entropy_", PARTS[7])


def profile_step(layers, heads, embd, block, batch, steps, kernels="auto", vocab=65):
    """Milliseconds per training step by part (best of ``steps`` timed steps for the total,
    the parts averaged over them and scaled to it)."""
    from tinylm.models.gpt import GPT, GPTConfig
    from tinylm.optim import AdamW, decay_groups

    saved = os.environ.get("TINYLM_KERNELS")
    os.environ["TINYLM_KERNELS"] = kernels
    try:
        model = GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=layers,
                              n_head=heads, n_embd=embd, dropout=0.0))
        opt = AdamW(decay_groups(model.parameters(), 0.1), lr=1e-3, betas=(0.9, 0.99))
        rng = np.random.default_rng(0)
        idx = rng.integers(0, vocab, size=(batch, block))
        targets = rng.integers(0, vocab, size=(batch, block))
        profiler = StepProfiler()

        def step():
            model.forward(idx, targets)
            model.backward()
            start = CLOCK()
            opt.step()
            opt.zero_grad()
            profiler.seconds["AdamW"] += CLOCK() - start

        step()                                   # untimed: compilation, allocations
        install(profiler, model)
        profiler.seconds = {part: 0.0 for part in PARTS}
        totals = []
        for _ in range(steps):
            start = CLOCK()
            step()
            totals.append(CLOCK() - start)
        profiler.restore()
    finally:
        if saved is None:
            os.environ.pop("TINYLM_KERNELS")
        else:
            os.environ["TINYLM_KERNELS"] = saved
    mean_total = sum(totals) / steps
    parts = {p: s / steps for p, s in profiler.seconds.items()}
    parts["other (glue)"] = max(0.0, mean_total - sum(parts.values()))
    scale = min(totals) / mean_total             # best step, split in the mean's shares
    return {p: 1e3 * s * scale for p, s in parts.items()}, 1e3 * min(totals)


def step_profile(threads: int, steps: int):
    runs = [("L4 H4 D128 T64 B12\nnumba kernels", dict(layers=4, heads=4, embd=128, block=64,
                                                     batch=12)),
            ("L4 H4 D128 T64 B12\nreference (NumPy)", dict(layers=4, heads=4, embd=128,
                                                         block=64, batch=12,
                                                         kernels="reference")),
            ("L6 H6 D384 T256 B4\nnumba kernels", dict(layers=6, heads=6, embd=384,
                                                     block=256, batch=4))]
    results = []
    for label, kwargs in runs:
        n = steps if kwargs["embd"] == 128 else max(2, steps // 2)
        parts, best = profile_step(steps=n, **kwargs)
        results.append((label, parts, best))
        print(f"\n{label.replace(chr(10), ', ')}: best step {best:.1f} ms ({threads} thread"
              f"{'s' if threads > 1 else ''})")
        for part in PARTS:
            print(f"  {part:<38} {parts[part]:8.2f} ms  {100 * parts[part] / best:5.1f} %")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    colors = plt.cm.tab10(np.arange(len(PARTS)))
    for ax, group in ((axes[0], results[:2]), (axes[1], results[2:])):
        for i, (label, parts, best) in enumerate(group):
            left = 0.0
            for part, color in zip(PARTS, colors):
                ax.barh(i, parts[part], left=left, color=color,
                        label=part if ax is axes[0] and i == 0 else None)
                left += parts[part]
            ax.text(left, i, f" {best:.0f} ms", va="center", fontsize=9)
        ax.set_yticks(range(len(group)), [g[0] for g in group])
        ax.set_xlabel("CPU milliseconds per training step (forward + backward + AdamW)"
                      if ax is axes[0] else "CPU ms per step")
        ax.invert_yaxis()
        ax.set_xlim(0, 1.18 * max(g[2] for g in group))
    fig.legend(loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle(f"Where a GPT training step's time goes (float32, {threads} thread"
                 f"{'s' if threads > 1 else ''}, a shared 2-core machine)", fontsize=10)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(HERE / "11-step-profile.png", dpi=90)
    return results


def kernel_speedups(kernels_json: Path | None):
    if kernels_json is None:
        command = [sys.executable, "-m", "tinylm.cli", "bench", "kernels", "--threads", "1",
                   "--clock", "cpu", "--repeat", "3", "--budget", "1", "--json"]
        data = json.loads(subprocess.run(command, check=True, capture_output=True,
                                         text=True).stdout)
    else:
        data = json.loads(kernels_json.read_text())
    rows = {k: v for k, v in data.items() if isinstance(v, dict) and "numba_ms" in v}
    names = list(rows)
    y = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.42 * len(names) + 1.4), sharey=True)
    axes[0].barh(y, [rows[n]["speedup_vs_reference"] for n in names], color="C0")
    axes[0].set_xscale("log")
    axes[0].axvline(1, color="k", lw=0.8)
    axes[0].set_xlabel("speed-up of the kernel over the NumPy reference (log scale)")
    if all("numba_vs_torch" in rows[n] for n in names):
        axes[1].barh(y, [rows[n]["numba_vs_torch"] for n in names], color="C1")
        axes[1].axvline(1, color="k", lw=0.8)
        axes[1].set_xlabel("tinylm's kernel speed / PyTorch's (> 1: tinylm faster)")
    axes[0].set_yticks(y, names, fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle(f"tinylm bench kernels ({data.get('dtype')}, clock: {data.get('clock')}, "
                 f"{data.get('machine', {}).get('numba_threads', '?')} thread)", fontsize=10)
    fig.tight_layout()
    fig.savefig(HERE / "11-kernel-speedups.png", dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--kernels-json", type=Path, default=None)
    parser.add_argument("--only", choices=("profile", "kernels"), default=None)
    args = parser.parse_args()
    threads = str(args.threads)
    if os.environ.get("NUMBA_NUM_THREADS") != threads or \
            os.environ.get("OPENBLAS_NUM_THREADS") != threads:
        # thread counts must be set before NumPy and numba load: start again with them set
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
                   OMP_NUM_THREADS=threads)
        sys.exit(subprocess.call([sys.executable, *sys.argv], env=env))
    import tinylm  # noqa: F401  (selects numba's workqueue threading layer first)
    if args.only in (None, "profile"):
        step_profile(args.threads, args.steps)
    if args.only in (None, "kernels"):
        kernel_speedups(args.kernels_json)


if __name__ == "__main__":
    main()
