"""The recurrent concept, layer by layer: the functional pairs (tinylm/functional/{rnn,lstm,gru}.py),
their numba kernels (tinylm/kernels/recurrent.py) and the multi-layer modules
(tinylm/nn/recurrent.py), each checked by finite differences and against PyTorch.

* float64 finite-difference checks of every backward -- rnn_cell_backward, rnn_backward,
  lstm_cell_backward, lstm_backward, gru_cell_backward, gru_backward -- for every input,
  including the initial states (h0, c0) and, for the LSTM, the cell-state outputs;
* the numba kernels against their references (float64 exactly, float32 to its precision);
* dtype preservation, shape errors, and the truncated-BPTT identities: a sequence run in two
  halves (state carried) equals the whole run, and a cell equals a sequence of length 1;
* against torch.nn.RNN/LSTM/GRU (and their cells), given the same weights (float64, rel
  1e-10): outputs, final states, and the gradients of the inputs, the initial states and
  every parameter. Weight mapping (tinylm/nn/recurrent.py): W_x = weight_ih.T,
  W_h = weight_hh.T, b_x = bias_ih, b_h = bias_hh; the RNN and LSTM functional pairs take
  b = b_x + b_h.

The language models built on them are in tests/test_rnn_lm.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.bench.twins.recurrent import tinylm_state_from_torch
from tinylm.bench.twins.recurrent import torch_recurrent_class as _torch_class
from tinylm.functional import gru, lstm, rnn
from tinylm.functional.gru import gru_backward, gru_cell_backward, gru_cell_forward, gru_forward
from tinylm.functional.lstm import (lstm_backward, lstm_cell_backward, lstm_cell_forward,
                                    lstm_forward)
from tinylm.functional.rnn import (gate_sigmoid, recurrent_inputs, rnn_backward,
                                   rnn_cell_backward, rnn_cell_forward, rnn_forward)
from tinylm.gradcheck import check_gradients
from tinylm.kernels import recurrent as K
from tinylm.kernels.threads import LOOP_THREADS_ENV_VAR
from tinylm.nn.recurrent import GRU, LSTM, RNN

TOLERANCE = 1e-7
GRU_BIASES = ("b_x", "b_h")

# name: (forward, backward, gates, state names, bias names)
CELLS = {
    "rnn_cell": (rnn_cell_forward, rnn_cell_backward, 1, ("h_prev",), ("b",)),
    "lstm_cell": (lstm_cell_forward, lstm_cell_backward, 4, ("h_prev", "c_prev"), ("b",)),
    "gru_cell": (gru_cell_forward, gru_cell_backward, 3, ("h_prev",), GRU_BIASES),
}
SEQUENCES = {
    "rnn": (rnn_forward, rnn_backward, 1, ("h0",), ("b",)),
    "lstm": (lstm_forward, lstm_backward, 4, ("h0", "c0"), ("b",)),
    "gru": (gru_forward, gru_backward, 3, ("h0",), GRU_BIASES),
}


@pytest.mark.parametrize("name", CELLS)
def test_cell_backward_matches_finite_differences(name, kernels, rng):
    forward, backward, G, states, biases = CELLS[name]
    inputs = recurrent_inputs(rng, (3, 4), 5, G, *states, biases=biases)
    report = check_gradients(forward, backward, inputs, tolerance=TOLERANCE, title=name)
    assert report.passed, str(report)
    assert {t.name for t in report.tensors} >= {"x", *states, "W_x", "W_h", *biases}


@pytest.mark.parametrize("name", SEQUENCES)
def test_sequence_backward_matches_finite_differences(name, kernels, rng):
    """BPTT through 6 steps, every input including the initial state(s)."""
    forward, backward, G, states, biases = SEQUENCES[name]
    inputs = recurrent_inputs(rng, (6, 2, 3), 4, G, *states, biases=biases)
    report = check_gradients(forward, backward, inputs, tolerance=TOLERANCE, title=name)
    assert report.passed, str(report)
    assert {t.name for t in report.tensors} >= {"x", *states}


def test_lstm_backward_through_the_final_cell_state_only(rng):
    """dhs = 0 and a gradient on c_T alone: the path a seq2seq encoder's cell state takes."""
    inputs = recurrent_inputs(rng, (5, 2, 3), 4, 4, "h0", "c0")

    def forward(**kw):
        (hs, cs), cache = lstm_forward(**kw)
        return cs[-1], (cache, hs.shape)

    def backward(dc_T, cache):
        cache, shape = cache
        dcs = np.zeros(shape)
        dcs[-1] = dc_T
        return lstm_backward((np.zeros(shape), dcs), cache)

    report = check_gradients(forward, backward, inputs, tolerance=TOLERANCE)
    assert report.passed, str(report)


