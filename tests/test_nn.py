"""Modules: registration, traversal, modes, checkpoints, composition, learning, and parity
of a whole MLP with its PyTorch twin."""

from __future__ import annotations

import numpy as np
import pytest

import tinylm.functional as F
from tinylm import nn


def _mlp(rng, sizes=(4, 8, 3), dtype=np.float64):
    """Linear -> Tanh -> Linear, float64 by default."""
    return nn.Sequential(nn.Linear(sizes[0], sizes[1], rng=rng), nn.Tanh(),
                         nn.Linear(sizes[1], sizes[2], rng=rng)).to(dtype)


class Block(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.norm = nn.LayerNorm(4)
        self.proj = nn.Linear(4, 4, rng=rng)
        self.drop = nn.Dropout(0.5)
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))


# -- registration and traversal ------------------------------------------------------------------

def test_parameters_are_listed_own_first_then_children_in_assignment_order(rng):
    names = [name for name, _ in Block(rng).named_parameters()]
    assert names == ["scale", "norm.weight", "norm.bias", "proj.weight", "proj.bias"]


def test_reassigning_an_attribute_keeps_its_place_or_unregisters_it(rng):
    block = Block(rng)
    block.norm = nn.LayerNorm(4)                            # replaced: stays first
    assert [n for n, _ in block.named_modules()] == ["", "norm", "proj", "drop"]
    block.proj = None                                       # no longer a module
    assert [n for n, _ in block.named_parameters()] == ["scale", "norm.weight", "norm.bias"]


def test_forgetting_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(RuntimeError, match="super\\(\\).__init__"):
        Broken()


def test_shared_parameters_are_counted_once(rng):
    model = nn.Sequential(nn.Linear(3, 3, rng=rng), nn.Linear(3, 3, rng=rng))
    model[1].weight = model[0].weight                       # tied weights
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.bias"]
    assert model.num_parameters() == 9 + 3 + 3
    assert len(model.state_dict()) == 3


def test_named_modules_walks_the_tree_with_dotted_names(rng):
    names = [name for name, _ in Block(rng).named_modules()]
    assert names == ["", "norm", "proj", "drop"]


# -- gradients and modes ------------------------------------------------------------------------

def test_gradients_accumulate_until_zero_grad(rng):
    model = _mlp(rng)
    x = rng.standard_normal((5, 4))
    model.forward(x)
    model.backward(np.ones((5, 3)))
    once = [p.grad.copy() for p in model.parameters()]
    model.forward(x)
    model.backward(np.ones((5, 3)))
    for p, g in zip(model.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-12)
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_a_gradient_of_the_wrong_shape_is_refused():
    p = nn.Parameter(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="does not match the parameter's shape"):
        p.accumulate(np.zeros((3, 2)))


def test_train_and_eval_reach_every_submodule_and_switch_dropout(rng):
    block = Block(rng)
    x = np.ones((50, 4), dtype=np.float32)
    assert all(m.training for _, m in block.named_modules())
    dropped = block.drop.forward(x)
    assert (dropped == 0).any() and set(np.unique(dropped)) <= {0.0, 2.0}
    block.eval()
    assert not any(m.training for _, m in block.named_modules())
    np.testing.assert_array_equal(block.drop.forward(x), x)
    np.testing.assert_array_equal(block.drop.backward(x), x)
    block.train()
    assert block.drop.training


def test_linear_initialisation_options(rng):
    """Default: W, b ~ U(+-1/sqrt(in)) drawn in that order; weight_std: W ~ N(0, std^2);
    zero_bias: b = 0. reset_parameters redraws in place, keeping dtype."""
    a, b = nn.Linear(400, 300, rng=np.random.default_rng(0)), np.random.default_rng(0)
    bound = 1 / np.sqrt(400)
    np.testing.assert_array_equal(a.weight.data, b.uniform(-bound, bound, (400, 300))
                                  .astype(np.float32))
    np.testing.assert_array_equal(a.bias.data, b.uniform(-bound, bound, 300).astype(np.float32))
    gpt2 = nn.Linear(400, 300, rng=rng, weight_std=0.02, zero_bias=True)
    assert abs(float(gpt2.weight.data.std()) - 0.02) < 1e-3 and not gpt2.bias.data.any()
    layer = nn.Linear(4, 3, rng=rng).to(np.float64)
    weight = layer.weight
    layer.reset_parameters(np.random.default_rng(1), weight_std=0.5, zero_bias=True)
    assert layer.weight is weight and layer.weight.dtype == np.float64
    np.testing.assert_array_equal(layer.weight.data,
                                  0.5 * np.random.default_rng(1).standard_normal((4, 3)))
    assert not layer.bias.data.any() and nn.Linear(4, 3, bias=False, zero_bias=True).bias is None


def test_to_float64_casts_parameters_gradients_and_outputs(rng):
    model = nn.Sequential(nn.Linear(4, 5, rng=rng), nn.GELU(), nn.LayerNorm(5))
    assert all(p.dtype == np.float32 for p in model.parameters())
    model.to(np.float64)
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in model.parameters())
    y = model.forward(rng.standard_normal((2, 4)))
    assert y.dtype == np.float64
    assert model.backward(np.ones_like(y)).dtype == np.float64


# -- checkpoints --------------------------------------------------------------------------------

def test_state_dict_round_trip_restores_every_tensor():
    source = Block(np.random.default_rng(1))
    target = Block(np.random.default_rng(2))
    target.load_state_dict(source.state_dict())
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_state_dict_holds_copies(rng):
    block = Block(rng)
    state = block.state_dict()
    state["proj.weight"][...] = 0
    assert block.proj.weight.data.any()


