"""Draws the figures of chapter 09 into chapters/figures/ from finished runs.

    .venv/bin/python chapters/figures/09-figures.py [--runs runs]

09-pretraining.png: validation MLM loss and masked-token accuracy of ``tinylm pretrain bert
--preset bert-small`` (RUNS/bert-small) against its steps; 09-label-efficiency.png: the
label-efficiency curve of ``tinylm finetune RUNS/bert-small --task sms-spam --label-curve
...`` (RUNS/curve-sms/label-curve.json); 09-label-efficiency-gpt-sms.png and
09-label-efficiency-gpt-polarity.png: the same experiment with the GPT RUNS/gpt-small on
SMS and on fold 0 of polarity (RUNS/curve-sms-gpt, RUNS/curve-pol-gpt). A run that is
absent is skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tinylm.train.label_curve import plot_label_curve  # noqa: E402

HERE = Path(__file__).resolve().parent


def pretraining_figure(run: Path) -> None:
    evals = json.loads((run / "ckpt.json").read_text())["run"]["evals"]
    steps = [e["iter"] for e in evals]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(steps, [e["val_loss"] for e in evals], "o-")
    left.set_xlabel("step")
    left.set_ylabel("validation MLM loss (nats)")
    right.plot(steps, [100 * e["val_accuracy"] for e in evals], "o-", color="tab:green")
    right.set_xlabel("step")
    right.set_ylabel("masked tokens predicted (%)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle("bert-small pre-training")
    fig.savefig(HERE / "09-pretraining.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {HERE / '09-pretraining.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default="runs")
    runs = Path(parser.parse_args().runs)
    if (runs / "bert-small" / "ckpt.json").exists():
        pretraining_figure(runs / "bert-small")
    curves = {"curve-sms": ("09-label-efficiency.png",
                            "SMS spam: pre-trained vs random bert-small, full fine-tuning"),
              "curve-sms-gpt": ("09-label-efficiency-gpt-sms.png",
                                "SMS spam: pre-trained vs random gpt-small, full fine-tuning"),
              "curve-pol-gpt": ("09-label-efficiency-gpt-polarity.png",
                                "polarity (fold 0): pre-trained vs random gpt-small")}
    for folder, (name, title) in curves.items():
        curve = runs / folder / "label-curve.json"
        if curve.exists():
            path = plot_label_curve(json.loads(curve.read_text()), HERE / name, title=title)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