@pytest.mark.parametrize("name", SEQUENCES)
def test_two_halves_with_carried_state_equal_the_whole_sequence(name, rng):
    """Truncated BPTT's premise: the final state of one window is the next one's start, and
    dL/d(start state) of the second half is what the first half would receive."""
    forward, backward, G, states, biases = SEQUENCES[name]
    inputs = recurrent_inputs(rng, (8, 3, 4), 5, G, *states, biases=biases)
    out, cache = forward(**inputs)
    hs = out[0] if name == "lstm" else out
    dhs = rng.standard_normal(hs.shape)
    full = backward((dhs, None) if name == "lstm" else dhs, cache)

    first = dict(inputs, x=inputs["x"][:4])
    out1, cache1 = forward(**first)
    carried = (out1[0][-1], out1[1][-1]) if name == "lstm" else (out1[-1],)
    second = dict(inputs, x=inputs["x"][4:], **dict(zip(states, carried)))
    out2, cache2 = forward(**second)
    hs_halves = np.concatenate([out1[0], out2[0]]) if name == "lstm" else np.concatenate([out1, out2])
    np.testing.assert_allclose(hs_halves, hs, rtol=0, atol=1e-14)

    g2 = backward((dhs[4:], None) if name == "lstm" else dhs[4:], cache2)
    n = len(states)
    dstate_in = g2[1:1 + n]                                   # gradient reaching the boundary
    if name == "lstm":
        dcs = np.zeros_like(out1[1])
        dcs[-1] = dstate_in[1]
        d_first = dhs[:4].copy()
        d_first[-1] += dstate_in[0]
        g1 = backward((d_first, dcs), cache1)
    else:
        d_first = dhs[:4].copy()
        d_first[-1] += dstate_in[0]
        g1 = backward(d_first, cache1)
    np.testing.assert_allclose(np.concatenate([g1[0], g2[0]]), full[0], atol=1e-13)
    for a, b, c in zip(g1[1 + n:], g2[1 + n:], full[1 + n:]):   # weight gradients add up
        np.testing.assert_allclose(a + b, c, atol=1e-12)
    for a, b in zip(g1[1:1 + n], full[1:1 + n]):                # and dh0 (dc0) agree
        np.testing.assert_allclose(a, b, atol=1e-13)


@pytest.mark.parametrize("cell, sequence", [("rnn_cell", "rnn"), ("lstm_cell", "lstm"),
                                            ("gru_cell", "gru")])
def test_a_cell_is_a_sequence_of_length_one(cell, sequence, rng):
    c_fwd, c_bwd, G, c_states, biases = CELLS[cell]
    s_fwd, s_bwd, _, s_states, _ = SEQUENCES[sequence]
    inputs = recurrent_inputs(rng, (3, 4), 5, G, *c_states, biases=biases)
    renamed = dict(zip(c_states, s_states))                  # h_prev -> h0, c_prev -> c0
    seq_inputs = {renamed.get(k, k): v for k, v in inputs.items()}
    seq_inputs["x"] = inputs["x"][None]                       # [1, B, I]
    out_c, cache_c = c_fwd(**inputs)
    out_s, cache_s = s_fwd(**seq_inputs)
    if cell == "lstm_cell":
        np.testing.assert_allclose(out_s[0][0], out_c[0], atol=1e-15)
        np.testing.assert_allclose(out_s[1][0], out_c[1], atol=1e-15)
        dh, dc = rng.standard_normal((2,) + out_c[0].shape)
        g_c = c_bwd((dh, dc), cache_c)
        g_s = s_bwd((dh[None], dc[None]), cache_s)
    else:
        np.testing.assert_allclose(out_s[0], out_c, atol=1e-15)
        dh = rng.standard_normal(out_c.shape)
        g_c = c_bwd(dh, cache_c)
        g_s = s_bwd(dh[None], cache_s)
    np.testing.assert_allclose(g_s[0][0], g_c[0], atol=1e-14)
    for a, b in zip(g_s[1:], g_c[1:]):
        np.testing.assert_allclose(a, b, atol=1e-14)


