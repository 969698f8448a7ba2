"""Nothing lost, nothing silent: every ``load_state_dict`` / ``set_rng_state`` checks what it
is given and names the entry that is wrong, before anything changes.

* optimizers (SGD, Adam, AdamW): each buffer has its parameter's shape and a floating dtype
  (a wrong shape once reached the numba Adam kernel, which has no bounds checks), the step
  is a 0-d integer >= 0, every setting is a finite number of the right shape; the update
  rules check their buffers' shapes themselves;
* modules: floating arrays only into floating parameters, arrays only, nothing half-loaded;
* the n-gram's count tables: 1-D integers, as long as their keys, keys sorted and in range;
* the batchers and the dropout generators: missing entries, malformed generator states
  and out-of-range positions raise ValueError naming them.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.data.batching import RandomWindowBatcher, SequentialBatcher
from tinylm.models.ngram import NGramConfig, NGramLM
from tinylm.nn import Linear
from tinylm.nn.dropout import Dropout, DropoutRng
from tinylm.nn.parameter import Parameter
from tinylm.optim import SGD, Adam, AdamW
from tinylm.optim.adam import adam_update

SHAPES = [(3,), (2, 2), (5,), (4, 8)]          # parameter 3 is the [4, 8] matrix


def _params():
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in SHAPES]
    for p in params:
        p.grad[...] = rng.standard_normal(p.shape)
    return params


def _stepped(make):
    """An optimizer after one step, and its state dict."""
    opt = make(_params())
    opt.step()
    return opt, opt.state_dict()


OPTIMIZERS = {
    "SGD": lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    "Adam": lambda ps: Adam(ps),
    "AdamW": lambda ps: AdamW(ps, weight_decay=0.1),
}
BUFFERS = {"SGD": "momentum_buffer", "Adam": "exp_avg", "AdamW": "exp_avg_sq"}


def _load_fails(make, state, error, match):
    """Loading ``state`` raises; the fresh optimizer it was loaded into is unchanged."""
    fresh = make(_params())
    with pytest.raises(error, match=match):
        fresh.load_state_dict(state)
    assert fresh.step_count == 0 and not any(fresh.state)


# -- optimizers: the buffers ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_an_optimizer_buffer_of_the_wrong_shape_is_named(name):
    """The fault: 'exp_avg.3' of shape (5,) was loaded, then the kernel wrote past it."""
    _, state = _stepped(OPTIMIZERS[name])
    buffer = BUFFERS[name]
    state[f"{buffer}.3"] = np.zeros(5, dtype=np.float32)
    _load_fails(OPTIMIZERS[name], state, ValueError,
                rf"{name}.load_state_dict: entry '{buffer}.3' has shape \(5,\) but parameter 3 "
                r"has shape \(4, 8\)")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_an_optimizer_buffer_of_a_broadcastable_shape_is_named(name):
    """(1, 8) would broadcast against (4, 8) in the array expressions: still wrong."""
    _, state = _stepped(OPTIMIZERS[name])
    state[f"{BUFFERS[name]}.3"] = np.zeros((1, 8), dtype=np.float32)
    _load_fails(OPTIMIZERS[name], state, ValueError, r"has shape \(1, 8\) but parameter 3")


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.complex128, object])
def test_an_optimizer_buffer_must_be_floating(dtype):
    _, state = _stepped(OPTIMIZERS["AdamW"])
    state["exp_avg.1"] = np.zeros((2, 2), dtype=dtype)
    _load_fails(OPTIMIZERS["AdamW"], state, ValueError,
                rf"entry 'exp_avg.1' has dtype {np.dtype(dtype)}, but optimizer buffers are "
                "floating point")


def test_an_optimizer_entry_that_is_no_array_is_named():
    _, state = _stepped(OPTIMIZERS["Adam"])
    state["exp_avg.0"] = [0.0, 0.0, 0.0]
    _load_fails(OPTIMIZERS["Adam"], state, ValueError,
                r"entry 'exp_avg.0' is a list, not an array")


# -- optimizers: the step count, the settings, the layout entries -----------------------------

@pytest.mark.parametrize("step, stepped", [
    (np.asarray(-1), False),               # loaded as is before: a negative step count
    (np.asarray(2.5), True),               # truncated to 2 before
    (np.asarray([1, 2]), True),            # a TypeError from int() before
    (np.asarray(True), True),
    ("3", True),
])
def test_the_step_count_must_be_a_nonnegative_integer_scalar(step, stepped):
    make = OPTIMIZERS["AdamW"]
    state = _stepped(make)[1] if stepped else make(_params()).state_dict()
    state["step"] = step
    _load_fails(make, state, ValueError, r"AdamW.load_state_dict: entry 'step'")


@pytest.mark.parametrize("key, value, match", [
    ("group0.lr", np.asarray(np.inf), r"entry 'group0.lr' is inf; a setting must be finite"),
    ("group0.lr", np.asarray(np.nan), r"entry 'group0.lr' is nan"),
    ("group0.eps", np.asarray(np.inf), r"entry 'group0.eps' is inf"),
    ("group0.betas", np.asarray([0.9, np.inf]), r"entry 'group0.betas' is \(0.9, inf\)"),
    ("group0.lr", np.asarray([1e-3, 2e-3]), r"entry 'group0.lr' must be a real number \(an "
                                            r"array of shape \(\)\), got shape \(2,\)"),
    ("group0.lr", np.asarray([1e-3]), r"entry 'group0.lr' must be a real number"),
    ("group0.lr", "0.001", r"entry 'group0.lr' is a str, not an array"),
    ("group0.betas", np.asarray([0.9, 0.99, 0.999]),
     r"entry 'group0.betas' must be 2 real numbers \(an array of shape \(2,\)\)"),
    ("group0.weight_decay", np.asarray(0.1 + 0j), r"entry 'group0.weight_decay' must be a real"),
    ("group0.num_params", np.asarray(4.0), r"entry 'group0.num_params' must be an integer"),
    ("shape.0", np.asarray([[3]]), r"entry 'shape.0' must be a 1-D integer array"),
    ("shape.0", np.asarray([3.0]), r"entry 'shape.0' must be a 1-D integer array"),
])
def test_malformed_settings_and_layout_entries_are_named(key, value, match):
    _, state = _stepped(OPTIMIZERS["AdamW"])
    state[key] = value
    _load_fails(OPTIMIZERS["AdamW"], state, ValueError, rf"AdamW.load_state_dict: {match}")


def test_a_boolean_setting_must_be_a_boolean():
    make = OPTIMIZERS["SGD"]
    _, state = _stepped(make)
    state["group0.nesterov"] = np.asarray(1.0)
    _load_fails(make, state, ValueError, r"entry 'group0.nesterov' must be a boolean")


def test_settings_must_be_finite_when_built_too():
    with pytest.raises(ValueError, match=r"AdamW: lr=inf is invalid; it must be finite"):
        AdamW(_params(), lr=float("inf"))
    with pytest.raises(ValueError, match=r"SGD: dampening=nan is invalid; it must be finite"):
        SGD(_params(), lr=0.1, dampening=float("nan"))
    opt = AdamW(_params())
    with pytest.raises(ValueError, match=r"lr=inf is invalid"):
        opt.lr = float("inf")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_checked_state_still_resumes_exactly(name):
    make = OPTIMIZERS[name]
    opt, state = _stepped(make)
    resumed = make([Parameter(p.data.copy()) for p in opt.params])
    resumed.load_state_dict(state)
    for p, q in zip(opt.params, resumed.params):
        q.grad[...] = p.grad
    opt.step()
    resumed.step()
    for p, q in zip(opt.params, resumed.params):
        np.testing.assert_array_equal(p.data, q.data)


# -- the update rules check their buffers -----------------------------------------------------

@pytest.mark.parametrize("buffer", ["g", "m", "v"])
def test_adam_update_checks_every_buffer_shape_before_the_kernel(buffer, kernels):
    """A larger buffer keeps the old kernel inside its memory, so the old code ran silently."""
    p = np.zeros((4, 8), dtype=np.float32)
    arrays = {"g": np.ones_like(p), "m": np.zeros_like(p), "v": np.zeros_like(p)}
    arrays[buffer] = np.zeros(64, dtype=np.float32)
    with pytest.raises(ValueError, match=rf"adam_update: {buffer} has shape \(64,\) but the "
                                         r"parameter has shape \(4, 8\)"):
        adam_update(p, arrays["g"], arrays["m"], arrays["v"], np.empty_like(p), 1e-3, 0.9,
                    0.999, 1e-8, 0.0, True, 1)
    assert not p.any()


def test_sgd_checks_its_momentum_buffer_shape():
    opt = SGD(_params(), lr=0.1, momentum=0.9)
    opt.state[3] = {"momentum_buffer": np.zeros((2, 4, 8), dtype=np.float32)}   # broadcastable
    with pytest.raises(ValueError, match=r"SGD: momentum_buffer has shape \(2, 4, 8\) but the "
                                         r"parameter has shape \(4, 8\)"):
        opt.step()


# -- modules ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.complex128, object])
def test_a_module_loads_only_floating_arrays_into_floating_parameters(dtype):
    layer = Linear(3, 2)
    state = layer.state_dict()
    state["weight"] = np.ones(layer.weight.shape, dtype=dtype)
    before = layer.weight.data.copy()
    with pytest.raises(ValueError, match=rf"tensor 'weight': checkpoint dtype "
                                         rf"{np.dtype(dtype)} cannot load into the model's "
                                         "float32 parameter"):
        layer.load_state_dict(state)
    np.testing.assert_array_equal(layer.weight.data, before)


def test_a_module_value_that_is_no_array_is_named():
    layer = Linear(3, 2)
    state = layer.state_dict()
    state["bias"] = [0.0, 0.0]
    with pytest.raises(ValueError, match=r"tensor 'bias': the checkpoint holds a list, not an "
                                         "array"):
        layer.load_state_dict(state)


def test_a_module_is_not_half_loaded_when_a_later_tensor_is_wrong():
    layer = Linear(3, 2)
    state = {"weight": np.full(layer.weight.shape, 7.0, dtype=np.float32),
             "bias": np.zeros(5, dtype=np.float32)}
    before = layer.weight.data.copy()
    with pytest.raises(ValueError, match=r"tensor 'bias': checkpoint shape \(5,\)"):
        layer.load_state_dict(state)
    np.testing.assert_array_equal(layer.weight.data, before)


def test_a_float64_checkpoint_still_loads_into_float32_parameters():
    layer = Linear(3, 2)
    state = {k: v.astype(np.float64) + 1.0 for k, v in layer.state_dict().items()}
    layer.load_state_dict(state)
    assert layer.weight.dtype == np.float32
    np.testing.assert_allclose(layer.weight.data, state["weight"], rtol=1e-6)


# -- the n-gram's count tables ----------------------------------------------------------------

def _ngram_state():
    model = NGramLM(NGramConfig(vocab_size=5, order=3)).fit(np.array([0, 1, 2, 3, 4, 2, 1] * 5))
    return model.state_dict()


@pytest.mark.parametrize("key, change, match", [
    ("order2.keys", lambda a: a[None, :], r"entry 'order2.keys' must be a 1-D integer array, "
                                          r"got shape \(1, \d+\)"),
    ("order2.keys", lambda a: a.astype(np.float64), r"entry 'order2.keys' must be a 1-D integer "
                                                     r"array, got shape \(\d+,\) and dtype "
                                                     "float64"),
    ("order2.counts", lambda a: a[:-1], r"entry 'order2.counts' holds \d+ values but its keys "
                                        r"hold \d+"),
    ("order1.continuation", lambda a: a[:-1], r"entry 'order1.continuation' holds"),
    ("order3.counts", lambda a: -a, r"entry 'order3.counts' holds a negative value"),
    ("order2.keys", lambda a: a[::-1].copy(), r"entry 'order2.keys' is not strictly increasing"),
    ("order1.keys", lambda a: a + 5, r"entry 'order1.keys' holds key \d+ >= 5 = contexts x "
                                     "vocab_size"),
    ("order2.counts", lambda a: a.tolist(), r"entry 'order2.counts' is a list, not an array"),
])
def test_ngram_tables_are_checked_by_entry(key, change, match):
    state = _ngram_state()
    state[key] = change(state[key])
    model = NGramLM(NGramConfig(vocab_size=5, order=3))
    with pytest.raises(ValueError, match=rf"NGramLM.load_state_dict: {match}"):
        model.load_state_dict(state)
    assert model.levels == []


def test_ngram_tables_still_round_trip():
    state = _ngram_state()
    model = NGramLM(NGramConfig(vocab_size=5, order=3))
    model.load_state_dict(state)
    idx = np.array([[0, 1, 2, 3]])
    fitted = NGramLM(NGramConfig(vocab_size=5, order=3)).fit(np.array([0, 1, 2, 3, 4, 2, 1] * 5))
    np.testing.assert_array_equal(model.forward(idx)[0], fitted.forward(idx)[0])


# -- the batchers -----------------------------------------------------------------------------

IDS = np.arange(100) % 7


def _random():
    return RandomWindowBatcher(IDS, batch_size=2, block_size=4, seed=0)


def _sequential():
    return SequentialBatcher(IDS, batch_size=2, num_steps=4)       # 12 steps per epoch


@pytest.mark.parametrize("change, match", [
    (lambda s: s.pop("bit_generator"), r"the batcher state has no entries \['bit_generator'\]"),
    (lambda s: s.pop("tokens"), r"the batcher state has no entries \['tokens'\]"),
    (lambda s: s.update(bit_generator="PCG64"), r"entry 'bit_generator': the saved generator "
                                                r"state \(a str\) is not a state of NumPy's "
                                                "PCG64 generator"),
    (lambda s: s["bit_generator"].pop("state"), r"entry 'bit_generator'.*KeyError"),
    (lambda s: s["bit_generator"].update(bit_generator="MT19937"), r"entry 'bit_generator'"),
    (lambda s: s["bit_generator"]["state"].update(state="x"), r"entry 'bit_generator'"),
])
def test_a_malformed_random_batcher_state_is_named(change, match):
    state = _random().state_dict()
    change(state)
    batcher = _random()
    with pytest.raises(ValueError, match=rf"{match}"):
        batcher.load_state_dict(state)
    np.testing.assert_array_equal(batcher.next_batch().x, _random().next_batch().x)


@pytest.mark.parametrize("change, match", [
    (lambda s: s.pop("epoch"), r"the batcher state has no entries \['epoch'\]"),
    (lambda s: s.update(epoch=-1), r"entry 'epoch' is -1; it must be an integer >= 0"),
    (lambda s: s.update(step=13), r"entry 'step' is 13; it must be an integer in \[0, 12\]"),
    (lambda s: s.update(step=-2), r"entry 'step' is -2"),
    (lambda s: s.update(step=2.5), r"entry 'step' is 2.5"),
    (lambda s: s.update(step="3"), r"entry 'step' is '3'"),
    (lambda s: s.update(epoch=True), r"entry 'epoch' is True"),
])
def test_a_malformed_sequential_batcher_state_is_named(change, match):
    state = _sequential().state_dict()
    change(state)
    batcher = _sequential()
    with pytest.raises(ValueError, match=rf"SequentialBatcher.load_state_dict: {match}"
                       if "entry" in match else match):
        batcher.load_state_dict(state)
    assert (batcher.epoch, batcher.step) == (0, 0)


@pytest.mark.parametrize("make", [_random, _sequential])
def test_a_batcher_state_that_is_no_dict_is_named(make):
    with pytest.raises(ValueError, match=r"the batcher state must be the dict that state_dict\(\)"
                                         r" returned, got a list"):
        make().load_state_dict([])


def test_the_last_step_of_an_epoch_is_a_valid_position():
    batcher = _sequential()
    for _ in range(batcher.steps_per_epoch):
        batcher.next_batch()
    resumed = _sequential()
    resumed.load_state_dict(batcher.state_dict())            # step == steps_per_epoch
    assert resumed.next_batch().new_epoch and resumed.epoch == 1


# -- the dropout generators -------------------------------------------------------------------

@pytest.mark.parametrize("state, match", [
    ("garbage", r"\(a str\) is not a state of NumPy's PCG64 generator"),
    ({"bit_generator": "PCG64"}, r"KeyError"),
    ({"bit_generator": "MT19937", "state": {"key": [0], "pos": 0}}, r"ValueError"),
    (["PCG64", 1, 2], r"\(a list\)"),
])
def test_a_malformed_dropout_generator_state_is_named(state, match):
    drop = Dropout(0.5, seed=3)
    x = np.ones((4, 4))
    drop.forward(x)
    saved = drop.get_rng_state()
    with pytest.raises(ValueError, match=rf"Dropout\(seed=3\).set_rng_state: the saved "
                                         rf"generator state.*{match}"):
        drop.set_rng_state(state)
    assert drop.get_rng_state() == saved                 # the generator was left as it was


def test_a_dropout_generator_state_still_round_trips():
    a, b = DropoutRng(seed=1), DropoutRng(seed=2)
    a.rng_for(np.zeros(1)).random(5)
    b.set_rng_state(a.get_rng_state())
    np.testing.assert_array_equal(a.rng_for(np.zeros(1)).random(3),
                                  b.rng_for(np.zeros(1)).random(3))
