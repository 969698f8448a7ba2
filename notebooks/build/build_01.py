"""Writes notebooks/01-language-models.ipynb (without outputs) from the cells below.

    .venv/bin/python notebooks/build/build_01.py

Run in full (``TINYLM_FAST`` unset) the notebook also redraws
chapters/figures/01-ngram-val-loss.png and prints the table of chapter 01.
"""

from pathlib import Path

import nbformat
from notebook_cells import build_notebook

OUT = Path(__file__).resolve().parents[1] / "01-language-models.ipynb"

CELLS = [
    ("md", r"""# 01 · Language models（语言模型）, n-grams and perplexity（困惑度）

Companion to `chapters/01-language-models.md`. The model is `tinylm/models/ngram.py`
(`NGramLM`: counting, add-k and interpolated Kneser-Ney); the data comes through
`tinylm/data/` (dataset resolver, character tokenizer, train/validation split).

1. Tiny Shakespeare as a stream of character ids
2. Counting n-grams, and how many validation n-grams were never seen in training
3. Smoothing: add-k against Kneser-Ney, orders 1 to 8, validation loss and perplexity
4. Sampling text from the 5-gram model

Set `TINYLM_FAST=1` to run on a slice of the text (the test suite does)."""),
    ("code", r"""import math
import os
import sys
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

try:
    import tinylm
except ModuleNotFoundError:      # a checkout that is not installed: put the project on the path
    sys.path.insert(0, str(next(p for p in [Path.cwd(), *Path.cwd().parents]
                                if (p / "tinylm").is_dir())))
    import tinylm
FIGURES = Path(tinylm.__file__).resolve().parents[1] / "chapters" / "figures"

from tinylm.data import CharTokenizer, load_text, split_train_val
from tinylm.evaluate import evaluate_lm
from tinylm.generate import generate
from tinylm.models.ngram import NGramConfig, NGramLM, choose_ngram

FAST = os.environ.get("TINYLM_FAST") == "1"
print("fast mode" if FAST else "full mode")"""),
    ("md", r"""## 1. The data

`load_text` finds the file (`$TINYLM_DATA_DIR`, then `shared/data` beside the project, then a
verified download into `~/.cache/tinylm`). The vocabulary is the sorted set of characters,
so the ids are exactly nanoGPT's (`shakespeare_char/prepare.py`): 65 symbols, the first
90% of the stream trains, the last 10% validates."""),
    ("code", r"""text = load_text("tinyshakespeare")
tok = CharTokenizer.from_text(text)            # vocabulary from the whole text, as nanoGPT
if FAST:
    text = text[:120_000]
ids = tok.encode(text)
train, val = split_train_val(ids, 0.1)
V = tok.vocab_size
print(f"{len(text):,} characters, vocabulary {V}: {''.join(tok.chars)!r}")
print(f"train {len(train):,} / validation {len(val):,} ids; first ids {ids[:8].tolist()}")"""),
    ("md", r"""## 2. Counting

An n-gram model estimates $P(x_t \mid x_{t-N+1..t-1})$ from counts. The maximum-likelihood
estimate is $c(h\,w)/c(h)$. Here are the most frequent 3-grams, counted with a plain
`Counter` (the model counts the same thing with `numpy.unique`):"""),
    ("code", r"""head = tok.decode(train[:200_000])
trigrams = Counter(head[i:i + 3] for i in range(len(head) - 2))
print([(g, c) for g, c in trigrams.most_common(10)])

model = NGramLM(NGramConfig(V, order=5 if FAST else 8)).fit(train)
print("distinct n-grams per order:", model.num_ngrams())"""),
    ("md", r"""The trouble with maximum likelihood: the longer the context, the more validation
n-grams never occurred in training, and every one of them gets probability 0 (an infinite
loss)."""),
    ("code", r"""def ngram_set(stream, n):
    return set(zip(*(stream[i:len(stream) - n + 1 + i].tolist() for i in range(n))))

for n in range(1, 6 if FAST else 9):
    seen = ngram_set(train, n)
    val_grams = list(zip(*(val[i:len(val) - n + 1 + i].tolist() for i in range(n))))
    unseen = sum(g not in seen for g in val_grams) / len(val_grams)
    print(f"order {n}: {unseen:6.1%} of validation {n}-grams never occur in training")

mle = model.with_config(order=3, smoothing="add_k", k=0.0)
print("3-gram maximum likelihood, validation loss:", mle.stream_loss(val))"""),
    ("md", r"""## 3. Smoothing, order by order

`choose_ngram` fits once (at the largest order) and scores each (order, smoothing) on the
validation stream: the loss is the mean negative log-likelihood in nats per character,
perplexity $= e^{\text{loss}}$, bits per character $=\text{loss}/\ln 2$."""),
    ("code", r"""orders = range(1, 6 if FAST else 9)
settings = [{"smoothing": "kneser_ney", "discount": 0.75},
            {"smoothing": "kneser_ney", "discount": 0.9},
            {"smoothing": "add_k", "k": 1.0}, {"smoothing": "add_k", "k": 0.1},
            {"smoothing": "add_k", "k": 0.01}]
best, rows = choose_ngram(train, val, V, orders=orders, settings=settings)

def label(row):
    if row["smoothing"] == "kneser_ney":
        return f"Kneser-Ney D={row['discount']:g}"
    return f"add-k k={row['k']:g}"

print("| order | smoothing | val loss (nats/char) | bits/char | perplexity |")
print("|---|---|---|---|---|")
for row in sorted(rows, key=lambda r: (r["order"], label(r))):
    if row["order"] <= 5:
        print(f"| {row['order']} | {label(row)} | {row['loss']:.4f} | "
              f"{row['loss'] / math.log(2):.3f} | {row['perplexity']:.3f} |")
print("best:", best.config)"""),
    ("code", r"""fig, ax = plt.subplots(figsize=(6.4, 4.0))
for setting in settings:
    mine = [r for r in rows if label(r) == label({**r, **setting})]
    style = "-o" if setting["smoothing"] == "kneser_ney" else "--s"
    ax.plot([r["order"] for r in mine], [r["loss"] for r in mine], style, ms=4,
            label=label({**mine[0]}))
ax.axhline(1.4697, color="gray", lw=0.8, ls=":")
ax.text(1.05, 1.49, "nanoGPT char-level GPT, val 1.4697 (its README)", fontsize=7, color="gray")
ax.set_xlabel("n-gram order N")
ax.set_ylabel("validation loss (nats / character)")
ax.set_title("Tiny Shakespeare, character n-grams" + (" (fast slice)" if FAST else ""))
ax.set_ylim(1.3, 3.6)
ax.legend(fontsize=8)
fig.tight_layout()
if not FAST and FIGURES.is_dir():
    fig.savefig(FIGURES / "01-ngram-val-loss.png", dpi=110)
plt.show()"""),
    ("md", r"""Every model in tinylm is scored by the same function, `tinylm.evaluate.evaluate_lm`,
which cuts the stream into windows; at the start of each window the n-gram model sees
less context, so the windowed loss is slightly higher than the full-context
`stream_loss`:"""),
    ("code", r"""kn5 = best.with_config(order=5, smoothing="kneser_ney", discount=0.75)
print("stream_loss      ", round(kn5.stream_loss(val), 4))
for block in (64, 256):
    print(f"evaluate_lm T={block:<4}", evaluate_lm(kn5, val, batch_size=16, block_size=block))"""),
    ("md", r"""## 4. Sampling from the 5-gram

`tinylm.generate.generate` asks the model for the distribution of the next character given
the last N-1 = 4 characters (the model's `context_size`), samples one, and repeats."""),
    ("code", r"""prompt = np.array([tok.encode("ROMEO:\n" if "R" in tok.chars else "\n")])
new = generate(kn5, prompt, 300 if not FAST else 100, np.random.default_rng(1337))
print(tok.decode(prompt[0]) + tok.decode(new[0]))"""),
]


if __name__ == "__main__":
    nbformat.write(build_notebook(CELLS), OUT)
    print(f"wrote {OUT}")
