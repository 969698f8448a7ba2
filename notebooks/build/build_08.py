"""Writes notebooks/08-sequence-to-sequence.ipynb (without outputs) from the cells below.

    .venv/bin/python notebooks/build/build_08.py
"""

from pathlib import Path

import nbformat
from notebook_cells import build_notebook

OUT = Path(__file__).resolve().parents[1] / "08-sequence-to-sequence.ipynb"

CELLS = [
    ("md", r"""# 08 · Sequence to sequence（序列到序列）

Companion to `chapters/08-sequence-to-sequence.md`. Everything here is tinylm's own code:
attention over an encoder in `tinylm/functional/encoder_attention.py`, the two models in
`tinylm/models/seq2seq_rnn.py` and `tinylm/models/seq2seq_transformer.py`, decoding in
`tinylm/beam_search.py`, BLEU in `tinylm/bleu.py`, the training run in
`tinylm/train/seq2seq_run.py`.

1. Luong attention by hand, with a padding mask, and its gradient check
2. Label smoothing: the loss floor and the gradient p - q
3. Greedy decoding is wrong on a three-token example; beam search is right
4. BLEU by hand against `corpus_bleu`
5. The date task: train, evaluate, and look at the attention
6. The Transformer encoder-decoder: three masks, and a KV cache that changes nothing
7. A trained translator, if one is on disk

Set `TINYLM_FAST=1` to run everything with tiny settings (the test suite does)."""),
    ("code", r"""import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tinylm.beam_search import beam_search, greedy_decode
from tinylm.bleu import corpus_bleu
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.encoder_attention import (multiplicative_attention_backward,
                                                 multiplicative_attention_forward)
from tinylm.gradcheck import check_gradients
from tinylm.models.seq2seq_transformer import Seq2SeqTransformer, Seq2SeqTransformerConfig
from tinylm.train.presets import get_preset
from tinylm.train.seq2seq_run import seq2seq_settings, train_seq2seq
from tinylm.train.translator import attention_of, evaluate_split, load_translator

FAST = os.environ.get("TINYLM_FAST") == "1"
print("fast mode" if FAST else "full mode")"""),
    ("md", r"""## 1. Luong attention by hand

A decoder state $q_t$ scores every encoder state $k_s$ by $q_t^\top W k_s$ ("general"); a
softmax over the source positions gives the weights, and the context is their weighted
average. The second source row is padded after 2 tokens: its padded positions must get
weight exactly 0."""),
    ("code", r"""rng = np.random.default_rng(0)
B, T, S, H = 2, 3, 4, 5
q, k, W = rng.standard_normal((B, T, H)), rng.standard_normal((B, S, H)), rng.standard_normal((H, H))
mask = np.array([[True] * 4, [True, True, False, False]])
context, cache = multiplicative_attention_forward(q, k, k, W, mask)

scores = np.einsum("bti,ij,bsj->bts", q, W, k)               # the same by hand
scores = np.where(mask[:, None, :], scores, -np.inf)
alpha = np.exp(scores - scores.max(-1, keepdims=True))
alpha /= alpha.sum(-1, keepdims=True)
print("weights of row 1, step 0:", np.round(cache.weights[1, 0], 3))
print("context matches the formula:", np.allclose(context, alpha @ k))

def luong(q, k, W):
    return multiplicative_attention_forward(q, k, k, W, mask)

def luong_backward(dcontext, cache):
    dq, dk, dv, dW = multiplicative_attention_backward(dcontext, cache)
    return dq, dk + dv, dW                                    # k is both keys and values

print(check_gradients(luong, luong_backward, {"q": q, "k": k, "W": W}, title="luong"))"""),
    ("md", r"""## 2. Label smoothing

With $q_j = (1-\varepsilon)[j = y] + \varepsilon / V$ the loss cannot fall below the
entropy of $q$ (chapter, section 5 and exercise 1), and the gradient is $p - q$."""),
    ("code", r"""V, eps = 8000, 0.1
q_y, q_other = 1 - eps + eps / V, eps / V
floor = -q_y * math.log(q_y) - (V - 1) * q_other * math.log(q_other)
print(f"the smallest smoothed loss for V={V}, eps={eps}: {floor:.4f} nats")

logits = rng.standard_normal((4, 6))
targets = np.array([0, 3, 5, -100])                          # the last row is padding
loss, cache = cross_entropy_forward(logits, targets, label_smoothing=0.2)
dlogits = cross_entropy_backward(1.0, cache)
p = np.exp(logits - logits.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
smooth = np.full((4, 6), 0.2 / 6)
smooth[np.arange(3), targets[:3]] += 0.8
by_hand = (p - smooth) / 3                                   # mean over the 3 real rows
by_hand[3] = 0.0
print("gradient is (p - q) / N:", np.allclose(dlogits, by_hand))"""),
    ("md", r"""## 3. Greedy decoding is wrong here; beam search is right

The chapter's example (section 6): three tokens `a`, `b`, `<eos>`. Greedy takes `a`
(0.5) and ends with probability 0.20; `b <eos>` has 0.36. The model is a table: the state
of each hypothesis is its prefix."""),
    ("code", r"""A, B_, EOS, BOS = 0, 1, 2, 3
TABLE = {(): [0.5, 0.4, 0.1], (A,): [0.3, 0.3, 0.4], (B_,): [0.05, 0.05, 0.9]}

def step(tokens, prefixes):
    prefixes = [p + (int(t),) if t != BOS else p for p, t in zip(prefixes, tokens)]
    probs = [TABLE.get(p, [1e-9, 1e-9, 1.0]) for p in prefixes]
    return np.log(np.array(probs)), prefixes

def reorder(prefixes, rows):
    return [prefixes[int(i)] for i in rows]

names = {A: "a", B_: "b", EOS: "<eos>"}
greedy = greedy_decode(step, [()], 1, BOS, EOS, max_len=4)[0]
beam = beam_search(step, [()], 1, BOS, EOS, beam_width=2, max_len=4, length_penalty=None,
                   reorder=reorder)[0]
for name, result in (("greedy", greedy), ("beam 2", beam)):
    print(f"{name:7s}", " ".join(names[t] for t in result.tokens),
          f"P = {math.exp(result.log_prob):.2f}")"""),
    ("md", r"""## 4. BLEU by hand

Modified precisions with clipping, pooled over the corpus, times the brevity penalty;
`corpus_bleu` gives sacreBLEU's number (13a tokenisation, exponential smoothing)."""),
    ("code", r"""from collections import Counter

hyps = ["the cat sat on the mat .", "a dog ran in the park"]
refs = ["the cat sat on the mat .", "the dog ran in the big park"]

def ngrams(words, n):
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))

matches, totals = [0] * 4, [0] * 4
for h, r in zip(hyps, refs):
    hw, rw = h.split(), r.split()
    for n in range(1, 5):
        hn, rn = ngrams(hw, n), ngrams(rw, n)
        matches[n - 1] += sum(min(c, rn[g]) for g, c in hn.items())
        totals[n - 1] += sum(hn.values())
c, r = sum(len(h.split()) for h in hyps), sum(len(x.split()) for x in refs)
bp = 1.0 if c >= r else math.exp(1 - r / c)
by_hand = 100 * bp * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals)) / 4)
print("precisions", [f"{m}/{t}" for m, t in zip(matches, totals)], f"BP {bp:.3f}")
print(f"by hand {by_hand:.4f}, corpus_bleu {corpus_bleu(hyps, [refs]).score:.4f}")
print("mean of sentence scores is not corpus BLEU:",
      round(np.mean([corpus_bleu([h], [[x]]).score for h, x in zip(hyps, refs)]), 2))"""),
    ("md", r"""## 5. The date task: train, evaluate, look at the attention

deep-learning-from-scratch-2's date task: many written forms of a date, one ISO answer.
The `date` preset trains the recurrent model with Luong attention (about 2 minutes on 2
cores for 100 % exact match); fast mode trains 60 steps on a small model."""),
    ("code", r"""preset = get_preset("date")
out_dir = Path("runs/notebook-08-date")
train = dict(preset["train"], out_dir=str(out_dir), progress=False)
model_config = dict(preset["model_config"])
if FAST:
    train.update(max_steps=60, eval_interval=30, token_budget=512)
    model_config.update(n_hidden=32, n_embd=16)
history = train_seq2seq(seq2seq_settings(train), model_config)
translator = load_translator(out_dir)
result = evaluate_split(translator, "test", limit=200 if FAST else 0)
print(f"exact match on {result['pairs']} test pairs: {100 * result['score']:.2f} %")
for hyp, ref in list(zip(result["hypotheses"], result["references"]))[:5]:
    print(f"{hyp!r:>16} (reference {ref!r})")"""),
    ("code", r"""weights, src_tokens, out_tokens = attention_of(translator, "saturday, july 4, 1998")
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="auto")
ax.set_xticks(range(len(src_tokens)), src_tokens)
ax.set_yticks(range(len(out_tokens)), out_tokens)
ax.set_xlabel("source character"); ax.set_ylabel("output character")
ax.set_title("Luong attention of the date model")
plt.show()"""),
    ("md", r"""## 6. The Transformer encoder-decoder: three masks and a KV cache

Encoder self-attention and cross-attention both mask the padded source keys; decoder
self-attention is causal. Decoding one token at a time with the KV cache gives the same
log-probabilities as the full teacher-forced forward pass."""),
    ("code", r"""config = Seq2SeqTransformerConfig(src_vocab=20, tgt_vocab=18, n_embd=32, n_head=4,
                                  n_enc_layer=2, n_dec_layer=2, max_len=12)
model = Seq2SeqTransformer(config).to(dtype=np.float64).eval()
src = rng.integers(4, 20, (2, 6))
src_mask = np.array([[True] * 6, [True] * 4 + [False] * 2])
tgt_in = np.concatenate([np.ones((2, 1), int), rng.integers(4, 18, (2, 4))], axis=1)
logits, _ = model.forward(src, tgt_in, src_mask=src_mask)
cross = model.attention_maps()[-1]                           # [B, heads, T, S]
print("cross-attention on row 1's padding:", float(np.abs(cross[1, :, :, 4:]).max()))

state = model.encode(src, src_mask)
worst = 0.0
for t in range(tgt_in.shape[1]):
    log_probs, state = model.decode_step(tgt_in[:, t], state)
    z = logits[:, t] - logits[:, t].max(-1, keepdims=True)
    full = z - np.log(np.exp(z).sum(-1, keepdims=True))
    worst = max(worst, float(np.abs(log_probs - full).max()))
print(f"KV-cached steps vs the full forward: largest difference {worst:.1e}")"""),
    ("md", r"""## 7. A trained translator, if one is on disk

`tinylm train seq2seq --preset fra-eng` writes `runs/fra-eng` (about 17 minutes on 2
cores). If it exists, translate a few sentences and score a slice of the test split."""),
    ("code", r"""run = Path("runs/fra-eng")
if (run / "ckpt.json").exists() and not FAST:
    fr_en = load_translator(run)
    for sentence in ["Je suis fatigué.", "Il fait froid ce matin.", "Où est la gare ?"]:
        print(sentence, "->", fr_en.translate([sentence], beam=5)[0])
    scored = evaluate_split(fr_en, "test", limit=500)
    print(f"BLEU on the first {scored['pairs']} test pairs (greedy): {scored['score']:.1f}")
else:
    print("no trained fra-eng run here (or fast mode): train one with "
          "`tinylm train seq2seq --preset fra-eng`")"""),
]


def main():
    nbformat.write(build_notebook(CELLS), OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