@pytest.mark.parametrize("name", SEQUENCES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(name, dtype, kernels, rng):
    forward, backward, G, states, biases = SEQUENCES[name]
    inputs = {k: v.astype(dtype) for k, v in
              recurrent_inputs(rng, (4, 2, 3), 5, G, *states, biases=biases).items()}
    out, cache = forward(**inputs)
    outs = out if name == "lstm" else (out,)
    assert all(o.dtype == dtype for o in outs)
    grads = backward(tuple(np.ones_like(o) for o in outs) if name == "lstm" else np.ones_like(out),
                     cache)
    assert all(g.dtype == dtype for g in grads)


def test_initial_state_none_means_zeros(rng):
    inputs = recurrent_inputs(rng, (4, 2, 3), 5, 4, biases=("b",))
    out_none, _ = lstm_forward(h0=None, c0=None, **inputs)
    zeros = np.zeros((2, 5))
    out_zero, _ = lstm_forward(h0=zeros, c0=zeros, **inputs)
    np.testing.assert_array_equal(out_none[0], out_zero[0])


def test_shape_errors_name_the_problem(rng):
    inputs = recurrent_inputs(rng, (4, 2, 3), 5, 4, "h0", "c0")
    with pytest.raises(ValueError, match="time-major"):
        lstm_forward(**dict(inputs, x=inputs["x"][0]))
    with pytest.raises(ValueError, match="4H"):
        lstm_forward(**dict(inputs, W_h=inputs["W_h"][:, :15]))
    with pytest.raises(ValueError, match="features|batch"):
        lstm_forward(**dict(inputs, x=inputs["x"][..., :2]))
    with pytest.raises(ValueError, match="state"):
        gru_cell_forward(inputs["x"][0], np.zeros((2, 4)), rng.standard_normal((3, 15)),
                         rng.standard_normal((5, 15)), np.zeros(15), np.zeros(15))


# -- kernels: numba against the reference ----------------------------------------------------

def _kernel_cases(rng, dtype, B=5, H=37):
    """Random inputs for each step kernel (H odd, so vector loops have remainders)."""
    r = lambda *shape: (1.5 * rng.standard_normal(shape)).astype(dtype)  # noqa: E731
    gates4 = gate_sigmoid(r(B, 4 * H))                                # plausible activations
    gates3 = gate_sigmoid(r(B, 3 * H))
    return {
        "rnn_step_forward": (lambda: [r(B, H), r(B, H), np.empty((B, H), dtype)], [2]),
        "rnn_step_backward": (lambda: [r(B, H), r(B, H), np.tanh(r(B, H)),
                                       np.empty((B, H), dtype)], [3]),
        "lstm_step_forward": (lambda: [r(B, 4 * H), r(B, 4 * H), r(B, H)]
                              + [np.empty((B, H), dtype) for _ in range(3)], [0, 3, 4, 5]),
        "lstm_step_backward": (lambda: [r(B, H), r(B, H), r(B, H), gates4.copy(), r(B, H),
                                        np.tanh(r(B, H)), np.empty((B, 4 * H), dtype)], [2, 6]),
        "gru_step_forward": (lambda: [r(B, 3 * H), r(B, 3 * H), r(3 * H), r(B, H),
                                      np.empty((B, H), dtype), np.empty((B, H), dtype)], [0, 4, 5]),
        "gru_step_backward": (lambda: [r(B, H), r(B, H), gates3.copy(), r(B, H), r(B, H),
                                       np.empty((B, 3 * H), dtype), np.empty((B, 3 * H), dtype)],
                              [1, 5, 6]),
    }


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-14), (np.float32, 2e-6)])
@pytest.mark.parametrize("kernel", ["rnn_step_forward", "rnn_step_backward", "lstm_step_forward",
                                    "lstm_step_backward", "gru_step_forward", "gru_step_backward"])
def test_numba_kernels_agree_with_their_references(kernel, dtype, tol, rng):
    pytest.importorskip("numba")
    make, written = _kernel_cases(rng, dtype)[kernel]
    args = make()
    ref_args = [a.copy() for a in args]
    getattr(K, kernel)(*args)
    cell = {"rnn": rnn, "lstm": lstm, "gru": gru}[kernel.split("_")[0]]
    getattr(cell, f"{kernel}_reference")(*ref_args)
    for i in written:
        assert args[i].dtype == dtype
        scale = max(1.0, float(np.abs(ref_args[i]).max()))
        err = float(np.abs(args[i].astype(np.float64) - ref_args[i].astype(np.float64)).max())
        assert err <= tol * scale, f"{kernel} output {i}: error {err:.2e}"


def test_fast_float32_tanh_is_accurate_everywhere():
    """The rational tanh used by the float32 kernels, over the whole float32 range that
    matters (it saturates to +-1 beyond |x| = 7.9)."""
    pytest.importorskip("numba")
    x = np.linspace(-12, 12, 200001).astype(np.float32)
    h = np.empty_like(x)[None]
    K.rnn_step_forward(x[None], np.zeros_like(x)[None], h)
    err = np.abs(h[0].astype(np.float64) - np.tanh(x.astype(np.float64)))
    assert err.max() < 5e-7
    assert np.all(np.abs(h) <= 1.0)


def test_the_time_loop_threading_choice_does_not_change_the_results(monkeypatch, rng):
    inputs = recurrent_inputs(rng, (6, 16, 8), 32, 4, "h0", "c0")
    results = []
    for choice in ("1", "blas", "auto"):
        monkeypatch.setenv(LOOP_THREADS_ENV_VAR, choice)
        (hs, cs), cache = lstm_forward(**inputs)
        results.append((hs, lstm_backward((np.ones_like(hs), None), cache)[3]))
    for hs, dW_x in results[1:]:
        np.testing.assert_allclose(hs, results[0][0], atol=1e-13)
        np.testing.assert_allclose(dW_x, results[0][1], atol=1e-11)
    monkeypatch.setenv(LOOP_THREADS_ENV_VAR, "many")
    with pytest.raises(ValueError, match="TINYLM_LOOP_THREADS"):
        lstm_forward(**inputs)


# -- against PyTorch -------------------------------------------------------------------------

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
