"""tinylm.optim against torch.optim: same parameters, same gradients -> same trajectory.

Every optimizer runs >= 10 steps in float64 on several parameters of different shapes with
fresh random gradients each step, and must match PyTorch to a relative error of 1e-10.
"""

import math
import types

import numpy as np
import pytest

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import adam as adam_kernel
from tinylm.nn import Parameter
from tinylm.optim import (SGD, Adam, AdamW, clip_grad_norm, constant, lr_at, step_decay,
                          warmup_cosine)
from tinylm.optim.adam import adam_update_reference
from tinylm.train.config import TrainConfig

torch = pytest.importorskip("torch")

SHAPES = [(4, 3), (3,), (2, 3, 2), (1,)]
STEPS = 12
TOL = 1e-10


def make_params(seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    ours = [Parameter(a.copy()) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return ours, theirs


def rel_error(ours, theirs):
    a, b = ours.data, theirs.detach().numpy()
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def run_against_torch(ours, theirs, opt, topt, steps=STEPS, seed=1, lrs=None):
    """Feed identical random gradients to both optimizers and compare after every step."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for t in range(steps):
        if lrs is not None:
            opt.lr = lrs[t]
            for group in topt.param_groups:
                group["lr"] = lrs[t]
        opt.zero_grad()
        topt.zero_grad()
        for p, tp in zip(ours, theirs):
            g = rng.standard_normal(p.shape)
            p.grad += g
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
        worst = max(worst, max(rel_error(p, tp) for p, tp in zip(ours, theirs)))
    return worst


SGD_CASES = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.1, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "weight_decay": dict(lr=0.1, momentum=0.8, weight_decay=0.05),
    "dampening": dict(lr=0.1, momentum=0.9, dampening=0.3),
    "everything": dict(lr=0.07, momentum=0.5, nesterov=True, weight_decay=0.1),
}


@pytest.mark.parametrize("case", sorted(SGD_CASES))
def test_sgd_matches_torch(case):
    kw = SGD_CASES[case]
    ours, theirs = make_params()
    err = run_against_torch(ours, theirs, SGD(ours, **kw), torch.optim.SGD(theirs, **kw))
    assert err <= TOL, f"SGD {case}: rel error {err:.2e}"


ADAM_CASES = {
    "adam": (Adam, torch.optim.Adam, dict(lr=1e-2)),
    "adam_l2": (Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1)),
    "adam_betas": (Adam, torch.optim.Adam, dict(lr=3e-2, betas=(0.8, 0.95), eps=1e-6)),
    "adamw": (AdamW, torch.optim.AdamW, dict(lr=1e-2)),
    "adamw_strong": (AdamW, torch.optim.AdamW, dict(lr=1e-2, betas=(0.9, 0.95),
                                                    weight_decay=0.5)),
}


@pytest.mark.parametrize("case", sorted(ADAM_CASES))
def test_adam_family_matches_torch(case):
    cls, tcls, kw = ADAM_CASES[case]
    ours, theirs = make_params()
    err = run_against_torch(ours, theirs, cls(ours, **kw), tcls(theirs, **kw))
    assert err <= TOL, f"{case}: rel error {err:.2e}"


def test_defaults_match_torch():
    ours, theirs = make_params()
    for cls, tcls in [(Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)]:
        group = cls(ours).param_groups[0]
        tgroup = tcls(theirs).param_groups[0]
        for key in ("lr", "betas", "eps", "weight_decay"):
            assert group[key] == tgroup[key], (cls.__name__, key)


def test_changing_lr_each_step_matches_torch():
    """A schedule sets opt.lr before each step; torch's param_groups[..]['lr'] likewise."""
    lrs = [warmup_cosine(t, 0.05, 3, STEPS, 0.005) for t in range(STEPS)]
    for cls, tcls, kw in [(AdamW, torch.optim.AdamW, dict(weight_decay=0.1)),
                          (SGD, torch.optim.SGD, dict(momentum=0.9, nesterov=True))]:
        ours, theirs = make_params()
        err = run_against_torch(ours, theirs, cls(ours, lr=1.0, **kw),
                                tcls(theirs, lr=1.0, **kw), lrs=lrs)
        assert err <= TOL, f"{cls.__name__} with a schedule: rel error {err:.2e}"


@pytest.mark.parametrize("cls,tcls", [(AdamW, torch.optim.AdamW), (Adam, torch.optim.Adam),
                                      (SGD, torch.optim.SGD)])
def test_param_groups_with_different_weight_decay(cls, tcls):
    """nanoGPT's split: 2-D weights decay, vectors do not; plus a group with its own lr."""
    ours, theirs = make_params()
    def split(ps):
        return [{"params": [p for p in ps if len(p.shape) >= 2], "weight_decay": 0.2},
                {"params": [p for p in ps if len(p.shape) < 2], "weight_decay": 0.0,
                 "lr": 0.02}]

    extra = dict(momentum=0.9) if cls is SGD else {}
    opt = cls(split(ours), lr=0.05, **extra)
    topt = tcls(split(theirs), lr=0.05, **extra)
    assert [len(g["params"]) for g in opt.param_groups] == [2, 2]
    ours_order = opt.params
    theirs_order = [p for g in topt.param_groups for p in g["params"]]
    err = run_against_torch(ours_order, theirs_order, opt, topt)
    assert err <= TOL, f"{cls.__name__} groups: rel error {err:.2e}"


def test_lr_setter_sets_every_group():
    ours, _ = make_params()
    opt = AdamW([{"params": ours[:2]}, {"params": ours[2:], "lr": 5.0}], lr=1.0)
    assert [g["lr"] for g in opt.param_groups] == [1.0, 5.0]
    opt.lr = 0.25
    assert opt.lr == 0.25 and [g["lr"] for g in opt.param_groups] == [0.25, 0.25]


def test_zero_grad():
    ours, _ = make_params()
    for p in ours:
        p.grad += 1.0
    SGD(ours, lr=0.1).zero_grad()
    assert all(not p.grad.any() for p in ours)


def test_float32_stays_float32():
    p = Parameter(np.ones((3, 2), dtype=np.float32))
    p.grad += 0.5
    for opt in (SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1), Adam([p], weight_decay=0.1),
                AdamW([p])):
        opt.step()
        opt.step()
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
        assert all(b.dtype == np.float32 for s in opt.state for b in s.values())


# -- clipping --------------------------------------------------------------------------

@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    ours, theirs = make_params()
    rng = np.random.default_rng(3)
    for p, tp in zip(ours, theirs):
        g = 2.0 * rng.standard_normal(p.shape)
        p.grad += g
        tp.grad = torch.tensor(g)
    total = clip_grad_norm(ours, max_norm)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert abs(total - float(ttotal)) <= TOL * float(ttotal)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=TOL, atol=0)
    if max_norm < total:
        after = math.sqrt(sum(float((p.grad ** 2).sum()) for p in ours))
        assert after == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_rejects_negative_max_norm():
    ours, _ = make_params()
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(ours, -1.0)


