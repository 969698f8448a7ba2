"""Nothing lost, nothing silent: misusing the model API raises, naming what went wrong and
the fix, instead of returning something plausible.

* ``backward()`` twice after one ``forward()`` raises (it used to double the gradients),
  for every trainable family; forward/backward pairs still accumulate until zero_grad();
* idx and targets of the wrong dtype, shape or range name the argument, the value and its
  position, for every family (the n-gram included), before any state moves on;
* cross-entropy names a bad target in 2-D targets (it used to crash converting a row);
* ``generate`` refuses non-finite logits (NaN weights) and invalid or inapplicable
  sampling settings.
"""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import SMALL, V, small_model

from tinylm.functional.cross_entropy import cross_entropy_forward
from tinylm.functional.embedding import embedding_forward
from tinylm.generate import generate, sample_next
from tinylm.models import get_model_class

TRAINABLE = sorted(SMALL)
FAMILIES = TRAINABLE + ["ngram"]


def _model(name):
    if name == "ngram":
        model = get_model_class("ngram").from_config({"vocab_size": V, "order": 3})
        return model.fit(np.arange(60) % V)
    return small_model(name)


def _batch(seed=0, shape=(2, 5)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, size=shape), rng.integers(0, V, size=shape)


def _grads(model):
    return {n: p.grad.copy() for n, p in model.named_parameters()}


# -- backward twice ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", TRAINABLE)
def test_a_second_backward_after_one_forward_raises_and_adds_nothing(name):
    model = _model(name)
    model.forward(*_batch())
    model.backward()
    once = _grads(model)
    with pytest.raises(RuntimeError, match=rf"{type(model).__name__}.backward\(\): the loss of "
                                           r"the last forward was already back-propagated.*"
                                           r"call forward\(idx, targets\) before each "
                                           r"backward\(\).*until zero_grad\(\)"):
        model.backward()
    for n, g in _grads(model).items():
        np.testing.assert_array_equal(g, once[n], err_msg=n)


@pytest.mark.parametrize("name", TRAINABLE)
def test_forward_backward_pairs_still_accumulate_until_zero_grad(name):
    """Two pairs on the same batch give twice the gradient of one: accumulation is done by
    pairs, which is why a lone second backward has nothing to mean."""
    model = _model(name)
    model.eval()                    # no dropout: both forwards see the same function
    for _ in range(2):
        model.reset_state()
        model.forward(*_batch())
        model.backward()
    twice = _grads(model)
    model.zero_grad()
    model.reset_state()
    model.forward(*_batch())
    model.backward()
    for n, g in _grads(model).items():
        np.testing.assert_allclose(twice[n], 2 * g, rtol=1e-5, atol=1e-7, err_msg=n)


# -- idx and targets --------------------------------------------------------------------------

@pytest.mark.parametrize("name", FAMILIES)
def test_float_idx_is_named(name):
    model = _model(name)
    idx, targets = _batch()
    with pytest.raises(TypeError, match=rf"{type(model).__name__}.forward: idx must be an "
                                        r"integer array of token ids, got dtype float64"):
        model.forward(idx.astype(np.float64), targets)


@pytest.mark.parametrize("bad", [V, V + 63, -1])
@pytest.mark.parametrize("name", FAMILIES)
def test_an_out_of_range_idx_is_named_with_its_position(name, bad):
    """For the MLP, id V (its padding row) used to pass unnoticed."""
    model = _model(name)
    idx, targets = _batch()
    idx[0, 3] = bad
    with pytest.raises(ValueError, match=rf"{type(model).__name__}.forward: idx holds token id "
                                         rf"{bad} at position \(0, 3\); token ids must lie in "
                                         rf"\[0, {V}\)\. An id outside the vocabulary"):
        model.forward(idx, targets)


@pytest.mark.parametrize("name", FAMILIES)
def test_targets_of_a_wrong_dtype_are_named(name):
    model = _model(name)
    idx, targets = _batch()
    with pytest.raises(TypeError, match=rf"{type(model).__name__}.forward: targets must be an "
                                        r"integer array of token ids, got dtype float32"):
        model.forward(idx, targets.astype(np.float32))


@pytest.mark.parametrize("name", FAMILIES)
def test_targets_of_a_wrong_shape_are_named(name):
    model = _model(name)
    idx, targets = _batch()
    with pytest.raises(ValueError, match=rf"{type(model).__name__}.forward: targets \(2, 4\) "
                                         r"must have the shape of idx \(2, 5\)"):
        model.forward(idx, targets[:, :4])


@pytest.mark.parametrize("name", FAMILIES)
def test_an_out_of_range_target_is_named_with_its_position(name):
    model = _model(name)
    idx, targets = _batch()
    targets[1, 2] = V + 2
    with pytest.raises(ValueError, match=rf"{type(model).__name__}.forward: targets holds token "
                                         rf"id {V + 2} at position \(1, 2\)"):
        model.forward(idx, targets)


@pytest.mark.parametrize("name", FAMILIES)
def test_idx_without_a_batch_axis_is_named(name):
    model = _model(name)
    with pytest.raises(ValueError, match=rf"{type(model).__name__}.forward: idx must be "
                                         r"\[batch, time\] token ids, got shape \(5,\)"):
        model.forward(_batch()[0][0])


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_a_rejected_batch_leaves_the_carried_state_alone(name):
    """The recurrent models used to run the batch and carry its state before looking at
    the targets."""
    model = _model(name)
    idx, targets = _batch()
    model.forward(idx, targets)
    carried = model._detach(model._carry)                # h, or (h, c) for the LSTM
    with pytest.raises(ValueError, match="targets"):
        model.forward(idx, targets[:, :4])
    np.testing.assert_array_equal(np.asarray(model._carry), np.asarray(carried))


