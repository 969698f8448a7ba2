"""The pre-LN Transformer block (chapter 07): the functional pair and the module.

* transformer_block_backward against float64 finite differences (its gradcheck cases, with
  and without dropout), on both kernel paths;
* the functional block equals the module ``Block`` forward and backward, its arguments named
  after the module's parameters (``attn.c_attn.weight`` -> ``attn_c_attn_w``);
* dropout is active in training, off in evaluation, and repeatable.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.functional import transformer_block as TB
from tinylm.functional.transformer_block import transformer_block_backward
from tinylm.nn.transformer import Block

TOL = 1e-7
CASES = TB.gradcheck_cases()


def test_transformer_block_backward_has_gradcheck_cases():
    assert any(case.backward is transformer_block_backward for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_backward_matches_finite_differences(case, kernels):
    report = case.run(seed=1)
    assert report.tolerance <= TOL and report.passed, f"kernels={kernels}\n{report}"


def test_block_parameter_shapes_name_every_module_parameter():
    block = Block(8, 2)
    shapes = {name.replace(".weight", "_w").replace(".bias", "_b").replace(".", "_"): p.data.shape
              for name, p in block.named_parameters()}
    assert shapes == TB.block_parameter_shapes(8)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_module_block_equals_the_functional_block(dropout, kernels, rng, assert_rel_close):
    D, H = 8, 2
    block = Block(D, H, dropout=dropout, seed=3).to(dtype=np.float64)
    x = rng.standard_normal((2, 5, D))
    out = block.forward(x)
    dout = rng.standard_normal(out.shape)
    block.zero_grad()
    dx = block.backward(dout)
    p = {n: q.data for n, q in block.named_parameters()}
    if dropout == 0.0:
        f_out, cache = TB.transformer_block_forward(
            x, p["ln_1.weight"], p["ln_1.bias"], p["attn.c_attn.weight"], p["attn.c_attn.bias"],
            p["attn.c_proj.weight"], p["attn.c_proj.bias"], p["ln_2.weight"], p["ln_2.bias"],
            p["mlp.c_fc.weight"], p["mlp.c_fc.bias"], p["mlp.c_proj.weight"],
            p["mlp.c_proj.bias"], H)
        grads = transformer_block_backward(dout, cache)
        assert_rel_close(out, f_out, 1e-13, "out")
        assert_rel_close(dx, grads[0], 1e-13, "dx")
        assert_rel_close(block.attn.c_attn.weight.grad, grads[3], 1e-13, "dattn_c_attn_w")
        assert_rel_close(block.mlp.c_proj.weight.grad, grads[11], 1e-13, "dmlp_c_proj_w")
    else:                     # dropout is active in training and off in evaluation
        assert not np.allclose(out, block.eval().forward(x))
        np.testing.assert_array_equal(block.forward(x), block.forward(x))


def test_encoder_block_module_equals_the_functional_block(rng, assert_rel_close):
    """causal=False with a key-padding mask: the encoder's block, both ways."""
    D, H = 8, 2
    block = Block(D, H, causal=False, seed=3).to(dtype=np.float64)
    x = rng.standard_normal((2, 5, D))
    mask = np.array([[True] * 5, [True, True, True, False, False]])[:, None, None, :]
    out = block.forward(x, mask)
    dout = rng.standard_normal(out.shape)
    block.zero_grad()
    dx = block.backward(dout)
    weights = [p.data for _, p in block.named_parameters()]
    f_out, cache = TB.transformer_block_forward(x, *weights, H, mask=mask, causal=False)
    grads = transformer_block_backward(dout, cache)
    assert_rel_close(out, f_out, 1e-13, "out")
    assert_rel_close(dx, grads[0], 1e-13, "dx")
    for (name, p), grad in zip(block.named_parameters(), grads[1:]):
        assert_rel_close(p.grad, grad, 1e-13, name)
    assert not np.allclose(out[1], Block(D, H, seed=3).to(dtype=np.float64).forward(x)[1])


@pytest.mark.parametrize("causal, padded", [(True, False), (False, True)])
def test_attention_residual_backward_matches_central_differences(causal, padded, rng):
    """attention_residual_backward, the encoder's (not causal, padding keys masked) and the
    decoder's (causal) use of it, against float64 central differences."""
    from tinylm.gradcheck import check_gradients
    D = 6
    x = rng.standard_normal((2, 4, D))
    keys = np.array([[True] * 4, [True, True, True, False]])
    mask = keys[:, None, None, :] if padded else None
    inputs = {"x": x, "ln_w": 1 + 0.1 * rng.standard_normal(D),
              "ln_b": 0.1 * rng.standard_normal(D),
              "c_attn_w": 0.5 * rng.standard_normal((D, 3 * D)),
              "c_attn_b": 0.1 * rng.standard_normal(3 * D),
              "c_proj_w": 0.5 * rng.standard_normal((D, D)),
              "c_proj_b": 0.1 * rng.standard_normal(D)}
    report = check_gradients(
        lambda **a: TB.attention_residual_forward(**a, n_head=2, mask=mask, causal=causal),
        TB.attention_residual_backward, inputs, title="attention_residual")
    assert report.passed, report


def test_mlp_residual_backward_matches_central_differences(rng):
    from tinylm.gradcheck import check_gradients
    D = 6
    inputs = {"x": rng.standard_normal((2, 3, D)), "ln_w": 1 + 0.1 * rng.standard_normal(D),
              "ln_b": 0.1 * rng.standard_normal(D),
              "c_fc_w": 0.5 * rng.standard_normal((D, 4 * D)),
              "c_fc_b": 0.1 * rng.standard_normal(4 * D),
              "c_proj_w": 0.5 * rng.standard_normal((4 * D, D)),
              "c_proj_b": 0.1 * rng.standard_normal(D)}
    report = check_gradients(TB.mlp_residual_forward, TB.mlp_residual_backward, inputs,
                             title="mlp_residual")
    assert report.passed, report