# -- schedules -------------------------------------------------------------------------

def nanogpt_get_lr(it, learning_rate, warmup_iters, lr_decay_iters, min_lr):
    """nanoGPT train.py get_lr, transcribed."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def test_warmup_cosine_matches_nanogpt():
    for it in range(0, 700):
        expected = nanogpt_get_lr(it, 6e-4, 100, 600, 6e-5)
        assert warmup_cosine(it, 6e-4, 100, 600, 6e-5) == pytest.approx(expected, rel=1e-15)


def test_warmup_cosine_landmarks():
    lr, lo = 1.0, 0.1
    assert warmup_cosine(0, lr, 10, 110, lo) == pytest.approx(1 / 11)
    assert warmup_cosine(10, lr, 10, 110, lo) == pytest.approx(1.0)      # peak after warm-up
    assert warmup_cosine(60, lr, 10, 110, lo) == pytest.approx(0.55)     # half way: mean
    assert warmup_cosine(110, lr, 10, 110, lo) == pytest.approx(lo)
    assert warmup_cosine(10_000, lr, 10, 110, lo) == lo
    assert warmup_cosine(5, lr, 5, 5, lo) == lo                          # no 0/0 when D == W


def test_step_decay_zaremba():
    """Zaremba et al. PTB: lr 1 for 4 epochs, then halved after every epoch."""
    spe = 100                                           # steps per epoch
    cfg = types.SimpleNamespace(lr=1.0, schedule="step", decay_start=4 * spe,
                                decay_every=spe, decay_factor=0.5)
    per_epoch = [lr_at(e * spe + 37, cfg) for e in range(8)]
    assert per_epoch == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125, 0.0625]
    assert lr_at(4 * spe - 1, cfg) == 1.0 and lr_at(4 * spe, cfg) == 0.5
    assert step_decay(5 * spe, 1.0, 4 * spe, spe, 0.5) == 0.25
    with pytest.raises(ValueError, match="decay_every"):
        step_decay(0, 1.0, 0, 0, 0.5)


def test_lr_at_reads_train_config():
    cfg = TrainConfig(lr=6e-4, schedule="cosine", warmup_iters=20, min_lr=6e-5,
                      lr_decay_iters=0, max_iters=200)
    for it in (0, 19, 20, 100, 199, 200, 250):
        assert lr_at(it, cfg) == pytest.approx(nanogpt_get_lr(it, 6e-4, 20, 200, 6e-5))
    assert lr_at(123, TrainConfig(lr=0.3)) == constant(123, 0.3) == 0.3
    with pytest.raises(ValueError, match="schedule .* is 'linear'"):
        TrainConfig(schedule="linear")                  # refused before any step runs
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear'"):
        lr_at(0, types.SimpleNamespace(**dict(TrainConfig().to_dict(), schedule="linear")))


# -- checkpoints -----------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda ps: AdamW(ps, lr=1e-2, weight_decay=0.1),
    lambda ps: Adam(ps, lr=1e-2, weight_decay=0.1),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: SGD(ps, lr=0.1),
], ids=["adamw", "adam", "sgd_nesterov", "sgd_plain"])
def test_state_dict_round_trip_continues_identically(make, tmp_path):
    rng = np.random.default_rng(5)
    grads = [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(10)]

    def run(params, opt, steps):
        for gs in steps:
            opt.zero_grad()
            for p, g in zip(params, gs):
                p.grad += g
            opt.step()

    base = [Parameter(np.ones(s, dtype=np.float32) * 0.3) for s in SHAPES]
    opt = make(base)
    run(base, opt, grads[:5])
    opt.lr = 0.0123                                  # as a schedule would have left it
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    saved_params = [p.data.copy() for p in base]
    run(base, opt, grads[5:])

    resumed = [Parameter(d) for d in saved_params]
    opt2 = make(resumed)
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
        opt2.load_state_dict(dict(f))
    assert opt2.step_count == 5 and opt2.lr == 0.0123
    run(resumed, opt2, grads[5:])
    for p, q in zip(base, resumed):
        assert np.array_equal(p.data, q.data)        # bit-identical continuation


def test_state_dict_is_flat_host_arrays():
    ours, _ = make_params()
    opt = AdamW(ours)
    opt.step()
    sd = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    assert sd["step"].shape == () and int(sd["step"]) == 1
    assert float(sd["group0.lr"]) == 1e-3
    assert {"exp_avg.3", "exp_avg_sq.0"} <= set(sd)
    sd["exp_avg.0"][...] = 7.0                       # a copy: the optimizer is unaffected
    assert not (opt.state[0]["exp_avg"] == 7.0).any()


def test_load_state_dict_reports_mismatches():
    ours, _ = make_params()
    opt = Adam(ours)
    opt.step()
    sd = opt.state_dict()
    other = [Parameter(np.zeros(s)) for s in [(4, 3), (5,), (2, 3, 2), (1,)]]
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(5,\).*shape \(3,\)"):
        Adam(other).load_state_dict(sd)
    with pytest.raises(ValueError, match="holds 4 parameters but this optimizer has 3"):
        Adam(ours[:3]).load_state_dict(sd)
    with pytest.raises(ValueError, match="2 parameter groups but this optimizer has 1"):
        Adam(ours).load_state_dict(Adam([{"params": ours[:1]}, {"params": ours[1:]}])
                                   .state_dict())
    regrouped = [{"params": ours[:1]}, {"params": ours[1:]}]
    saved = Adam([{"params": ours[:2]}, {"params": ours[2:]}]).state_dict()
    with pytest.raises(ValueError, match="group 0 was saved with 2 parameters but now has 1"):
        Adam(regrouped).load_state_dict(saved)
    with pytest.raises(KeyError, match="exp_avg"):
        Adam(ours).load_state_dict(SGD(ours, lr=0.1).state_dict() | {"step": np.asarray(3)})


# -- bad inputs ------------------------------------------------------------------------

@pytest.mark.parametrize("build,match", [
    (lambda ps: SGD(ps, lr=-0.1), "lr=-0.1"),
    (lambda ps: Adam(ps, lr=-1e-3), "lr=-0.001"),
    (lambda ps: AdamW(ps, betas=(0.9, 1.0)), "betas"),
    (lambda ps: Adam(ps, betas=(-0.1, 0.999)), "betas"),
    (lambda ps: AdamW(ps, eps=-1.0), "eps"),
    (lambda ps: AdamW(ps, weight_decay=-0.1), "weight_decay"),
    (lambda ps: SGD(ps, lr=0.1, nesterov=True), "nesterov"),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, dampening=0.1), "nesterov"),
    (lambda ps: SGD([], lr=0.1), "empty parameter list"),
    (lambda ps: AdamW([{"params": []}]), "empty parameter list"),
    (lambda ps: SGD([p.data for p in ps], lr=0.1), "Parameter"),
    (lambda ps: SGD(ps + ps[:1], lr=0.1), "appears twice"),
    (lambda ps: AdamW([{"params": ps, "momentum": 0.9}]), "unknown settings"),
])
def test_bad_inputs_raise_clear_errors(build, match):
    ours, _ = make_params()
    with pytest.raises((ValueError, TypeError), match=match):
        build(ours)


def test_setting_a_negative_lr_is_rejected():
    ours, _ = make_params()
    opt = AdamW(ours)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0


def test_passing_a_module_instead_of_its_parameters():
    from tinylm.nn import Linear
    with pytest.raises(TypeError, match=r"model.parameters\(\)"):
        AdamW(Linear(2, 3))


# Kernel against reference, relative to the largest entry (as in tests/kernel_helpers.py).
KERNEL_REL = {np.float32: 2e-6, np.float64: 1e-13}


@pytest.mark.skipif(not NUMBA_AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, True), (0.1, True), (0.1, False)])
def test_adam_update_kernel_equals_reference(weight_decay, decoupled, dtype, rng,
                                            assert_rel_close):
    """Three steps on a [7, 13] parameter: p, m and v agree (same operations, same order)."""
    shape = (7, 13)
    states = [[rng.standard_normal(shape).astype(dtype), np.zeros(shape, dtype),
               np.zeros(shape, dtype)]]                           # p, m, v
    states.append([a.copy() for a in states[0]])
    for t in (1, 2, 3):
        g = rng.standard_normal(shape).astype(dtype)
        p, m, v = states[0]
        adam_kernel.adam_update(p, g, m, v, 1e-2, 0.9, 0.99, 1e-8, weight_decay, decoupled, t)
        p, m, v = states[1]
        adam_update_reference(p, g, m, v, np.empty(shape, dtype), 1e-2, 0.9, 0.99, 1e-8,
                              weight_decay, decoupled, t)
    for name, fast, slow in zip(("p", "m", "v"), *states):
        assert_rel_close(fast, slow, KERNEL_REL[dtype], name)
