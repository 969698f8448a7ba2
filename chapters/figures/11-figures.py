"""Draws the pruning and distillation figures of chapter 11 from finished runs.

    .venv/bin/python chapters/figures/11-figures.py [--runs runs]

11-pruning.png: validation loss of the pruned shakespeare-char-cpu GPT against sparsity,
right after pruning and after 200 recovery steps, read from the runs that

    tinylm prune RUNS/gpt-cpu --sparsity S [--structured heads|neurons] --finetune 200 \\
        --out RUNS/prune/KIND-S

wrote (KIND = magnitude, heads or neurons; every RUNS/prune/*/ckpt.json is read, its
``provenance.pruning`` holds the numbers). 11-distillation.png: validation loss against
steps of every run under RUNS/distill/: the student from scratch, ``tinylm train gpt --preset
shakespeare-char-student --out-dir RUNS/distill/scratch`` (and ``--max-iters 4400
--lr-decay-iters 4400 --out-dir RUNS/distill/scratch-4400``, about the distilled run's
compute), and distilled, ``tinylm distill RUNS/gpt-cpu --preset shakespeare-char-student
--temperature T --alpha 0.5 --out-dir RUNS/distill/distilled[-TT]``, with the teacher's loss.
11-quantisation.png: validation loss against the weights' bytes for every setting of
``tinylm bench quantize --run RUN [--settings ...] --json > RUNS/quant/NAME.json`` (the GPT
above as gpt-cpu-eval.json, the PTB LSTM as ptb-small-epoch3-bench.json).
Each figure's table is printed too; a run that is absent is skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter  # noqa: E402

HERE = Path(__file__).resolve().parent
STYLE = {"magnitude": ("tab:blue", "o"), "heads": ("tab:red", "s"),
         "neurons": ("tab:green", "^")}


def _meta(run: Path) -> dict:
    return json.loads((run / "ckpt.json").read_text())


def pruning_records(folder: Path) -> list:
    """provenance.pruning of every pruned run under ``folder``, by kind and sparsity."""
    records = [_meta(p.parent)["provenance"]["pruning"] for p in folder.glob("*/ckpt.json")]
    return sorted(records, key=lambda r: (r["kind"], r["sparsity"]))


def _curve(ax, records, kind, x_key, recovered: bool, label: str) -> None:
    rows = [r for r in records if r["kind"] == kind]
    colour, marker = STYLE[kind]
    key = "val_loss_finetuned" if recovered else "val_loss_pruned"
    ax.plot([r[x_key] for r in rows], [r[key] for r in rows], marker=marker, color=colour,
            linestyle="-" if recovered else "--", mfc=colour if recovered else "white",
            label=label)


def pruning_figure(records: list) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    steps = records[0]["finetune_steps"]
    _curve(left, records, "magnitude", "sparsity", False, "pruned")
    _curve(left, records, "magnitude", "sparsity", True, f"+ {steps} recovery steps")
    left.set_xlabel("sparsity (fraction of block weights removed)")
    left.set_title("global magnitude pruning")
    for kind in STYLE:
        _curve(right, records, kind, "weight_sparsity", False, f"{kind}, pruned")
        _curve(right, records, kind, "weight_sparsity", True, f"{kind}, recovered")
    right.set_xlabel("fraction of block weights that are zero")
    right.set_title("unstructured vs heads vs MLP neurons")
    source = records[0]["val_loss_source"]
    for ax in (left, right):
        ax.axhline(source, color="grey", linewidth=0.8, label="unpruned")
        ax.set_ylabel("validation loss (nats/char)")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.1f"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.1f"))
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("pruning the shakespeare-char-cpu GPT (0.81M parameters)")
    fig.savefig(HERE / "11-pruning.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {HERE / '11-pruning.png'}")


def print_pruning_table(records: list) -> None:
    print(f"{'kind':<10}{'sparsity':>9}{'zero w':>8}{'pruned':>9}{'recovered':>10}")
    for r in records:
        recovered = r["val_loss_finetuned"]
        print(f"{r['kind']:<10}{r['sparsity']:>9.2f}{r['weight_sparsity']:>8.3f}"
              f"{r['val_loss_pruned']:>9.4f}{'' if recovered is None else f'{recovered:>10.4f}'}")


def _label(meta: dict) -> str:
    """'from scratch, 2000 steps' or 'distilled, T=2, alpha=0.5'."""
    settings = meta["provenance"].get("distillation")
    if settings is None:
        return f"from scratch, {meta['run']['iteration']} steps"
    return f"distilled, T={settings['temperature']:g}, alpha={settings['alpha']:g}"


def distillation_figure(runs: list, teacher_loss: float) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for meta, marker in zip(runs, "osD^vx+"):
        evals = meta["run"]["evals"]
        ax.plot([e["iter"] for e in evals], [e["val_loss"] for e in evals], marker=marker,
                ms=4, mfc="none", label=_label(meta))
    ax.axhline(teacher_loss, color="grey", linewidth=0.8, label="teacher (4 layers, width 128)")
    ax.set_title("shakespeare-char-student (2 layers, width 64, 0.11M parameters)", fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats/char)")
    ax.set_ylim(top=2.8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(HERE / "11-distillation.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {HERE / '11-distillation.png'}")
    for meta in runs:
        final = meta["run"]["evals"][-1]
        print(f"{_label(meta):<32} val loss {final['val_loss']:.4f} after {final['iter']} "
              f"steps, {meta['run']['elapsed_s']:.0f} s of training")


QUANT_FILES = {"GPT shakespeare-char-cpu": "gpt-cpu-eval.json",
               "LSTM ptb-small (epoch 3)": "ptb-small-epoch3-bench.json"}


def _settings(bench: dict) -> list:
    """[(setting, weight bytes, val loss)] of one `tinylm bench quantize --json` output."""
    names = [k[:-len("_val_loss")] for k in bench if k.endswith("_val_loss")]
    return [(n, bench[f"{n}_weight_bytes"], bench[f"{n}_val_loss"]) for n in names]


def quantisation_figure(folder: Path) -> None:
    found = {model: json.loads((folder / name).read_text())
             for model, name in QUANT_FILES.items() if (folder / name).exists()}
    if not found:
        return
    fig, axes = plt.subplots(1, len(found), figsize=(5.2 * len(found), 3.8), squeeze=False)
    for ax, (model, bench) in zip(axes[0], found.items()):
        rows = _settings(bench)
        for name, size, loss in rows:
            print(f"{model:28s} {name:10s} {size:>12,} bytes  val loss {loss:.5f}")
        ax.plot([r[1] / 1e6 for r in rows], [r[2] for r in rows], "o", color="tab:blue")
        for k, (name, size, loss) in enumerate(rows):       # alternate sides: no overlaps
            ax.annotate(name, (size / 1e6, loss), textcoords="offset points", fontsize=8,
                        xytext=(6, 4) if k % 2 == 0 else (6, -11))
        ax.set_xscale("log")
        ax.set_xlabel("weights (MB, log scale)")
        ax.set_ylabel("validation loss (nats/token)")
        ax.set_title(model, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle("weight-only post-training quantisation: size against loss")
    fig.tight_layout()
    fig.savefig(HERE / "11-quantisation.png", dpi=130)
    print("wrote", HERE / "11-quantisation.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default="runs")
    runs = Path(parser.parse_args().runs)
    quantisation_figure(runs / "quant")
    records = pruning_records(runs / "prune")
    if records:
        pruning_figure(records)
        print_pruning_table(records)
    students = [_meta(p.parent) for p in sorted((runs / "distill").glob("*/ckpt.json"))]
    if students and (runs / "gpt-cpu" / "ckpt.json").exists():
        teacher_loss = _meta(runs / "gpt-cpu")["run"]["evals"][-1]["val_loss"]
        distillation_figure(students, teacher_loss)


if __name__ == "__main__":
    main()