def test_loading_reports_missing_and_unexpected_tensors_by_name(rng):
    state = Block(rng).state_dict()
    del state["proj.bias"]
    state["proj.extra"] = np.zeros(2)
    with pytest.raises(KeyError, match=r"missing tensors \['proj.bias'\].*unexpected tensors "
                                       r"\['proj.extra'\]"):
        Block(rng).load_state_dict(state)


def test_loading_a_wrong_shape_names_the_tensor(rng):
    state = Block(rng).state_dict()
    state["norm.weight"] = np.ones(5, dtype=np.float32)
    with pytest.raises(ValueError, match=r"tensor 'norm.weight': checkpoint shape \(5,\)"):
        Block(rng).load_state_dict(state)


def test_non_strict_loading_keeps_what_is_missing(rng):
    block = Block(rng)
    before = block.proj.weight.data.copy()
    block.load_state_dict({"scale": np.full(1, 3.0)}, strict=False)
    assert block.scale.data[0] == 3.0 and block.scale.dtype == np.float32
    np.testing.assert_array_equal(block.proj.weight.data, before)


# -- composition and learning -------------------------------------------------------------------

def test_sequential_backward_is_the_composition_of_the_functional_backwards(rng):
    model = _mlp(rng)
    first, last = model[0], model[2]
    x = rng.standard_normal((6, 4))
    dy = rng.standard_normal((6, 3))
    y = model.forward(x)
    dx = model.backward(dy)

    h, c1 = F.linear_forward(x, first.weight.data, first.bias.data)
    a, c2 = F.tanh_forward(h)
    out, c3 = F.linear_forward(a, last.weight.data, last.bias.data)
    da, dW2, db2 = F.linear_backward(dy, c3)
    dh = F.tanh_backward(da, c2)
    dx_expected, dW1, db1 = F.linear_backward(dh, c1)

    np.testing.assert_array_equal(y, out)
    np.testing.assert_array_equal(dx, dx_expected)
    for p, g in zip(model.parameters(), (dW1, db1, dW2, db2)):
        np.testing.assert_array_equal(p.grad, g)


def test_a_tiny_mlp_overfits_a_tiny_batch_with_plain_gradient_descent(rng):
    model = _mlp(rng, sizes=(2, 16, 3))
    x = rng.standard_normal((12, 2))
    y = rng.integers(0, 3, size=12)
    losses = []
    for _ in range(400):
        logits = model.forward(x)
        loss, cache = F.cross_entropy_forward(logits, y)
        losses.append(float(loss))
        model.zero_grad()
        model.backward(F.cross_entropy_backward(1.0, cache))
        for p in model.parameters():
            p.data -= 1.0 * p.grad
    assert losses[0] > 0.5 and losses[-1] < 0.02, (losses[0], losses[-1])
    assert (model.forward(x).argmax(axis=1) == y).all()


# -- parity with PyTorch ------------------------------------------------------------------------

def test_an_mlp_matches_its_pytorch_twin_in_loss_and_every_gradient(torch, rng, assert_rel_close):
    model = nn.Sequential(nn.Linear(5, 7, rng=rng), nn.Tanh(), nn.Linear(7, 6, rng=rng), nn.GELU(),
                          nn.LayerNorm(6), nn.Linear(6, 4, rng=rng)).to(np.float64)
    twin = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 6),
                               torch.nn.GELU(), torch.nn.LayerNorm(6),
                               torch.nn.Linear(6, 4)).double()
    with torch.no_grad():
        for (name, p), (tname, tp) in zip(model.named_parameters(), twin.named_parameters()):
            assert name == tname
            tp.copy_(torch.tensor(p.data.T if p.data.ndim == 2 else p.data))  # W: [in, out]

    x = rng.standard_normal((9, 5))
    y = rng.integers(0, 4, size=9)
    y[2] = -100
    loss, cache = F.cross_entropy_forward(model.forward(x), y)
    model.backward(F.cross_entropy_backward(1.0, cache))
    twin_loss = torch.nn.functional.cross_entropy(twin(torch.tensor(x)), torch.tensor(y))
    twin_loss.backward()

    assert_rel_close(loss, twin_loss.item(), 1e-12, "loss")
    for (name, p), (_, tp) in zip(model.named_parameters(), twin.named_parameters()):
        expected = tp.grad.numpy()
        assert_rel_close(p.grad, expected.T if expected.ndim == 2 else expected, 1e-10, name)


# -- frozen parameters (fine-tuning part of a model) -------------------------------------------

def test_a_frozen_linear_passes_the_same_input_gradient_and_keeps_its_grad_zero():
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((4, 3, 5)), rng.standard_normal((4, 3, 2))
    live, frozen = (nn.Linear(5, 2, rng=np.random.default_rng(1)),
                    nn.Linear(5, 2, rng=np.random.default_rng(1)))
    frozen.requires_grad_(False)
    live.forward(x)
    frozen.forward(x)
    np.testing.assert_array_equal(frozen.backward(dy), live.backward(dy))
    assert not frozen.weight.grad.any() and not frozen.bias.grad.any()
    assert live.weight.grad.any()
    assert frozen.trainable_parameters() == [] and len(live.trainable_parameters()) == 2


def test_freezing_part_of_a_model_leaves_it_out_of_the_trainable_parameters():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    trainable = model.trainable_parameters()
    assert [p.shape for p in trainable] == [(4, 2), (2,)]
    assert "requires_grad=False" in repr(model[0].weight)
    model.requires_grad_(True)
    assert len(model.trainable_parameters()) == 4
