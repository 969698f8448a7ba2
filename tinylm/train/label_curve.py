"""The label-efficiency curve: test accuracy against the number of labelled training
examples, for the pre-trained backbone and for the same architecture from random weights,
fine-tuned the same way (chapter 09).

    curve = label_curve(settings, "runs/bert-small", fractions=(0.01, 0.1, 1.0), seeds=(0, 1))
    plot_label_curve(curve, "label-curve.png")

Each point is one ``finetune`` run (tinylm/train/finetune_run.py) with ``label_fraction`` f
and ``seed`` s: a stratified subset of the training split drawn by s (so the seeds differ in
which examples they label, and in the head's initial weights and the batch order), with
validation and test the whole of their splits. The pre-trained and the random model see
the same subset for a given (f, s). What pre-training buys shows as the horizontal distance
between the two curves: how many more labels the random model needs for the same accuracy.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy

from tinylm.train.finetune_run import finetune

INITS = ("pretrained", "random")


def label_curve(settings, pretrained, fractions, seeds, log=print) -> dict:
    """{"fractions", "seeds", "train_examples": [per fraction], "accuracy": {init: [[per
    seed] per fraction]}, "settings"}; every run's checkpoint under OUT_DIR/f<f>-s<s>-<init>."""
    if not fractions or not seeds:
        raise ValueError("label_curve: give at least one label fraction and one seed.")
    accuracy = {init: [] for init in INITS}
    sizes = []
    for fraction in fractions:
        for init in INITS:
            row = []
            for seed in seeds:
                out_dir = Path(settings.out_dir) / f"f{fraction:g}-s{seed}-{init}"
                run = dataclasses.replace(settings, label_fraction=fraction, seed=seed,
                                          init=init, out_dir=str(out_dir), progress=False)
                result = finetune(run, pretrained, log=lambda line: None)
                row.append(result["test"]["accuracy"])
                log(f"labels {fraction:g} ({result['train_examples']}), {init}, seed {seed}: "
                    f"test accuracy {row[-1]:.4f}")
            accuracy[init].append(row)
        sizes.append(result["train_examples"])
    curve = {"fractions": list(fractions), "seeds": list(seeds), "train_examples": sizes,
             "accuracy": accuracy, "settings": dataclasses.asdict(settings)}
    Path(settings.out_dir).mkdir(parents=True, exist_ok=True)
    (Path(settings.out_dir) / "label-curve.json").write_text(json.dumps(curve, indent=1))
    return curve


def plot_label_curve(curve: dict, path, title: str = "") -> Path:
    """Mean test accuracy (and the range over seeds) against labelled examples, log scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    n = curve["train_examples"]
    for init, color in zip(INITS, ("tab:blue", "tab:gray")):
        acc = numpy.array(curve["accuracy"][init]) * 100          # [fractions, seeds]
        ax.plot(n, acc.mean(axis=1), "o-", color=color, label=f"{init} backbone")
        ax.fill_between(n, acc.min(axis=1), acc.max(axis=1), color=color, alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "label efficiency")
    ax.grid(alpha=0.3)
    ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
