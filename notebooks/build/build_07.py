"""Writes notebooks/07-attention-and-transformer.ipynb (without outputs) from the cells below.

    .venv/bin/python notebooks/build/build_07.py
"""

from pathlib import Path

import nbformat
from notebook_cells import build_notebook

OUT = Path(__file__).resolve().parents[1] / "07-attention-and-transformer.ipynb"

CELLS = [
    ("md", r"""# 07 · Attention and the Transformer（注意力机制与Transformer）

Companion to `chapters/07-attention-and-transformer.md`.

1. Scaled dot-product attention by hand, with a causal mask
2. A gradient check of attention (the functional pair and the fused kernel)
3. A short GPT training run on Tiny Shakespeare, with its loss curve
4. Attention-weight heatmaps of the trained model, and a sample

Set `TINYLM_FAST=1` to run everything with tiny settings (the test suite does). In full
mode the heatmaps use the checkpoint of `tinylm train gpt --preset shakespeare-char-cpu`
when `runs/shakespeare-char-cpu` exists."""),
    ("code", r"""import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import tinylm
from tinylm.data import CharTokenizer, RandomWindowBatcher, load_text, split_train_val
from tinylm.evaluate import evaluate_lm
from tinylm.functional.attention import (attention_heads_backward, attention_heads_forward,
                                         causal_mask, scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward)
from tinylm.generate import generate
from tinylm.gradcheck import check_gradients
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.optim import AdamW, clip_grad_norm, lr_at

FAST = os.environ.get("TINYLM_FAST") == "1"
ROOT = Path(tinylm.__file__).resolve().parents[1]
print("fast mode" if FAST else "full mode")"""),
    ("md", r"""## 1. Attention by hand

Four positions, head width 3. The scores are $S = QK^\top/\sqrt d$ (note the transpose:
row $i$ of $Q$ against row $j$ of $K$). The causal mask puts $-\infty$ above the diagonal,
the softmax turns each row into weights, and the output is $PV$."""),
    ("code", r"""rng = np.random.default_rng(0)
T, d = 4, 3
Q, K, V = rng.standard_normal((T, d)), rng.standard_normal((T, d)), rng.standard_normal((T, d))

S = Q @ K.T / np.sqrt(d)                                   # [T, T]
S_masked = np.where(causal_mask(T, T, np), S, -np.inf)     # position i sees j <= i
P = np.exp(S_masked - S_masked.max(axis=1, keepdims=True))
P /= P.sum(axis=1, keepdims=True)                          # rows sum to 1
O = P @ V                                                  # [T, d]

out, cache = scaled_dot_product_attention_forward(Q, K, V, causal=True)
print("weights P:\n", P.round(3))
print("same as tinylm:", np.allclose(out, O))"""),
    ("md", r"""Row 0 can only see itself (weight 1); row 3 spreads its weight over all four positions.

## 2. Checking the backward pass

The backward of softmax attention (chapter 07, section 3):
$dV = P^\top G$, $dP = G V^\top$, $dS = P\circ(dP - \operatorname{rowsum}(P\circ dP))$,
$dQ = dS\,K/\sqrt d$, $dK = dS^\top Q/\sqrt d$. `check_gradients` compares it with central
finite differences in float64, both for the general function and for the fused
multi-head kernel that GPT uses."""),
    ("code", r"""report = check_gradients(scaled_dot_product_attention_forward,
                         scaled_dot_product_attention_backward,
                         {"q": rng.standard_normal((2, 5, 4)), "k": rng.standard_normal((2, 5, 4)),
                          "v": rng.standard_normal((2, 5, 3)), "causal": True})
print(report)
report = check_gradients(attention_heads_forward, attention_heads_backward,
                         {"qkv": rng.standard_normal((2, 6, 12)), "n_head": 2})
print(report)"""),
    ("md", r"""## 3. Training a small GPT on Tiny Shakespeare

The same ingredients as `tinylm train gpt --preset shakespeare-char-cpu`: characters as
tokens, random windows, AdamW with betas (0.9, 0.99), weight decay 0.1 on matrices, clipping
at 1.0, warm-up + cosine learning rate. The fast mode trains a tiny model for a few steps."""),
    ("code", r"""text = load_text("tinyshakespeare")
if FAST:
    text = text[:200_000]
tok = CharTokenizer.from_text(text)
train_ids, val_ids = split_train_val(np.asarray(tok.encode(text), dtype=np.int64), 0.1)

if FAST:
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=32)
    steps, batch = 150, 8
else:
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128)
    steps, batch = 1500, 12
model = GPT(config)
matrices = [p for p in model.parameters() if p.data.ndim >= 2]
vectors = [p for p in model.parameters() if p.data.ndim < 2]
opt = AdamW([{"params": matrices, "weight_decay": 0.1}, {"params": vectors, "weight_decay": 0.0}],
            lr=1e-3, betas=(0.9, 0.99))
schedule = type("Schedule", (), dict(lr=1e-3, schedule="cosine", warmup_iters=min(100, steps // 10),
                                      min_lr=1e-4, lr_decay_iters=steps, max_iters=steps))
batcher = RandomWindowBatcher(train_ids, batch, config.block_size, seed=0)
print(f"{model.num_parameters():,} parameters")

losses, start = [], time.perf_counter()
for it in range(steps):
    opt.lr = lr_at(it, schedule)
    x, y, _ = batcher.next_batch()
    _, loss = model.forward(x, y)
    model.backward()
    clip_grad_norm(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()
    losses.append(float(loss))
elapsed = time.perf_counter() - start
val = evaluate_lm(model, val_ids[:20_000] if FAST else val_ids, batch, config.block_size)
print(f"{steps} steps in {elapsed:.1f} s ({steps * batch * config.block_size / elapsed:,.0f} tokens/s); "
      f"validation loss {val['loss']:.3f}")

plt.figure(figsize=(6, 3))
plt.plot(losses, lw=0.6, label="training batches")
plt.axhline(val["loss"], color="C1", ls="--", label="validation at the end")
plt.xlabel("step"); plt.ylabel("loss (nats/char)"); plt.legend(); plt.show()"""),
    ("md", r"""## 4. What the heads look at

`model.attention_maps()` returns the attention weights $[B, H, T, T]$ of every layer from
the last forward pass. Each row is one query position; the lower triangle is all it may
see. In a trained character model, some heads look at the previous character or two, and
others look back to the last space or newline, which marks the start of the current word
or line."""),
    ("code", r"""checkpoint = ROOT / "runs" / "shakespeare-char-cpu"
if not FAST and (checkpoint / "ckpt.json").exists():
    from tinylm.train.restore import load_trained
    model, tok, _ = load_trained(checkpoint)
    print("using the trained checkpoint", checkpoint)
model.eval()
sample_text = "ROMEO:\nBut soft, what light through yonder window breaks?"
ids = np.asarray(tok.encode(sample_text), dtype=np.int64)[None, :model.config.block_size]
model.forward(ids)
maps = model.attention_maps()
chars = [repr(c)[1:-1] for c in tok.decode([int(i) for i in ids[0]])]
L, H = len(maps), maps[0].shape[1]
fig, axes = plt.subplots(L, H, figsize=(2.6 * H, 2.6 * L), squeeze=False)
for layer in range(L):
    for head in range(H):
        axes[layer][head].imshow(maps[layer][0, head], vmin=0, vmax=1)
        axes[layer][head].set_title(f"layer {layer}, head {head}", fontsize=8)
        axes[layer][head].set_xticks([]); axes[layer][head].set_yticks([])
plt.tight_layout(); plt.show()

# Where does each head look? For every query position t, the key with the largest weight:
# how often is it the previous character, the latest space, the latest newline (at or before t)?
seq = ids[0]
def latest(token_id, t):
    earlier = np.flatnonzero(seq[:t + 1] == token_id)
    return earlier[-1] if earlier.size else -1
space, newline = tok.encode(" ")[0], tok.encode("\n")[0]
for layer in range(L):
    for head in range(H):
        strongest = maps[layer][0, head].argmax(axis=-1)          # [T]
        ts = range(1, len(seq))
        prev = np.mean([strongest[t] == t - 1 for t in ts])
        sp = np.mean([strongest[t] == latest(space, t) for t in ts])
        nl = np.mean([strongest[t] == latest(newline, t) for t in ts])
        print(f"layer {layer}, head {head}: previous character {prev:4.0%}, "
              f"latest space {sp:4.0%}, latest newline {nl:4.0%}")"""),
    ("code", r"""prompt = np.asarray(tok.encode("\n"), dtype=np.int64)[None, :]
new = generate(model, prompt, 200 if not FAST else 60, np.random.default_rng(0), temperature=0.8)
print(tok.decode([int(i) for i in new[0]]))"""),
]


if __name__ == "__main__":
    nbformat.write(build_notebook(CELLS), OUT)
    print("wrote", OUT)
