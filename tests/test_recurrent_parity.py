"""tinylm's RNN, LSTM and GRU against PyTorch's, given the same weights (float64, rel 1e-10):
outputs, final states, and the gradients of the inputs, the initial states and every
parameter. Then the language models against an Embedding + LSTM + Linear twin, including a
few optimizer steps of truncated BPTT with the state carried (detached) across batches.

Weight mapping (see tinylm/nn/recurrent.py): W_x = weight_ih.T, W_h = weight_hh.T,
b_x = bias_ih, b_h = bias_hh; the RNN and LSTM functional pairs take b = b_x + b_h.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.bench.twins.recurrent import (lm_state_from_twin, recurrent_lm_twin,
                                           tinylm_state_from_torch)
from tinylm.bench.twins.recurrent import torch_recurrent_class as _torch_class
from tinylm.bench.twins.recurrent import twin_lm_loss as _torch_lm_loss
from tinylm.functional.gru import gru_backward, gru_cell_backward, gru_cell_forward, gru_forward
from tinylm.functional.lstm import (lstm_backward, lstm_cell_backward, lstm_cell_forward,
                                    lstm_forward)
from tinylm.functional.rnn import rnn_backward, rnn_cell_backward, rnn_cell_forward, rnn_forward
from tinylm.models.rnn_lm import GRULM, LSTMLM, RNNLM, RecurrentLMConfig
from tinylm.nn.recurrent import GRU, LSTM, RNN
from tinylm.optim import SGD, AdamW, clip_grad_norm

REL = 1e-10
KINDS = ["rnn", "lstm", "gru"]


def _np(t):
    return t.detach().numpy().copy()      # a copy: load_state_dict may keep the array itself


def assert_grads_match(ours: dict, module, layers: int, assert_rel_close, prefix=""):
    for l in range(layers):
        grad = lambda name: _np(getattr(module, f"{name}_l{l}").grad)  # noqa: E731
        assert_rel_close(ours[f"{prefix}W_x_l{l}"].grad, grad("weight_ih").T, REL, f"W_x_l{l}")
        assert_rel_close(ours[f"{prefix}W_h_l{l}"].grad, grad("weight_hh").T, REL, f"W_h_l{l}")
        assert_rel_close(ours[f"{prefix}b_x_l{l}"].grad, grad("bias_ih"), REL, f"b_x_l{l}")
        assert_rel_close(ours[f"{prefix}b_h_l{l}"].grad, grad("bias_hh"), REL, f"b_h_l{l}")


# -- functional: one step and one layer over a sequence ------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_cells_match_torch(kind, torch, rng, kernels, assert_rel_close):
    B, I, H = 4, 5, 6
    torch.manual_seed(0)
    cell = _torch_class(torch, kind, cell=True)(I, H).double()
    x, h = rng.standard_normal((B, I)), rng.standard_normal((B, H))
    c = rng.standard_normal((B, H))
    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    W_x, W_h = _np(cell.weight_ih).T, _np(cell.weight_hh).T
    b_ih, b_hh = _np(cell.bias_ih), _np(cell.bias_hh)
    dh, dc = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    if kind == "lstm":
        (h1, c1), cache = lstm_cell_forward(x, h, c, W_x, W_h, b_ih + b_hh)
        t_h1, t_c1 = cell(tx, (th, tc))
        ((t_h1 * torch.tensor(dh)).sum() + (t_c1 * torch.tensor(dc)).sum()).backward()
        grads = lstm_cell_backward((dh, dc), cache)
        assert_rel_close(c1, _np(t_c1), REL, "c")
        assert_rel_close(grads[2], _np(tc.grad), REL, "dc_prev")
        grads = grads[:2] + grads[3:]
    else:
        if kind == "rnn":
            h1, cache = rnn_cell_forward(x, h, W_x, W_h, b_ih + b_hh)
        else:
            h1, cache = gru_cell_forward(x, h, W_x, W_h, b_ih, b_hh)
        t_h1 = cell(tx, th)
        (t_h1 * torch.tensor(dh)).sum().backward()
        grads = (rnn_cell_backward if kind == "rnn" else gru_cell_backward)(dh, cache)
    assert_rel_close(h1, _np(t_h1), REL, "h")
    assert_rel_close(grads[0], _np(tx.grad), REL, "dx")
    assert_rel_close(grads[1], _np(th.grad), REL, "dh_prev")
    assert_rel_close(grads[2], _np(cell.weight_ih.grad).T, REL, "dW_x")
    assert_rel_close(grads[3], _np(cell.weight_hh.grad).T, REL, "dW_h")
    assert_rel_close(grads[4], _np(cell.bias_ih.grad), REL, "db(_x)")


@pytest.mark.parametrize("kind", KINDS)
def test_sequence_functions_match_torch(kind, torch, rng, kernels, assert_rel_close):
    """One layer, time-major, with initial states and gradients on the final states."""
    T, B, I, H = 7, 3, 4, 5
    torch.manual_seed(1)
    module = _torch_class(torch, kind)(I, H).double()
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    dhs, dh_T, dc_T = rng.standard_normal((T, B, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0[None], c0[None]))
    W_x, W_h = _np(module.weight_ih_l0).T, _np(module.weight_hh_l0).T
    b_ih, b_hh = _np(module.bias_ih_l0), _np(module.bias_hh_l0)
    if kind == "lstm":
        t_out, (t_h, t_c) = module(tx, (th0, tc0))
    else:
        t_out, t_h = module(tx, th0)
    loss = (t_out * torch.tensor(dhs)).sum() + (t_h[0] * torch.tensor(dh_T)).sum()
    if kind == "lstm":
        loss = loss + (t_c[0] * torch.tensor(dc_T)).sum()
    loss.backward()

    d_out = dhs.copy()
    d_out[-1] += dh_T                       # the final state is the last output
    if kind == "lstm":
        (hs, cs), cache = lstm_forward(x, h0, c0, W_x, W_h, b_ih + b_hh)
        dcs = np.zeros_like(cs)
        dcs[-1] = dc_T
        dx, dh0, dc0, dW_x, dW_h, db = lstm_backward((d_out, dcs), cache)
        assert_rel_close(cs[-1], _np(t_c[0]), REL, "c_T")
        assert_rel_close(dc0, _np(tc0.grad[0]), REL, "dc0")
    elif kind == "rnn":
        hs, cache = rnn_forward(x, h0, W_x, W_h, b_ih + b_hh)
        dx, dh0, dW_x, dW_h, db = rnn_backward(d_out, cache)
    else:
        hs, cache = gru_forward(x, h0, W_x, W_h, b_ih, b_hh)
        dx, dh0, dW_x, dW_h, db, db_h = gru_backward(d_out, cache)
        assert_rel_close(db_h, _np(module.bias_hh_l0.grad), REL, "db_h")
    assert_rel_close(hs, _np(t_out), REL, "hs")
    assert_rel_close(hs[-1], _np(t_h[0]), REL, "h_T")
    assert_rel_close(dx, _np(tx.grad), REL, "dx")
    assert_rel_close(dh0, _np(th0.grad[0]), REL, "dh0")
    assert_rel_close(dW_x, _np(module.weight_ih_l0.grad).T, REL, "dW_x")
    assert_rel_close(dW_h, _np(module.weight_hh_l0.grad).T, REL, "dW_h")
    assert_rel_close(db, _np(module.bias_ih_l0.grad), REL, "db")


# -- modules: multi-layer, batch-first, states in and out ------------------------------------------

LAYER_CLASSES = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [True, False])
def test_multilayer_modules_match_torch(kind, batch_first, torch, rng, kernels, assert_rel_close):
    T, B, I, H, L = 6, 3, 4, 5, 3
    torch.manual_seed(2)
    module = _torch_class(torch, kind)(I, H, L, batch_first=batch_first).double()
    ours = LAYER_CLASSES[kind](I, H, L, batch_first=batch_first).to(dtype=np.float64)
    ours.load_state_dict(tinylm_state_from_torch(module, L))

    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    h0, c0 = rng.standard_normal((L, B, H)), rng.standard_normal((L, B, H))
    dy = rng.standard_normal(x.shape[:2] + (H,))
    dh_T, dc_T = rng.standard_normal((L, B, H)), rng.standard_normal((L, B, H))
    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    state = (h0, c0) if kind == "lstm" else h0
    dstate = (dh_T, dc_T) if kind == "lstm" else dh_T

    y, final = ours.forward(x, state)
    dx, dstate0 = ours.backward(dy, dstate)
    t_y, t_final = module(tx, (th0, tc0) if kind == "lstm" else th0)
    loss = (t_y * torch.tensor(dy)).sum()
    t_finals = t_final if kind == "lstm" else (t_final,)
    for t_s, d in zip(t_finals, dstate if kind == "lstm" else (dstate,)):
        loss = loss + (t_s * torch.tensor(d)).sum()
    loss.backward()

    assert_rel_close(y, _np(t_y), REL, "y")
    finals = final if kind == "lstm" else (final,)
    for k, (ours_s, t_s) in enumerate(zip(finals, t_finals)):
        assert_rel_close(ours_s, _np(t_s), REL, f"final state {k}")
    assert_rel_close(dx, _np(tx.grad), REL, "dx")
    dstates0 = dstate0 if kind == "lstm" else (dstate0,)
    for k, (ours_d, t_in) in enumerate(zip(dstates0, (th0, tc0))):
        assert_rel_close(ours_d, _np(t_in.grad), REL, f"d initial state {k}")
    assert_grads_match(dict(ours.named_parameters()), module, L, assert_rel_close)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_modules_track_torch_float32(kind, torch, rng, assert_rel_close):
    """The float32 kernels (fast rational tanh) stay within float32 noise of PyTorch."""
    T, B, I, H, L = 20, 8, 16, 32, 2
    torch.manual_seed(3)
    module = _torch_class(torch, kind)(I, H, L, batch_first=True)
    ours = LAYER_CLASSES[kind](I, H, L)
    ours.load_state_dict(tinylm_state_from_torch(module, L))
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    dy = rng.standard_normal((B, T, H)).astype(np.float32)
    y, _ = ours.forward(x)
    dx, _ = ours.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    t_y, _ = module(tx)
    (t_y * torch.tensor(dy)).sum().backward()
    assert y.dtype == np.float32 and dx.dtype == np.float32
    assert_rel_close(y, _np(t_y), 1e-5, "y")
    assert_rel_close(dx, _np(tx.grad), 1e-4, "dx")


# -- language models ---------------------------------------------------------------------------

LM_CLASSES = {"rnn": RNNLM, "lstm": LSTMLM, "gru": GRULM}


def _lm_pair(torch, kind, V=13, E=6, H=6, L=2, tie=False, seed=0):
    """A float64 tinylm LM and its torch twin (Embedding, RNN stack, Linear), same weights."""
    twin = recurrent_lm_twin(torch, kind, V, E, H, L, tie=tie, seed=seed)
    config = RecurrentLMConfig(vocab_size=V, n_embd=E, n_hidden=H, n_layer=L, tie_weights=tie)
    model = LM_CLASSES[kind](config).to(dtype=np.float64)
    model.load_state_dict(lm_state_from_twin(twin, L, tie))
    return model, twin


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("V", [13, 40], ids=["folded embedding (V <= B*T)", "V > B*T"])
def test_language_model_matches_torch_twin(kind, tie, V, torch, rng, kernels, assert_rel_close):
    model, twin = _lm_pair(torch, kind, V=V, tie=tie)
    idx, targets = rng.integers(0, V, (3, 9)), rng.integers(0, V, (3, 9))
    logits, loss = model.forward(idx, targets)
    model.backward()
    t_logits, t_loss, _ = _torch_lm_loss(torch, twin, idx, targets)
    t_loss.backward()
    assert_rel_close(logits, _np(t_logits), REL, "logits")
    assert_rel_close(loss, t_loss.item(), REL, "loss")
    emb, rnn, head = twin
    params = dict(model.named_parameters())
    assert_rel_close(params["embedding.weight"].grad, _np(emb.weight.grad), REL, "embedding")
    assert_rel_close(params["b_out"].grad, _np(head.bias.grad), REL, "b_out")
    if not tie:
        assert_rel_close(params["w_out"].grad, _np(head.weight.grad).T, REL, "w_out")
    assert_grads_match(params, rnn, 2, assert_rel_close, prefix="rnn.")


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_truncated_bptt_training_steps_match_torch(optimizer, torch, rng, assert_rel_close):
    """Four steps over consecutive windows of one stream: state carried and detached,
    gradients clipped by global norm, then SGD or AdamW -- losses and weights agree."""
    model, twin = _lm_pair(torch, "lstm", V=11, E=5, H=7, L=2, seed=4)
    params = [p for _, p in model.named_parameters()]
    t_params = [*twin[0].parameters(), *twin[1].parameters(), *twin[2].parameters()]
    if optimizer == "sgd":
        opt, t_opt = SGD(params, lr=0.5), torch.optim.SGD(t_params, lr=0.5)
    else:
        opt = AdamW(params, lr=0.01, weight_decay=0.1)
        t_opt = torch.optim.AdamW(t_params, lr=0.01, weight_decay=0.1)
    stream = rng.integers(0, 11, (4, 4 * 6 + 1))           # B = 4 rows, 4 windows of T = 6
    t_state = None
    for k in range(4):
        x, y = stream[:, 6 * k:6 * k + 6], stream[:, 6 * k + 1:6 * k + 7]
        _, loss = model.forward(x, y)
        model.backward()
        clip_grad_norm(params, 0.5)
        opt.step()
        opt.zero_grad()
        _, t_loss, t_state = _torch_lm_loss(torch, twin, x, y, t_state)
        t_state = tuple(s.detach() for s in t_state)
        t_opt.zero_grad()
        t_loss.backward()
        torch.nn.utils.clip_grad_norm_(t_params, 0.5)
        t_opt.step()
        assert_rel_close(loss, t_loss.item(), REL, f"loss at step {k}")
    assert_rel_close(dict(model.named_parameters())["rnn.W_h_l1"].data,
                     _np(twin[1].weight_hh_l1).T, REL, "W_h_l1 after 4 steps")
    assert_rel_close(dict(model.named_parameters())["embedding.weight"].data,
                     _np(twin[0].weight), REL, "embedding after 4 steps")
