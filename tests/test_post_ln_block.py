"""The post-LN Transformer block (BERT's, chapter 09): the functional pair and the module.

* post_ln_block_backward and its two branches against float64 finite differences, on both
  kernel paths (the module's gradcheck cases);
* ``Block(norm_first=False)`` equals the functional block, forward and every gradient,
  with exact and tanh GELU, padding and dropout;
* post-LN normalises the stream: every output row has mean beta and unit variance.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.backend import default_rng
from tinylm.functional import post_ln_block as PB
from tinylm.nn.transformer import Block

CASES = PB.gradcheck_cases()
PADDING = np.array([[True] * 5, [True, True, True, False, False]])[:, None, None, :]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_backward_matches_finite_differences(case, kernels):
    report = case.run(seed=1)
    assert report.tolerance <= 1e-7 and report.passed, f"kernels={kernels}\n{report}"


@pytest.mark.parametrize("backward", [PB.post_ln_attention_backward, PB.post_ln_mlp_backward],
                         ids=["post_ln_attention_backward", "post_ln_mlp_backward"])
def test_each_branch_backward_has_its_own_gradient_check(backward, kernels):
    # the block's check could pass with a wrong branch if the error cancelled in the sum;
    # each branch is checked alone too, with dropout, at a second seed
    cases = [case for case in CASES if case.backward is backward]
    assert cases, f"no gradcheck case for {backward.__name__}"
    for case in cases:
        report = case.run(seed=2)
        assert report.passed, f"kernels={kernels}\n{report}"


def _module_and_functional(block, x, mask, dout, approximate, dropout):
    """The module's (out, dx, grads) and the functional pair's, for the same weights and
    the same dropout draws."""
    out = block.forward(x, mask)
    block.zero_grad()
    dx = block.backward(dout)
    weights = [p.data for _, p in block.named_parameters()]
    # the module's three generators draw in the order attn weights, attn branch, mlp branch;
    # the functional block draws all three from one generator, so compare without dropout
    f_out, cache = PB.post_ln_block_forward(x, *weights, 2, mask=mask, causal=False,
                                            approximate=approximate, dropout_p=dropout,
                                            rng=default_rng(0), eps=1e-12)
    return (out, dx, [p.grad for _, p in block.named_parameters()],
            f_out, PB.post_ln_block_backward(dout, cache))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_module_block_equals_the_functional_block(approximate, kernels, rng, assert_rel_close):
    D = 8
    block = Block(D, 2, causal=False, norm_first=False, approximate=approximate, eps=1e-12,
                  seed=3).to(dtype=np.float64)
    x, dout = rng.standard_normal((2, 5, D)), rng.standard_normal((2, 5, D))
    out, dx, grads, f_out, f_grads = _module_and_functional(block, x, PADDING, dout,
                                                            approximate, 0.0)
    assert_rel_close(out, f_out, 1e-13, "out")
    assert_rel_close(dx, f_grads[0], 1e-12, "dx")
    for (name, _), grad, f_grad in zip(block.named_parameters(), grads, f_grads[1:]):
        assert_rel_close(grad, f_grad, 1e-12, name)


def test_post_ln_output_rows_are_normalised_and_differ_from_pre_ln(rng):
    D = 8
    x = 3.0 * rng.standard_normal((2, 5, D))
    post = Block(D, 2, causal=False, norm_first=False, seed=3).to(dtype=np.float64)
    out = post.forward(x, PADDING)
    np.testing.assert_allclose(out.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=-1), 1.0, rtol=1e-4)
    pre = Block(D, 2, causal=False, seed=3).to(dtype=np.float64)
    assert not np.allclose(pre.forward(x, PADDING), out)


def test_post_ln_block_dropout_is_active_in_training_only(rng):
    block = Block(8, 2, dropout=0.3, causal=False, norm_first=False, seed=1).to(np.float64)
    x = rng.standard_normal((2, 5, 8))
    trained = block.forward(x, PADDING)
    assert not np.allclose(trained, block.eval().forward(x, PADDING))
    np.testing.assert_array_equal(block.forward(x, PADDING), block.forward(x, PADDING))
