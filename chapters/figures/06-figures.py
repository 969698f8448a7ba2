"""Draws the figures of chapter 06 (chapters/figures/06-*.png) with tinylm's recurrent layers.

    .venv/bin/python chapters/figures/06-figures.py            # all figures
    .venv/bin/python chapters/figures/06-figures.py ptb RUN    # only the PTB curve, from RUN/ckpt.json

* 06-vanishing-gradients.png: how much of the gradient of a loss at the last step reaches
  the input k steps earlier, ||dL/dx_{T-k}|| / ||dL/dx_T||, for RNN, LSTM and GRU -- at
  initialisation (left) and after a short training run as character LMs (right).
* 06-ptb-perplexity.png: validation perplexity per epoch of the ptb-small run, against
  Zaremba et al.'s final figures.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinylm.data import CharTokenizer, SequentialBatcher, load_text  # noqa: E402
from tinylm.models.rnn_lm import GRULM, LSTMLM, RNNLM, RecurrentLMConfig  # noqa: E402
from tinylm.nn.recurrent import GRU, LSTM, RNN  # noqa: E402
from tinylm.optim import AdamW, clip_grad_norm  # noqa: E402

HERE = Path(__file__).resolve().parent
COLORS = {"RNN": "tab:red", "LSTM": "tab:blue", "GRU": "tab:green"}


def gradient_vs_distance(layer, x, rng):
    """||dL/dx_t|| for L = <g, h_T> with a random unit g per sequence, averaged over the
    batch; x is time-major [T, B, I]. Returns the norms indexed by distance k = T - 1 - t."""
    hs, _ = layer.forward(x)
    dhs = np.zeros_like(hs)
    g = rng.standard_normal(hs.shape[1:])
    dhs[-1] = g / np.linalg.norm(g, axis=1, keepdims=True)
    dx, _ = layer.backward(dhs)
    norms = np.linalg.norm(dx, axis=2)              # [T, B]
    return norms.mean(axis=1)[::-1]                 # distance 0, 1, ..., T-1


def at_initialisation(T=100, B=32, H=128, draws=4):
    rng = np.random.default_rng(0)
    curves = {}
    for name, cls, forget_bias in [("RNN", RNN, None), ("LSTM", LSTM, None), ("GRU", GRU, None),
                                   ("LSTM, forget bias +2", LSTM, 2.0)]:
        runs = []
        for seed in range(draws):
            layer = cls(H, H, batch_first=False, seed=seed).to(dtype=np.float64)
            if forget_bias is not None:        # gate block f is the second of (i, f, g, o)
                layer.b_x_l0.data[H:2 * H] += forget_bias
            x = rng.standard_normal((T, B, H))
            norms = gradient_vs_distance(layer, x, rng)
            runs.append(norms / norms[0])
        curves[name] = np.exp(np.mean(np.log(runs), axis=0))      # geometric mean
    return curves


def train_char_lm(cls, ids, steps, H=128, seed=0):
    model = cls(RecurrentLMConfig(vocab_size=int(ids.max()) + 1, n_embd=32, n_hidden=H,
                                  n_layer=1, init_range=0.0, seed=seed))
    opt = AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    batcher = SequentialBatcher(ids, 32, 64)
    losses = []
    for _ in range(steps):
        x, y, new_epoch = batcher.next_batch()
        if new_epoch:
            model.reset_state()
        _, loss = model.forward(x, y)
        model.backward()
        clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    return model, float(np.mean(losses[-50:]))


def trained_gradients(model, ids, T=100, B=32, seed=0):
    """||dL_T/de_t||: gradient of the last position's cross-entropy with respect to the
    embedded input t steps back, on text windows, relative to distance 0."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(ids) - T - 1, B)
    idx = np.stack([ids[s:s + T] for s in starts])                     # [B, T]
    target = np.array([ids[s + T] for s in starts])                    # [B]
    model.eval()
    x = model.embedding.weight.data[idx.T].astype(np.float64)          # [T, B, d]
    layer = model.rnn.to(dtype=np.float64)
    hs, _ = layer.forward(x)
    W, b = model.w_out.data.astype(np.float64), model.b_out.data.astype(np.float64)
    logits = hs[-1] @ W + b                                            # [B, V]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(B), target] -= 1.0                                     # dL/dlogits
    dhs = np.zeros_like(hs)
    dhs[-1] = p @ W.T
    dx, _ = layer.backward(dhs)
    norms = np.linalg.norm(dx, axis=2).mean(axis=1)[::-1]
    return norms / norms[0]


def vanishing_figure(train_steps=400):
    init = at_initialisation()
    text = load_text("tinyshakespeare")
    tokenizer = CharTokenizer.from_text(text)
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    train_ids, val_ids = ids[: int(0.9 * len(ids))], ids[int(0.9 * len(ids)):]
    trained = {}
    for name, cls in [("RNN", RNNLM), ("LSTM", LSTMLM), ("GRU", GRULM)]:
        model, loss = train_char_lm(cls, train_ids, train_steps)
        trained[f"{name} (train loss {loss:.2f})"] = trained_gradients(model, val_ids)
        print(f"{name}: final training loss {loss:.3f}")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for name, curve in init.items():
        color = COLORS[name.split(",")[0]]
        axes[0].semilogy(curve, color=color, ls="--" if "bias" in name else "-", label=name)
    for name, curve in trained.items():
        axes[1].semilogy(curve, color=COLORS[name.split()[0]], label=name)
    axes[0].set_title("at initialisation (PyTorch's default init)")
    axes[1].set_title(f"character LMs after {train_steps} AdamW steps")
    for ax in axes:
        ax.set_xlabel("distance back in time k")
        ax.set_ylim(1e-12, 3)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel(r"$\|\partial L / \partial x_{T-k}\| \;/\; \|\partial L / \partial x_T\|$")
    fig.tight_layout()
    fig.savefig(HERE / "06-vanishing-gradients.png", dpi=100)
    return init, trained


def ptb_figure(run_dir):
    meta = json.loads((Path(run_dir) / "ckpt.json").read_text())
    evals = meta["meta"]["run"]["evals"] if "meta" in meta else meta["run"]["evals"]
    steps_per_epoch = meta.get("train_config", meta.get("meta", {}).get("train_config", {})).get(
        "eval_interval", 2323)
    epochs = [e["iter"] / steps_per_epoch for e in evals]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(epochs[1:], [e["val_perplexity"] for e in evals[1:]], "o-", label="tinylm validation")
    train = [np.exp(e["train_loss"]) for e in evals[1:] if e["train_loss"] is not None]
    ax.plot(epochs[1:len(train) + 1], train, "s--", label="tinylm training (mean of epoch)")
    ax.axhline(120.7, color="0.4", ls=":", label="Zaremba et al. validation 120.7")
    ax.axhline(114.5, color="0.2", ls="-.", label="Zaremba et al. test 114.5")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    ax.set_yscale("log")
    ax.set_ylim(35, 320)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("PTB, 2 x 200 LSTM (Zaremba et al.'s small configuration)")
    fig.tight_layout()
    fig.savefig(HERE / "06-ptb-perplexity.png", dpi=100)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "ptb":
        ptb_figure(sys.argv[2])
    else:
        vanishing_figure()
