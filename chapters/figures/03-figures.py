"""Draws chapter 03's figure of the MLP language model against the n-grams.

    .venv/bin/python chapters/figures/03-figures.py mlp RUN [RUN ...]

Each RUN is the ``--out-dir`` of a ``tinylm train mlp`` run; its ``ckpt.json`` holds the
validation losses measured during training. The n-grams are counted here (a few seconds).

* 03-mlp-vs-ngram.png, left: validation loss against training step of each MLP run, with
  the 5-gram (the best of orders 1-5) and the 7-gram (the best of any order) as lines.
  Right: final validation loss against how many previous characters the model sees -- the
  MLP runs that share the others' width, dropout and steps, and the Kneser-Ney n-grams
  (an N-gram sees N - 1 characters). Every loss is ``evaluate_lm`` over the whole
  validation split in windows of 64, the code that scores every model of the book.

(The other figures of chapter 03 are drawn by its notebook, notebooks/03-neural-networks.ipynb.)
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tinylm.evaluate import evaluate_lm  # noqa: E402
from tinylm.models.ngram import NGramConfig, NGramLM  # noqa: E402
from tinylm.train.config import TrainConfig  # noqa: E402
from tinylm.train.presets import get_preset  # noqa: E402
from tinylm.train.setup import prepare_data  # noqa: E402

HERE = Path(__file__).resolve().parent
# Kneser-Ney discount per order: 0.9, except the 5-gram's best value 0.85 (chapter 03, sec. 10).
# Orders below 4 are off the scale (the 3-gram: 2.05).
DISCOUNT = {4: 0.9, 5: 0.85, 6: 0.9, 7: 0.9, 8: 0.9}


def ngram_losses():
    """{order: validation loss} of interpolated Kneser-Ney n-grams of orders 4..8, on the
    data and with the evaluation settings of ``tinylm train ngram --preset shakespeare-char-ngram``."""
    cfg = TrainConfig.from_dict(get_preset("shakespeare-char-ngram")["train"])
    data = prepare_data(cfg)
    largest = NGramLM(NGramConfig(data.tokenizer.vocab_size, order=max(DISCOUNT),
                                  smoothing="kneser_ney")).fit(data.train)
    return {order: evaluate_lm(largest.with_config(order=order, discount=discount), data.val,
                               batch_size=cfg.batch_size, block_size=cfg.block_size)["loss"]
            for order, discount in DISCOUNT.items()}


def read_run(run_dir):
    meta = json.loads((Path(run_dir) / "ckpt.json").read_text())
    evals = [e for e in meta["run"]["evals"] if e["iter"] > 0]
    config = meta["model_config"]
    label = f"MLP n={config['block_size']}, d={config['n_embd']}, H={config['n_hidden']}"
    return dict(label=label, config=config, steps=[e["iter"] for e in evals],
                val=[e["val_loss"] for e in evals], max_iters=meta["train_config"]["max_iters"])


def training_panel(ax, runs, ngram):
    """Validation loss against step for each run, the 5-gram and the 7-gram as lines."""
    for run in sorted(runs, key=lambda r: r["config"]["block_size"]):
        ax.plot(run["steps"], run["val"], marker=".", label=run["label"])
    for order, style in [(5, "--"), (7, ":")]:
        ax.axhline(ngram[order], color="k", linestyle=style,
                   label=f"{order}-gram Kneser-Ney ({ngram[order]:.4f})")
    ax.set(xlabel="training step", ylabel="validation loss (nats/char)", ylim=(1.5, 1.8),
           title="MLP LMs during training")
    ax.legend(fontsize=8)


def context_panel(ax, runs, ngram):
    """Final validation loss against characters of context: the n-grams, and the MLP runs
    that share the first run's width, dropout and number of steps."""
    ax.plot([order - 1 for order in ngram], list(ngram.values()), "ks--",
            label="n-gram (N - 1 chars)")
    first = runs[0]
    same = sorted((r for r in runs if r["max_iters"] == first["max_iters"] and all(
        r["config"][k] == first["config"][k] for k in ("n_embd", "n_hidden", "dropout"))),
        key=lambda r: r["config"]["block_size"])
    ax.plot([r["config"]["block_size"] for r in same], [r["val"][-1] for r in same], "o-",
            color="tab:blue", label=f"MLP d={first['config']['n_embd']}, "
                                    f"H={first['config']['n_hidden']}, {first['max_iters']} steps")
    ax.set(xlabel="characters of context", ylabel="final validation loss (nats/char)",
           xlim=(2.5, 8.5), ylim=(1.5, 1.8), title="How much context helps")
    ax.legend(fontsize=8)


def mlp_figure(run_dirs):
    runs = [read_run(r) for r in run_dirs]
    ngram = ngram_losses()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    training_panel(left, runs, ngram)
    context_panel(right, runs, ngram)
    fig.tight_layout()
    fig.savefig(HERE / "03-mlp-vs-ngram.png", dpi=100)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "mlp":
        sys.exit(__doc__)
    mlp_figure(sys.argv[2:])
