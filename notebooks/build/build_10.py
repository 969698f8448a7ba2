"""Writes notebooks/10-generation.ipynb (without outputs) from the cells below.

    .venv/bin/python notebooks/build/build_10.py
"""

from pathlib import Path

import nbformat
from notebook_cells import build_notebook

OUT = Path(__file__).resolve().parents[1] / "10-generation.ipynb"

CELLS = [
    ("md", r"""# 10 · Generation（文本生成）: decoding strategies and the KV cache

Companion to `chapters/10-generation.md`.

1. A character-level GPT (the trained checkpoint in full mode, a quickly trained one otherwise)
2. The next-character distribution under temperature, top-k and top-p
3. Samples: greedy, several temperatures, top-k, top-p, a stop token
4. The KV cache: the same logits as recomputation, and how much faster it is

Set `TINYLM_FAST=1` to run everything with tiny settings (the test suite does)."""),
    ("code", r"""import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import tinylm
from tinylm.data import CharTokenizer, RandomWindowBatcher, load_text
from tinylm.functional.softmax import softmax_forward
from tinylm.generate import filter_logits, generate
from tinylm.models.base import LanguageModel
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.optim import AdamW

FAST = os.environ.get("TINYLM_FAST") == "1"
ROOT = Path(tinylm.__file__).resolve().parents[1]
print("fast mode" if FAST else "full mode")"""),
    ("md", r"""## 1. A model to decode from

In full mode we load the checkpoint of `tinylm train gpt --preset shakespeare-char-cpu`
if it exists; otherwise we train a small GPT for a moment. Decoding works the same with
any model that implements `start_decoding` / `decode_step`."""),
    ("code", r"""checkpoint = ROOT / "runs" / "shakespeare-char-cpu"
if not FAST and (checkpoint / "ckpt.json").exists():
    from tinylm.train.restore import load_trained
    model, tok, _ = load_trained(checkpoint)
    print("loaded", checkpoint)
else:
    text = load_text("tinyshakespeare")[: 200_000 if FAST else None]
    tok = CharTokenizer.from_text(text)
    ids = np.asarray(tok.encode(text), dtype=np.int64)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32 if FAST else 64,
                          n_layer=2 if FAST else 4, n_head=2 if FAST else 4,
                          n_embd=32 if FAST else 128))
    opt = AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.99), weight_decay=0.1)
    batcher = RandomWindowBatcher(ids, 8 if FAST else 12, model.config.block_size, seed=0)
    for it in range(150 if FAST else 1500):
        _, loss = model.forward(*batcher.next_batch()[:2])
        model.backward()
        opt.step()
        opt.zero_grad()
    print(f"trained a small model, last batch loss {float(loss):.3f}")
model.eval()


def encode(s):
    return np.asarray(tok.encode(s), dtype=np.int64)[None, :]


def decode(ids):
    return tok.decode([int(i) for i in ids])"""),
    ("md", r"""## 2. One distribution, four ways

After the prompt below, the model gives logits $z$ for the next character. Temperature
rescales them ($\operatorname{softmax}(z/\tau)$); top-k and top-p cut the tail before the
draw."""),
    ("code", r"""prompt = "ROMEO:\nWhat light is th"
logits, _ = model.start_decoding(encode(prompt))
z = logits[0].astype(np.float64)
order = np.argsort(z)[::-1][:12]
labels = [repr(tok.decode([int(i)]))[1:-1] for i in order]

fig, axes = plt.subplots(1, 4, figsize=(14, 3), sharey=True)
settings = [("tau = 0.5", 0.5, None, None), ("tau = 1", 1.0, None, None),
            ("tau = 2", 2.0, None, None), ("tau = 1, top-p 0.9", 1.0, None, 0.9)]
for ax, (title, tau, k, p) in zip(axes, settings):
    probs, _ = softmax_forward(filter_logits(z[None] / tau, k, p))
    ax.bar(range(len(order)), probs[0, order])
    ax.set_xticks(range(len(order)), labels)
    ax.set_title(title)
plt.tight_layout(); plt.show()"""),
    ("md", r"""## 3. Samples

The same prompt, the same random generator seed, different rules. Greedy decoding tends to
repeat itself. Low temperatures are safe and dull; high temperatures invent words. Top-p
keeps most of the variety but cuts the worst tails."""),
    ("code", r"""n = 80 if FAST else 300
rules = {"greedy": dict(greedy=True), "temperature 0.5": dict(temperature=0.5),
         "temperature 1.0": dict(temperature=1.0), "temperature 1.5": dict(temperature=1.5),
         "top-k 5": dict(top_k=5), "top-p 0.9": dict(top_p=0.9)}
for name, kwargs in rules.items():
    new = generate(model, encode("ROMEO:\n"), n, np.random.default_rng(1), **kwargs)
    print(f"--- {name} ---\nROMEO:\n{decode(new[0])}\n")"""),
    ("code", r"""newline = tok.encode("\n")[0]
new = generate(model, encode("JULIET:\n"), 200, np.random.default_rng(2), temperature=0.8,
               stop_ids=[newline])
print(repr(decode(new[0])), f"({new.shape[1]} tokens: stopped at the first newline)")"""),
    ("md", r"""## 4. The KV cache

`model.start_decoding` / `decode_step` keep the keys and values of every layer. The base
class `LanguageModel` provides the cache-free version, which recomputes the whole context
at every step. In float64 both give the same logits to rounding, at every step, including
after the context has outgrown `block_size` (where GPT's window slides and it recomputes)."""),
    ("code", r"""m64 = GPT(model.config).to(dtype=np.float64)
m64.load_state_dict(model.state_dict())
m64.eval()
ids = encode("KING:\n")
cached, state = m64.start_decoding(ids)
worst = 0.0
rng = np.random.default_rng(0)
for step in range(model.config.block_size + 10):
    recomputed, _ = LanguageModel.start_decoding(m64, ids)
    worst = max(worst, np.abs(cached - recomputed).max() / np.abs(recomputed).max())
    nxt = rng.integers(0, tok.vocab_size, size=1)
    ids = np.concatenate([ids, nxt[None]], axis=1)
    cached, state = m64.decode_step(nxt, state)
print(f"largest relative difference over {step + 1} steps: {worst:.1e}")"""),
    ("code", r"""def per_token_times(use_cache, n):
    prompt = encode("\n")
    logits, state = (model.start_decoding(prompt) if use_cache
                     else LanguageModel.start_decoding(model, prompt))
    step = model.decode_step if use_cache else (lambda i, s: LanguageModel.decode_step(model, i, s))
    times = []
    for _ in range(n):
        t = time.perf_counter()
        logits, state = step(np.array([int(logits[0].argmax())]), state)
        times.append(time.perf_counter() - t)
    return np.array(times)


n = model.config.block_size - 1
with_cache, without = per_token_times(True, n), per_token_times(False, n)
plt.figure(figsize=(6, 3))
plt.plot(1e3 * without, label="recompute the context")
plt.plot(1e3 * with_cache, label="KV cache")
plt.xlabel("tokens generated"); plt.ylabel("ms per token"); plt.legend(); plt.show()
print(f"tokens/s with the cache: {n / with_cache.sum():,.0f}, without: {n / without.sum():,.0f}")"""),
]


if __name__ == "__main__":
    nbformat.write(build_notebook(CELLS), OUT)
    print("wrote", OUT)
