"""The contract every language model shares (tinylm/models/base.py).

* the loss cache: forward with targets stores what backward needs, forward without targets
  clears it, and backward without a stored loss raises a clear error -- never a gradient
  of an earlier batch;
* configuration errors name the field, the value and the valid range;
* ``trainable`` separates gradient-trained models from count-based ones.
"""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import SMALL, V, small_model

from tinylm.backend import derive_seed
from tinylm.models import MODEL_REGISTRY, get_model_class



def _model(name):
    return small_model(name).to(np.float64)


def _batch(seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, size=(2, 5)), rng.integers(0, V, size=(2, 5))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_backward_after_a_forward_without_targets_raises(name):
    model = _model(name)
    idx, targets = _batch(0)
    model.forward(idx, targets)
    model.forward(_batch(1)[0])             # no targets: the stored loss is gone
    with pytest.raises(RuntimeError, match=r"no loss to differentiate; call forward\(idx, "
                                           r"targets\)"):
        model.backward()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_backward_differentiates_the_last_forward_with_targets(name):
    """Two models, same weights: forward(a, ya); forward(b, yb); backward() gives the
    gradient of batch b, as a single forward(b, yb) does."""
    first, second = _model(name), _model(name)
    (a, ya), (b, yb) = _batch(0), _batch(1)
    first.forward(a, ya)
    first.reset_state()
    first.forward(b, yb)
    first.backward()
    second.forward(b, yb)
    second.backward()
    for (n, p), (_, q) in zip(first.named_parameters(), second.named_parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=n)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_backward_before_any_forward_raises(name):
    with pytest.raises(RuntimeError, match=f"{type(_model(name)).__name__}.backward"):
        _model(name).backward()


@pytest.mark.parametrize("name, field, value, message", [
    ("mlp", "n_hidden", 0, r"MLPConfig.n_hidden=0 must be an integer >= 1"),
    ("mlp", "dropout", 1.0, r"MLPConfig.dropout=1.0 must lie in \[0, 1\)"),
    ("mlp", "token_dropout", -0.1, r"MLPConfig.token_dropout=-0.1 must lie in \[0, 1\)"),
    ("gpt", "n_layer", 0, r"GPTConfig.n_layer=0 must be an integer >= 1"),
    ("gpt", "dropout", 1.5, r"GPTConfig.dropout=1.5 must lie in \[0, 1\)"),
    ("gpt", "n_head", 3, r"GPTConfig.n_embd=8 must be divisible by n_head=3"),
    ("lstm", "n_layer", 0, r"RecurrentLMConfig.n_layer=0 must be an integer >= 1"),
    ("lstm", "init_range", -1.0, r"RecurrentLMConfig.init_range=-1.0 must be >= 0"),
    ("lstm", "tie_weights", True, r"RecurrentLMConfig.tie_weights needs n_hidden == n_embd"),
    ("ngram", "order", 0, r"NGramConfig.order=0 must be an integer >= 1"),
    ("ngram", "discount", 1.5, r"NGramConfig.discount=1.5 must lie in \[0, 1\]"),
    ("ngram", "smoothing", "laplace", r"NGramConfig.smoothing='laplace' is not one of"),
])
def test_configuration_errors_name_the_field_the_value_and_the_range(name, field, value,
                                                                     message):
    config_class = get_model_class(name).config_class
    base = dict(SMALL.get(name, {}), vocab_size=V)
    with pytest.raises(ValueError, match=message):
        config_class(**dict(base, **{field: value}))


def test_old_mlp_keys_raise_naming_the_new_ones():
    with pytest.raises(ValueError, match=r"'context' -> 'block_size'.*'hidden' -> 'n_hidden'"):
        get_model_class("mlp").from_config({"vocab_size": V, "context": 3, "hidden": 6})


def test_only_count_based_models_are_not_trainable():
    assert {name: get_model_class(name).trainable for name in MODEL_REGISTRY} == {
        "ngram": False, "mlp": True, "rnn": True, "lstm": True, "gru": True, "gpt": True}


def test_derived_seeds_are_offsets_of_the_model_seed():
    assert [derive_seed(7, k) for k in (0, 1, 1000)] == [7, 8, 1007]
    with pytest.raises(ValueError, match="stream=-1"):
        derive_seed(7, -1)
