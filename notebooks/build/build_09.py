"""Writes notebooks/09-pretraining-and-fine-tuning.ipynb (without outputs) from the cells below.

    .venv/bin/python notebooks/build/build_09.py
"""

from pathlib import Path

import nbformat
from notebook_cells import build_notebook

OUT = Path(__file__).resolve().parents[1] / "09-pretraining-and-fine-tuning.ipynb"

CELLS = [
    ("md", r"""# 09 · Pre-training（预训练） and fine-tuning（微调）

Companion to `chapters/09-pretraining-and-fine-tuning.md`. Everything here is tinylm's own
code: the masking rule in `tinylm/data/masking.py`, BERT in `tinylm/models/bert.py`, pooling
in `tinylm/functional/pooling.py`, LoRA in `tinylm/nn/lora.py`, the runs in
`tinylm/train/pretrain_run.py` and `tinylm/train/finetune_run.py`, the baseline in
`tinylm/classify/baseline.py`.

1. The 15 % / 80-10-10 rule, counted
2. A masked LM fills in a blank: BERT's logits at every position
3. Post-LN and pre-LN: where the gradient goes at initialisation
4. LoRA: parameters, the zero start, the merge
5. The baseline to beat: TF-IDF + logistic regression on SMS spam
6. Pre-train a small BERT, fine-tune it, and compare with the same model from random weights
7. A pre-trained run, if one is on disk

Set `TINYLM_FAST=1` to run everything with tiny settings (the test suite does)."""),
    ("code", r"""import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tinylm.classify.baseline import run_tfidf_baseline
from tinylm.data.masking import mask_tokens
from tinylm.models.bert import BERT, BERTConfig
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.nn.lora import apply_lora, merge_lora
from tinylm.train.finetune_run import finetune, finetune_settings
from tinylm.train.pretrain_run import pretrain_settings, train_pretrain

FAST = os.environ.get("TINYLM_FAST") == "1"
print("fast mode" if FAST else "full mode")"""),
    ("md", r"""## 1. The 15 % / 80-10-10 rule

Each row of 50 ordinary tokens gets round(0.15 * 50) = 8 targets; of those, about 80 %
become [MASK] (id 4), 10 % a random ordinary token, 10 % stay as they are. [CLS] and [SEP]
(the first and last position) are never chosen."""),
    ("code", r"""rng = np.random.default_rng(0)
V, first = 40, 5
ids = rng.integers(first, V, size=(2000, 52))
maskable = np.ones_like(ids, dtype=bool)
maskable[:, [0, -1]] = False
batch = mask_tokens(ids, maskable, V, mask_id=4, first_normal_id=first, rng=rng)
chosen = batch.targets != -100
seen = batch.inputs[chosen]
print("targets per row:", set(chosen.sum(axis=1)))
print(f"[MASK] {np.mean(seen == 4):.3f}   unchanged {np.mean(seen == ids[chosen]):.3f}   "
      f"random {np.mean((seen != 4) & (seen != ids[chosen])):.3f}")
print("a special position chosen:", chosen[:, [0, -1]].any())"""),
    ("md", r"""## 2. A masked LM fills in a blank

Without targets, `BERT.forward(ids)` returns the logits of every position, [B, T, V]; with
targets, only those of the masked positions, [M, V] (the head runs where there is something
to predict). An untrained model spreads its probability evenly, about 1/V per word."""),
    ("code", r"""bert = BERT(BERTConfig(vocab_size=V, block_size=16, n_layer=2, n_head=2, n_embd=32))
row = rng.integers(first, V, size=(1, 12))
row[0, 5] = 4                                          # a [MASK] at position 5
logits, _ = bert.eval().forward(row)
p = np.exp(logits[0, 5] - logits[0, 5].max())
p /= p.sum()
print("all positions:", logits.shape, " largest probability at the blank:", round(float(p.max()), 3),
      " 1/V =", round(1 / V, 3))
try:
    bert.start_decoding(row)
except TypeError as error:
    print("generation:", str(error)[:90], "...")"""),
    ("md", r"""## 3. Post-LN and pre-LN at initialisation

The gradient of the same loss, per block, in a post-LN (BERT, the paper) and a pre-LN
(GPT-2) encoder of 6 blocks. In post-LN every path to an early block crosses the layer
norms of all the blocks above it; pre-LN has an identity path."""),
    ("code", r"""def block_gradient_norms(norm_first):
    model = BERT(BERTConfig(vocab_size=V, block_size=16, n_layer=6, n_head=2, n_embd=32,
                            dropout=0.0, norm_first=norm_first, seed=1))
    ids = rng.integers(first, V, size=(8, 16))
    b = mask_tokens(ids, np.ones_like(ids, dtype=bool), V, 4, first, np.random.default_rng(1))
    model.forward(b.inputs, b.targets)
    model.backward()
    return [np.sqrt(sum(float((p.grad ** 2).sum()) for p in block.parameters()))
            for block in model.h]

for norm_first, label in ((False, "post-LN"), (True, "pre-LN")):
    plt.plot(range(1, 7), block_gradient_norms(norm_first), "o-", label=label)
plt.xlabel("block"); plt.ylabel("gradient norm of its parameters"); plt.legend(); plt.show()"""),
    ("md", r"""## 4. LoRA

Adapters of rank 4 on every attention and MLP projection of a small GPT: B = 0, so the
adapted model starts as the base model exactly; after a few steps it has changed, and the
merge W' = W + (alpha / r) A B gives a plain model with the same logits."""),
    ("code", r"""from tinylm.optim import AdamW

gpt = GPT(GPTConfig(vocab_size=V, block_size=16, n_layer=2, n_head=2, n_embd=32)).to(np.float64)
x = rng.integers(0, V, size=(4, 16))
before, _ = gpt.forward(x)
report = apply_lora(gpt, rank=4, alpha=8)
print(report)
print("starts as the base model:", np.array_equal(gpt.forward(x)[0], before))
opt = AdamW(gpt.trainable_parameters(), lr=1e-2)
for _ in range(5):
    gpt.forward(x, x)
    gpt.backward()
    opt.step()
    opt.zero_grad()
adapted, _ = gpt.forward(x)
merge_lora(gpt)
merged, _ = gpt.forward(x)
print("changed by training:", not np.allclose(adapted, before),
      "  merged = adapted:", np.abs(merged - adapted).max())"""),
    ("md", r"""## 5. The baseline to beat

TF-IDF features (word 1–2-grams, or character 2–5-grams) and L2-regularised logistic
regression, C chosen on the validation part, on the balanced SMS split (747 spam + 747 ham,
70/10/20)."""),
    ("code", r"""for features in ("word", "char"):
    result = run_tfidf_baseline("sms-spam", "balanced", features)
    print(f"{features:>5}: test accuracy {result['accuracy']:.4f}, C = {result['C']}, "
          f"confusion {result['confusion_matrix']}")"""),
    ("md", r"""## 6. Pre-train, then fine-tune

A small BERT pre-trained for a few hundred steps (a handful in fast mode) on *The Time
Machine* and Tiny Shakespeare, then fine-tuned on 30 % of the SMS training labels, against
the same architecture from random weights with the same fine-tuning. A few hundred steps
teach little; the chapter's results use `tinylm pretrain bert --preset bert-small`."""),
    ("code", r"""run = Path("runs/notebook-09-bert")
pretrain = pretrain_settings({
    "family": "bert", "corpora": "timemachine,tinyshakespeare", "vocab_size": 4096,
    "block_size": 32, "batch_size": 32, "max_steps": 4 if FAST else 400,
    "eval_interval": 2 if FAST else 100, "warmup_steps": 2 if FAST else 50, "lr": 1e-3,
    "out_dir": str(run), "progress": False})
history = train_pretrain(pretrain, {"n_layer": 2, "n_head": 2, "n_embd": 64, "dropout": 0.1})
print("validation MLM loss by step:", [(e["iter"], round(e["val_loss"], 3)) for e in history.evals])

accuracies = {}
for init in ("pretrained", "random"):
    settings = finetune_settings({"task": "sms-spam", "label_fraction": 0.3, "init": init,
                                  "epochs": 1 if FAST else 6, "lr": 1e-3, "progress": False,
                                  "out_dir": str(run.parent / f"notebook-09-{init}")})
    accuracies[init] = finetune(settings, run, log=lambda line: None)["test"]["accuracy"]
print(accuracies)"""),
    ("md", r"""## 7. A pre-trained run on disk

`tinylm pretrain bert --preset bert-small` writes `runs/bert-small`. If it exists, its
validation curve, and a fine-tuning of it on the whole balanced SMS split."""),
    ("code", r"""run = Path("runs/bert-small")
if (run / "ckpt.json").exists() and not FAST:
    import json
    evals = json.loads((run / "ckpt.json").read_text())["run"]["evals"]
    plt.plot([e["iter"] for e in evals], [e["val_loss"] for e in evals], "o-")
    plt.xlabel("step"); plt.ylabel("validation MLM loss"); plt.show()
    settings = finetune_settings({"task": "sms-spam", "lr": 1e-4, "epochs": 4, "progress": False,
                                  "out_dir": "runs/notebook-09-sms"})
    print(finetune(settings, run, log=print)["test"]["accuracy"])
else:
    print("no runs/bert-small (or fast mode): run `tinylm pretrain bert --preset bert-small`")"""),
]

if __name__ == "__main__":
    nbformat.write(build_notebook(CELLS), OUT)
    print(f"wrote {OUT}")
