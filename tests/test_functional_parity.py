"""Parity with PyTorch: same inputs -> same outputs and same input/parameter gradients.

Each op runs forward and backward in tinylm and in torch (CPU) with one random upstream
gradient G; torch's gradients come from autograd on sum(out * G). float64 must agree to
1e-10 relative (max|ours - torch| / max|torch|), float32 to 1e-5, on both kernel paths.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinylm.functional as F

REL = {np.float64: 1e-10, np.float32: 1e-5}


def _padded_targets(rng, shape, vocab_size):
    targets = rng.integers(0, vocab_size, size=shape)
    targets[..., ::4] = -100
    return targets


# name -> (tinylm forward, tinylm backward, torch function of the same keyword arguments,
#          inputs builder, names of the differentiable inputs in backward order)
OPS = {
    "linear": (F.linear_forward, F.linear_backward,
               lambda tF, x, W, b: tF.linear(x, W.T, b),
               lambda rng: {"x": rng.standard_normal((5, 4)), "W": rng.standard_normal((4, 3)),
                            "b": rng.standard_normal(3)}, ("x", "W", "b")),
    "linear[no bias, 3-D]": (F.linear_forward, F.linear_backward,
                             lambda tF, x, W: tF.linear(x, W.T),
                             lambda rng: {"x": rng.standard_normal((2, 5, 4)),
                                          "W": rng.standard_normal((4, 3))}, ("x", "W")),
    "sigmoid": (F.sigmoid_forward, F.sigmoid_backward, lambda tF, x: tF.sigmoid(x),
                lambda rng: {"x": 4.0 * rng.standard_normal((4, 6))}, ("x",)),
    "tanh": (F.tanh_forward, F.tanh_backward, lambda tF, x: tF.tanh(x),
             lambda rng: {"x": 2.0 * rng.standard_normal((4, 6))}, ("x",)),
    "relu": (F.relu_forward, F.relu_backward, lambda tF, x: tF.relu(x),
             lambda rng: {"x": rng.standard_normal((4, 6))}, ("x",)),
    "gelu[tanh]": (lambda x: F.gelu_forward(x, "tanh"), F.gelu_backward,
                   lambda tF, x: tF.gelu(x, approximate="tanh"),
                   lambda rng: {"x": 3.0 * rng.standard_normal((3, 33))}, ("x",)),
    "gelu[none]": (lambda x: F.gelu_forward(x, "none"), F.gelu_backward,
                   lambda tF, x: tF.gelu(x, approximate="none"),
                   lambda rng: {"x": 3.0 * rng.standard_normal((3, 33))}, ("x",)),
    "softmax": (F.softmax_forward, F.softmax_backward, lambda tF, z: tF.softmax(z, dim=-1),
                lambda rng: {"z": 3.0 * rng.standard_normal((2, 3, 7))}, ("z",)),
    "log_softmax": (F.log_softmax_forward, F.log_softmax_backward,
                    lambda tF, z: tF.log_softmax(z, dim=-1),
                    lambda rng: {"z": 3.0 * rng.standard_normal((2, 3, 7))}, ("z",)),
    "cross_entropy[ignore_index]": (
        F.cross_entropy_forward, F.cross_entropy_backward,
        lambda tF, logits, targets: tF.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                     targets.reshape(-1), ignore_index=-100,
                                                     reduction="mean"),
        lambda rng: {"logits": 3.0 * rng.standard_normal((3, 5, 11)),
                     "targets": _padded_targets(rng, (3, 5), 11)}, ("logits",)),
    "mse": (F.mse_forward, F.mse_backward, lambda tF, pred, target: tF.mse_loss(pred, target),
            lambda rng: {"pred": rng.standard_normal((4, 5)),
                         "target": rng.standard_normal((4, 5))}, ("pred", "target")),
    "embedding[repeated ids]": (F.embedding_forward, F.embedding_backward,
                                lambda tF, ids, W: tF.embedding(ids, W),
                                lambda rng: {"ids": rng.integers(0, 4, size=(3, 6)),
                                             "W": rng.standard_normal((5, 7))}, ("W",)),
    "layernorm": (F.layernorm_forward, F.layernorm_backward,
                  lambda tF, x, gamma, beta: tF.layer_norm(x, (x.shape[-1],), gamma, beta, 1e-5),
                  lambda rng: {"x": 2.0 + 3.0 * rng.standard_normal((2, 4, 10)),
                               "gamma": rng.standard_normal(10), "beta": rng.standard_normal(10)},
                  ("x", "gamma", "beta")),
}


def _cast(inputs, dtype):
    return {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in inputs.items()}


def _torch_run(torch, fn, inputs, wrt, upstream):
    tensors = {k: torch.tensor(v, requires_grad=k in wrt) for k, v in inputs.items()}
    out = fn(torch.nn.functional, **tensors)
    (out * torch.tensor(upstream)).sum().backward()
    return out.detach().numpy(), [tensors[k].grad.numpy() for k in wrt]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(OPS))
def test_outputs_and_gradients_match_torch(name, dtype, kernels, torch, rng, assert_rel_close):
    forward, backward, torch_fn, make_inputs, wrt = OPS[name]
    inputs = _cast(make_inputs(rng), dtype)
    out, cache = forward(**inputs)
    upstream = rng.standard_normal(np.shape(out)).astype(dtype)
    grads = backward(upstream if np.ndim(out) else dtype(upstream), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)

    torch_out, torch_grads = _torch_run(torch, torch_fn, inputs, wrt, upstream)

    assert np.asarray(out).dtype == dtype, "the output must keep the input's dtype"
    assert_rel_close(out, torch_out, REL[dtype], f"{name} output")
    for input_name, ours, theirs in zip(wrt, grads, torch_grads):
        assert ours.dtype == dtype, f"d{input_name} must keep the input's dtype"
        assert_rel_close(ours, theirs, REL[dtype], f"{name} d{input_name}")


def test_sigmoid_and_softmax_survive_extreme_inputs(torch, assert_rel_close):
    x = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    s, _ = F.sigmoid_forward(x)
    assert np.all(np.isfinite(s))
    assert_rel_close(s, torch.sigmoid(torch.tensor(x)).numpy(), 1e-15)
    z = np.array([[1000.0, 999.0, -1000.0]])
    p, _ = F.softmax_forward(z)
    logp, _ = F.log_softmax_forward(z)
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(logp))
    assert_rel_close(logp, torch.log_softmax(torch.tensor(z), -1).numpy(), 1e-15)