def test_padding_targets_are_still_ignored_by_the_neural_models():
    model = _model("gpt")
    idx, targets = _batch()
    targets[:, :2] = -100                                   # cross_entropy's ignore_index
    _, loss = model.forward(idx, targets)
    assert np.isfinite(float(loss))


# -- the functional checks --------------------------------------------------------------------

@pytest.mark.parametrize("position", [(0, 2), (1, 1), (1, 2)])
def test_cross_entropy_names_a_bad_target_in_2d_targets(position):
    """argmax(bad) is a flat index: targets[argmax] was a row (TypeError) or out of range."""
    targets = np.zeros((2, 3), dtype=np.int64)
    targets[position] = 9
    with pytest.raises(ValueError, match=rf"cross_entropy: targets holds target id 9 at "
                                         rf"position \({position[0]}, {position[1]}\); target "
                                         r"ids must lie in \[0, 5\) \(or -100, ignored\)"):
        cross_entropy_forward(np.zeros((2, 3, 5)), targets)


def test_cross_entropy_names_a_negative_target_that_is_not_the_ignore_index():
    targets = np.array([[0, -100, 1], [2, -3, 4]])
    with pytest.raises(ValueError, match=r"target id -3 at position \(1, 1\)"):
        cross_entropy_forward(np.zeros((2, 3, 5)), targets)


def test_embedding_names_the_bad_id_and_its_position():
    ids = np.array([[0, 1, 2], [3, 4, 70]])
    with pytest.raises(ValueError, match=r"embedding: ids holds token id 70 at position "
                                         r"\(1, 2\); token ids must lie in \[0, 65\)"):
        embedding_forward(ids, np.zeros((65, 4)))


# -- generation -------------------------------------------------------------------------------

@pytest.mark.parametrize("greedy", [False, True])
@pytest.mark.parametrize("name", TRAINABLE)
def test_generate_refuses_the_logits_of_nan_weights(name, greedy):
    model = _model(name)
    for p in model.parameters():
        p.data[...] = np.nan
    with pytest.raises(ValueError, match=r"sample_next: the logits of row 0 are not finite.*"
                                         r"the model's weights are not finite"):
        generate(model, np.array([[1, 2]]), 5, np.random.default_rng(0), greedy=greedy)


def test_sample_next_accepts_impossible_tokens_but_not_an_impossible_row():
    logits = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]])
    assert sample_next(logits[:1], np.random.default_rng(0), greedy=True).tolist() == [2]
    with pytest.raises(ValueError, match="the logits of row 1 are not finite"):
        sample_next(logits, np.random.default_rng(0))


def test_an_ngram_with_zero_probabilities_still_generates():
    """Maximum likelihood (add-k, k = 0) gives -inf logits to unseen tokens: not an error."""
    model = get_model_class("ngram").from_config(
        {"vocab_size": V, "order": 2, "smoothing": "add_k", "k": 0.0}).fit(np.arange(60) % V)
    out = generate(model, np.array([[1]]), 4, np.random.default_rng(0))
    assert out.tolist() == [[2, 3, 4, 5]]


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=float("nan")), r"temperature=nan must be a finite number >= 0"),
    (dict(temperature=float("inf")), r"temperature=inf must be a finite number >= 0"),
    (dict(temperature=-0.5), r"temperature=-0.5 must be a finite number >= 0 \(1 samples"),
    (dict(max_new_tokens=-1), r"max_new_tokens=-1 must be an integer >= 0"),
    (dict(max_new_tokens=2.5), r"max_new_tokens=2.5 must be an integer >= 0"),
    (dict(top_k=0), r"top_k=0 must be an integer >= 1 \(or None"),
    (dict(top_k=2.5), r"top_k=2.5 must be an integer >= 1"),
    (dict(top_p=0.0), r"top_p=0.0 must lie in \(0, 1\] \(or None"),
    (dict(top_p=float("nan")), r"top_p=nan must lie in \(0, 1\] \(or None"),
    (dict(greedy=True, top_k=5), r"greedy=True with top_k=5.*greedy decoding takes the most "
                                 r"likely token; top_k/top_p/temperature do not apply"),
    (dict(greedy=True, top_p=0.9), r"greedy=True with top_k=None, top_p=0.9"),
    (dict(greedy=True, temperature=0.5), r"temperature=0.5: greedy decoding takes"),
])
def test_generate_names_a_bad_or_inapplicable_setting(kwargs, match):
    model = _model("gpt")
    kwargs = {"max_new_tokens": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        generate(model, np.array([[1, 2]]), rng=np.random.default_rng(0), **kwargs)


def test_sample_next_checks_its_settings_too():
    with pytest.raises(ValueError, match=r"greedy decoding takes the most likely token"):
        sample_next(np.zeros((1, 3)), np.random.default_rng(0), top_k=2, greedy=True)


def test_generate_names_a_prompt_id_outside_the_vocabulary():
    with pytest.raises(ValueError, match=rf"generate: prompt holds token id {V} at position "
                                         r"\(0, 1\)"):
        generate(_model("lstm"), np.array([[1, V]]), 3, np.random.default_rng(0))
