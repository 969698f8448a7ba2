"""Writes notebooks/05-word-embeddings.ipynb (without outputs) from the cells below.

    .venv/bin/python notebooks/build/build_05.py
"""

from pathlib import Path

import nbformat
from notebook_cells import build_notebook

OUT = Path(__file__).resolve().parents[1] / "05-word-embeddings.ipynb"

CELLS = [
    ("md", r"""# 05 · Word embeddings（词嵌入）: Word2Vec and GloVe

Companion to `chapters/05-word-embeddings.md`. Everything here uses tinylm's own code:
the objectives in `tinylm/functional/word2vec.py` and `tinylm/functional/glove.py`, the data
side in `tinylm/embeddings/corpus.py`, the trainers in `tinylm/embeddings/`.

1. One-hot codes carry no similarity
2. Negative sampling by hand: the loss, its gradient, a gradient check
3. Subsampling and the noise distribution, as the reference code computes them
4. Skip-gram and CBOW on the Penn Treebank
5. Nearest neighbours, analogies and the three evaluations
6. GloVe: co-occurrence counts and weighted least squares
7. A 2-D map of the vectors

Set `TINYLM_FAST=1` to run everything with tiny settings (the test suite does)."""),
    ("code", r"""import os

import matplotlib.pyplot as plt
import numpy as np

from tinylm.data import load_text
from tinylm.embeddings.corpus import corpus_from_text, keep_probabilities, noise_distribution
from tinylm.embeddings.evaluation import evaluate_all
from tinylm.embeddings.glove import GloVe, GloVeConfig
from tinylm.embeddings.projection import pca_2d
from tinylm.embeddings.vectors import WordVectors
from tinylm.embeddings.word2vec import Word2Vec, Word2VecConfig
from tinylm.functional.word2vec import sgns_backward, sgns_forward
from tinylm.gradcheck import check_gradients

FAST = os.environ.get("TINYLM_FAST") == "1"
print("fast mode" if FAST else "full mode")"""),
    ("md", r"""## 1. One-hot codes carry no similarity

Every two distinct one-hot vectors are orthogonal: the cosine of `cat` and `dog` is the
cosine of `cat` and `however`, zero."""),
    ("code", r"""V = 5
one_hot = np.eye(V)
cosines = one_hot @ one_hot.T
print(cosines)"""),
    ("md", r"""## 2. Negative sampling by hand

For a centre vector $v_c$, the output vector $u_o$ of a true context word and $K$ noise
vectors $u_k$: $L = -\log\sigma(u_o^\top v_c) - \sum_k \log\sigma(-u_k^\top v_c)$. The
gradient is "prediction minus label" times the other vector (chapter 05, section 3). The
check below compares `sgns_backward` with central finite differences in float64."""),
    ("code", r"""rng = np.random.default_rng(0)
B, K, D = 4, 5, 8
v_c, u_o, u_neg = (rng.standard_normal((B, D)), rng.standard_normal((B, D)),
                   rng.standard_normal((B, K, D)))
loss, cache = sgns_forward(v_c, u_o, u_neg)
dv_c, du_o, du_neg = sgns_backward(1.0, cache)
print(f"loss {float(loss):.4f}; dL/dv_c {dv_c.shape}, dL/du_o {du_o.shape}, dL/du_neg {du_neg.shape}")

# the same gradient by hand, for the first pair
sig = lambda x: 1 / (1 + np.exp(-x))
s_o, s_k = sig(u_o[0] @ v_c[0]), sig(u_neg[0] @ v_c[0])
by_hand = ((s_o - 1) * u_o[0] + s_k @ u_neg[0]) / B          # the loss is the mean over B
print("matches the formula:", np.allclose(dv_c[0], by_hand))

print(check_gradients(sgns_forward, sgns_backward, {"v_c": v_c, "u_o": u_o, "u_neg": u_neg},
                      title="sgns"))"""),
    ("md", r"""## 3. Subsampling and the noise distribution

The Penn Treebank's training text, one sentence per line, words seen fewer than 5 times
removed. Then the probability of keeping a word as the released code computes it (solid),
against the paper's formula (dashed), and the $f^{3/4}$ noise distribution against the
unigram distribution."""),
    ("code", r"""text = load_text("ptb.train")
if FAST:
    text = "\n".join(text.splitlines()[:6000])
corpus = corpus_from_text(text, min_count=5)
print(f"{corpus.total_words:,} words, {corpus.vocab_size:,} in the vocabulary; "
      f"most frequent: {corpus.words[:8]}")

counts = corpus.counts.astype(float)
N = counts.sum()
keep = keep_probabilities(corpus.counts, 1e-3)
paper = np.minimum(1.0, np.sqrt(1e-5 * N / counts))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].semilogx(counts, keep, ".", ms=3, label="code: (sqrt(f/sN) + 1) sN/f")
axes[0].semilogx(counts, paper, ".", ms=3, alpha=0.5, label="paper: sqrt(t/f), t=1e-5")
axes[0].set(xlabel="count f", ylabel="probability of keeping a word", title="subsampling")
axes[0].legend()
top = np.arange(30)
axes[1].bar(top - 0.2, counts[top] / N, 0.4, label="unigram f")
axes[1].bar(top + 0.2, noise_distribution(corpus.counts)[top], 0.4, label="noise f^0.75")
axes[1].set(xlabel="rank", title="the 30 most frequent words")
axes[1].legend()
plt.tight_layout()
plt.show()"""),
    ("md", r"""## 4. Skip-gram and CBOW on the Penn Treebank

The settings of the `ptb-skipgram` / `ptb-cbow` presets (100-d, window 5, 5 negatives,
subsampling 1e-3, two threads, 5 epochs); in fast mode a fraction of the corpus, 1 epoch and
32-d vectors. The same runs from the command line:
`tinylm train word2vec --preset ptb-skipgram`."""),
    ("code", r"""settings = dict(vector_size=32 if FAST else 100, epochs=1 if FAST else 5, seed=1)
trained = {}
for architecture in ("cbow", "skipgram"):
    model = Word2Vec(Word2VecConfig(architecture=architecture, **settings),
                     corpus.words, corpus.counts)
    history = model.train(corpus)
    last = history[-1]
    print(f"{architecture:>8}: loss {last['loss']:.3f}, {last['words_per_s']:,.0f} words/s")
    trained[architecture] = WordVectors(corpus.words, model.vectors)"""),
    ("md", r"""## 5. Nearest neighbours, analogies, evaluations

Cosine neighbours, a few analogies ("a is to b as c is to ?" by $v_b - v_a + v_c$), and the
three standard evaluations with their coverage: on PTB's 10k words most analogy questions
cannot even be asked (chapter 05, section 7). Expect most analogies to fail: 0.9 M words of
financial news teach `monday`'s neighbours well and `king`'s hardly at all."""),
    ("code", r"""vectors = trained["skipgram"]
for word in ("stock", "president", "monday", "money"):
    if word in vectors:
        print(f"{word:>10}:", ", ".join(w for w, _ in vectors.most_similar(word, topn=6)))
for a, b, c in (("man", "king", "woman"), ("good", "better", "bad"), ("big", "bigger", "small")):
    if all(w in vectors for w in (a, b, c)):
        print(f"{a} : {b} :: {c} : {vectors.analogy(a, b, c)[0][0]}")
for name, vecs in trained.items():
    scores = evaluate_all(vecs)
    print(f"{name:>8}: analogies {scores['analogies']:.3f} "
          f"(coverage {scores['analogies_coverage']:.0%}), "
          f"WordSim353 {scores['wordsim353']:.3f}, SimLex-999 {scores['simlex999']:.3f}")"""),
    ("md", r"""## 6. GloVe

Co-occurrence counts within the window, each weighted by 1/distance, then AdaGrad on the
weighted least squares $\sum f(X_{ij})(w_i^\top\tilde w_j + b_i + \tilde b_j - \log X_{ij})^2$.
The weighting $f$ rises as $(x/x_{\max})^{3/4}$ and is capped at 1; the `ptb-glove` preset's
$x_{\max} = 10$ suits a corpus this small better than the paper's 100 (chapter 05, section 9)."""),
    ("code", r"""glove = GloVe(GloVeConfig(vector_size=settings["vector_size"], window=10, x_max=10.0,
                          epochs=2 if FAST else 25, seed=1), corpus.words, corpus.counts)
history = glove.train(corpus)
print(f"GloVe: cost {history[0]['loss']:.4f} -> {history[-1]['loss']:.4f} "
      f"after {len(history)} epochs")
glove_vectors = WordVectors(corpus.words, glove.vectors)
scores = evaluate_all(glove_vectors)
print(f"   GloVe: analogies {scores['analogies']:.3f}, WordSim353 {scores['wordsim353']:.3f}, "
      f"SimLex-999 {scores['simlex999']:.3f}")
x = np.logspace(-1, 3, 200)
plt.figure(figsize=(5, 3))
for x_max in (10, 100):
    plt.semilogx(x, np.minimum(1.0, (x / x_max) ** 0.75), label=f"x_max = {x_max}")
plt.legend()
plt.gca().set(xlabel="co-occurrence count x", ylabel="f(x)", title="GloVe's weighting")
plt.show()"""),
    ("md", r"""## 7. A 2-D map

The first two principal components of the skip-gram vectors of a few chosen words
(`tinylm/embeddings/projection.py`: centre, then the top two right singular vectors). Two
dimensions keep only a small part of the variance, so read it as a sketch."""),
    ("code", r"""chosen = [w for w in ("monday", "tuesday", "friday", "january", "march", "june",
                       "president", "chairman", "director", "stock", "shares", "bonds",
                       "dollar", "yen", "two", "three", "five")
          if w in vectors]
points = pca_2d(np.stack([vectors.vector(w) for w in chosen]))
plt.figure(figsize=(6, 5))
plt.scatter(points[:, 0], points[:, 1], s=12)
for (px, py), word in zip(points, chosen):
    plt.annotate(word, (px, py), fontsize=9)
plt.title("skip-gram vectors, first two principal components")
plt.show()"""),
]


if __name__ == "__main__":
    nbformat.write(build_notebook(CELLS), OUT)
    print("wrote", OUT)
