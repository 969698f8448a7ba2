"""Writes notebooks/06-recurrent-networks.ipynb (without outputs) from the cells below.

    .venv/bin/python notebooks/build/build_06.py
"""

from pathlib import Path

import nbformat
from notebook_cells import build_notebook

OUT = Path(__file__).resolve().parents[1] / "06-recurrent-networks.ipynb"

CELLS = [
    ("md", r"""# 06 · Recurrent networks（循环神经网络）: RNN, LSTM, GRU and BPTT

Companion to `chapters/06-recurrent-networks.md`. The code it uses:

* `tinylm/functional/rnn.py`, `lstm.py`, `gru.py` — one step and whole-sequence forward/backward
  (backpropagation through time) for each cell, with the fused gate step's reference;
* `tinylm/kernels/recurrent.py` — the same gate steps accelerated with numba;
* `tinylm/nn/recurrent.py` — multi-layer `RNN`, `LSTM`, `GRU` layers;
* `tinylm/models/rnn_lm.py` — `RNNLM`, `LSTMLM`, `GRULM` language models.

1. The cells by hand, and gradient checks of every backward (including the initial state)
2. Backpropagation through time: gradient norm against distance back in time
3. The same numbers as PyTorch (if installed)
4. A small character-level LSTM language model: truncated BPTT, then sampling

Set `TINYLM_FAST=1` to run everything with tiny settings (the test suite does)."""),
    ("code", r"""import os

import matplotlib.pyplot as plt
import numpy as np

from tinylm.functional.gru import gru_backward, gru_cell_backward, gru_cell_forward, gru_forward
from tinylm.functional.lstm import (lstm_backward, lstm_cell_backward, lstm_cell_forward,
                                    lstm_forward)
from tinylm.functional.rnn import rnn_backward, rnn_cell_backward, rnn_cell_forward, rnn_forward
from tinylm.gradcheck import check_gradients

FAST = os.environ.get("TINYLM_FAST") == "1"
rng = np.random.default_rng(0)
print("fast mode" if FAST else "full mode")"""),
    ("md", r"""## 1. One LSTM step, written out

With the four gate blocks side by side in PyTorch's order (i, f, g, o), one step is

$$a = x_t W_x + h_{t-1} W_h + b,\quad i = \sigma(a_i),\ f = \sigma(a_f),\ g = \tanh(a_g),\ o = \sigma(a_o)$$
$$c_t = f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t).$$

Below, the same step in a few lines of NumPy, compared with `lstm_cell_forward` (which runs
the fused kernel)."""),
    ("code", r"""def sigmoid(z):
    return 1 / (1 + np.exp(-z))

B, I, H = 3, 4, 5
x, h, c = rng.standard_normal((B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
W_x, W_h, b = rng.standard_normal((I, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)

a = x @ W_x + h @ W_h + b
i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2*H]), np.tanh(a[:, 2*H:3*H]), sigmoid(a[:, 3*H:])
c_new = f * c + i * g
h_new = o * np.tanh(c_new)

(h_lib, c_lib), _ = lstm_cell_forward(x, h, c, W_x, W_h, b)
print("max |difference|: h", np.abs(h_new - h_lib).max(), " c", np.abs(c_new - c_lib).max())"""),
    ("md", r"""### Gradient checks

`check_gradients` perturbs every input element by $\pm 10^{-6}$ and compares the central
difference with the hand-written backward (float64). Each backward returns the gradients of
*all* floating inputs, so the initial states $h_0$, $c_0$ are checked too: that is the
gradient truncated BPTT throws away at a batch boundary and a sequence-to-sequence decoder
passes back into its encoder."""),
    ("code", r"""def inputs(x_shape, gates, *states, biases=("b",), H=4):
    B, I = x_shape[-2], x_shape[-1]
    d = {"x": rng.standard_normal(x_shape)}
    d.update({s: rng.standard_normal((B, H)) for s in states})
    d["W_x"] = 0.5 * rng.standard_normal((I, gates * H))
    d["W_h"] = 0.5 * rng.standard_normal((H, gates * H))
    d.update({name: 0.5 * rng.standard_normal(gates * H) for name in biases})
    return d

checks = [
    (rnn_cell_forward, rnn_cell_backward, inputs((3, 2), 1, "h_prev")),
    (lstm_cell_forward, lstm_cell_backward, inputs((3, 2), 4, "h_prev", "c_prev")),
    (gru_cell_forward, gru_cell_backward, inputs((3, 2), 3, "h_prev", biases=("b_x", "b_h"))),
    (rnn_forward, rnn_backward, inputs((6, 2, 3), 1, "h0")),
    (lstm_forward, lstm_backward, inputs((6, 2, 3), 4, "h0", "c0")),
    (gru_forward, gru_backward, inputs((6, 2, 3), 3, "h0", biases=("b_x", "b_h"))),
]
for forward, backward, kw in checks:
    report = check_gradients(forward, backward, kw, tolerance=1e-7, title=backward.__name__)
    print(f"{backward.__name__:<20} worst relative error {report.max_rel_error:.1e}  "
          f"{'ok' if report.passed else 'FAILED'}")
print()
print(report)"""),
    ("md", r"""## 2. Backpropagation through time and vanishing gradients

Let the loss depend on the last hidden state only, $L = \langle u, h_T\rangle$. BPTT sends
$\partial L/\partial h_T = u$ back through the steps; each RNN step multiplies it by
$W_h^\top\,\mathrm{diag}(1 - h_t^2)$, each LSTM step (along the cell) by $\mathrm{diag}(f_t)$.
We measure $\lVert\partial L/\partial x_{T-k}\rVert$ against the distance $k$."""),
    ("code", r"""from tinylm.nn.recurrent import GRU, LSTM, RNN

T, Bn, Hn = (30, 8, 32) if FAST else (100, 32, 128)

def gradient_vs_distance(layer, x):
    hs, _ = layer.forward(x)
    dhs = np.zeros_like(hs)
    u = rng.standard_normal(hs.shape[1:])
    dhs[-1] = u / np.linalg.norm(u, axis=1, keepdims=True)
    dx, _ = layer.backward(dhs)
    norms = np.linalg.norm(dx, axis=2).mean(axis=1)[::-1]      # distance 0, 1, 2, ...
    return norms / norms[0]

x = rng.standard_normal((T, Bn, Hn))
curves = {}
for name, cls in [("RNN", RNN), ("LSTM", LSTM), ("GRU", GRU)]:
    layer = cls(Hn, Hn, batch_first=False, seed=1).to(dtype=np.float64)
    curves[name] = gradient_vs_distance(layer, x)
lstm = LSTM(Hn, Hn, batch_first=False, seed=1).to(dtype=np.float64)
lstm.b_x_l0.data[Hn:2 * Hn] += 2.0        # forget-gate bias +2: f ~ 0.88 instead of ~0.5
curves["LSTM, forget bias +2"] = gradient_vs_distance(lstm, x)

fig, ax = plt.subplots(figsize=(6.4, 3.6))
for name, curve in curves.items():
    ax.semilogy(curve, label=name)
ax.set_xlabel("distance back in time k")
ax.set_ylabel("relative gradient norm")
ax.legend()
plt.show()"""),
    ("md", r"""At PyTorch's default initialisation the forget gate sits near $\sigma(0) = 1/2$, so
the LSTM's gradient along the cell also halves every step. Raising the forget-gate bias
(Jozefowicz et al. 2015) keeps $f$ near 1 and the gradient alive for many more steps: the
LSTM does not remove the product of Jacobians, it makes its factor a *gate the network can
learn to open*. `chapters/figures/06-figures.py` draws the same plot after training."""),
    ("md", r"""## 3. Parity with PyTorch

Given PyTorch's weights (`W_x = weight_ih.T`, `W_h = weight_hh.T`, `b_x = bias_ih`,
`b_h = bias_hh`), a 2-layer LSTM gives the same outputs, final states and gradients.
`tests/test_recurrent.py` requires a relative difference below 1e-10 for all three
cells; this cell shows the numbers when PyTorch is installed."""),
    ("code", r"""try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed; skipping the comparison.")

if torch is not None:
    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True).double()
    ours = LSTM(3, 4, num_layers=2).to(dtype=np.float64)
    state = {}
    for l in range(2):
        state[f"W_x_l{l}"] = getattr(ref, f"weight_ih_l{l}").detach().numpy().T.copy()
        state[f"W_h_l{l}"] = getattr(ref, f"weight_hh_l{l}").detach().numpy().T.copy()
        state[f"b_x_l{l}"] = getattr(ref, f"bias_ih_l{l}").detach().numpy().copy()
        state[f"b_h_l{l}"] = getattr(ref, f"bias_hh_l{l}").detach().numpy().copy()
    ours.load_state_dict(state)
    xb = rng.standard_normal((2, 7, 3))
    dy = rng.standard_normal((2, 7, 4))
    y, (h_T, c_T) = ours.forward(xb)
    dx, _ = ours.backward(dy)
    tx = torch.tensor(xb, requires_grad=True)
    ty, (th, tc) = ref(tx)
    (ty * torch.tensor(dy)).sum().backward()
    print("outputs     ", np.abs(y - ty.detach().numpy()).max())
    print("final c     ", np.abs(c_T - tc.detach().numpy()).max())
    print("d input     ", np.abs(dx - tx.grad.numpy()).max())
    print("d W_h layer1", np.abs(ours.W_h_l1.grad - ref.weight_hh_l1.grad.numpy().T).max())"""),
    ("md", r"""## 4. A character-level LSTM language model

Embedding → LSTM → linear → softmax, trained with truncated BPTT: the text is cut into
`batch` rows read left to right, `block` characters at a time. The model is *stateful*: each
forward starts from the state the previous one ended in (a plain array, so no gradient
crosses the boundary), and `reset_state()` starts a new stream. `tinylm train lstm --preset
shakespeare-char-lstm` does the same at full size."""),
    ("code", r"""from tinylm.data import CharTokenizer, SequentialBatcher, load_text
from tinylm.evaluate import evaluate_lm
from tinylm.generate import generate
from tinylm.models.rnn_lm import LSTMLM, RecurrentLMConfig
from tinylm.optim import AdamW, clip_grad_norm

text = load_text("tinyshakespeare")
if FAST:
    text = text[:60_000]
tok = CharTokenizer.from_text(text)
ids = np.asarray(tok.encode(text), dtype=np.int64)
split = int(0.9 * len(ids))
train_ids, val_ids = ids[:split], ids[split:]

steps, hidden = (60, 64) if FAST else (1500, 256)
model = LSTMLM(RecurrentLMConfig(vocab_size=tok.vocab_size, n_embd=32, n_hidden=hidden,
                                 n_layer=1, init_range=0.0))
opt = AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
batcher = SequentialBatcher(train_ids, 32, 64)
history = []
for step in range(steps):
    xb, yb, new_epoch = batcher.next_batch()
    if new_epoch:
        model.reset_state()
    _, loss = model.forward(xb, yb)
    model.backward()
    clip_grad_norm(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()
    history.append(float(loss))
val = evaluate_lm(model, val_ids, batch_size=16, block_size=64)
print(f"after {steps} steps: train loss {np.mean(history[-20:]):.3f}, "
      f"validation loss {val['loss']:.3f} nats/char")
plt.figure(figsize=(6, 3))
plt.plot(history)
plt.xlabel("step")
plt.ylabel("training loss")
plt.show()"""),
    ("md", r"""Generation runs through the recurrent state: `start_decoding` reads the prompt once,
then every `decode_step` costs one LSTM step, however long the text already is."""),
    ("code", r"""prompt = np.asarray(tok.encode("ROMEO:\n"), dtype=np.int64)[None, :]
new = generate(model, prompt, 200, np.random.default_rng(1), temperature=0.8)
print("ROMEO:\n" + tok.decode([int(i) for i in new[0]]))"""),
]


if __name__ == "__main__":
    nbformat.write(build_notebook(CELLS), OUT)
    print("wrote", OUT)
