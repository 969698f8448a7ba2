"""The soft-target loss of distillation (tinylm/functional/distillation.py) and its use on a
GPT (tinylm/compress/distill.py): finite differences, PyTorch's kl_div, the limits in T."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.compress.distill import check_alpha, soft_and_hard_loss
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.distillation import (distillation_backward, distillation_forward,
                                            gradcheck_cases)
from tinylm.gradcheck import check_gradients
from tinylm.models.gpt import GPT, GPTConfig


@pytest.mark.parametrize("case", gradcheck_cases(), ids=lambda c: c.name)
def test_backward_matches_finite_differences(case):
    report = case.run(seed=0)
    assert report.passed and report.tolerance <= 1e-7, str(report)


def _torch_kd(torch, s, t, T):
    """torch's L_KD and its gradients on [N, V] rows (batchmean = sum / N)."""
    tF = torch.nn.functional
    s, t = (torch.tensor(a, requires_grad=True) for a in (s, t))
    loss = tF.kl_div(tF.log_softmax(s / T, dim=-1), tF.log_softmax(t / T, dim=-1),
                     log_target=True, reduction="batchmean") * T ** 2
    loss.backward()
    return float(loss.detach()), s.grad.numpy(), t.grad.numpy()


@pytest.mark.parametrize("T", [0.5, 1.0, 2.0, 8.0])
def test_loss_and_both_gradients_match_torch_kl_div(T, torch, rng, assert_rel_close):
    s, t = 3.0 * rng.standard_normal((2, 5, 9)), 3.0 * rng.standard_normal((2, 5, 9))
    loss, cache = distillation_forward(s, t, T)
    ds, dt = distillation_backward(1.0, cache)
    ref_loss, ref_ds, ref_dt = _torch_kd(torch, s.reshape(-1, 9), t.reshape(-1, 9), T)
    assert abs(float(loss) - ref_loss) <= 1e-12 * max(1.0, ref_loss)
    assert_rel_close(ds.reshape(-1, 9), ref_ds, 1e-10, "dstudent")
    assert_rel_close(dt.reshape(-1, 9), ref_dt, 1e-10, "dteacher")


def test_float32_in_float32_out(rng):
    s, t = (rng.standard_normal((4, 6)).astype(np.float32) for _ in range(2))
    loss, cache = distillation_forward(s, t, 2.0)
    assert loss.dtype == np.float32
    assert all(g.dtype == np.float32 for g in distillation_backward(np.float32(1.0), cache))


def test_zero_exactly_when_the_student_is_the_teacher(rng):
    t = 5.0 * rng.standard_normal((3, 4, 11))
    for T in (0.25, 1.0, 4.0):
        loss, cache = distillation_forward(t.copy(), t, T)
        assert float(loss) == 0.0
        assert np.abs(distillation_backward(1.0, cache)[0]).max() == 0.0
        assert float(distillation_forward(t + rng.standard_normal(t.shape), t, T)[0]) > 0.0


def test_a_constant_shift_of_the_logits_changes_nothing(rng):
    s, t = rng.standard_normal((4, 7)), rng.standard_normal((4, 7))
    shifted = distillation_forward(s + 100.0, t - 50.0, 2.0)[0]
    assert float(shifted) == pytest.approx(float(distillation_forward(s, t, 2.0)[0]), rel=1e-9)


def test_high_temperature_is_logit_matching_with_a_gradient_of_constant_size(rng,
                                                                            assert_rel_close):
    s, t = rng.standard_normal((6, 10)), rng.standard_normal((6, 10))
    centred = (s - s.mean(1, keepdims=True)) - (t - t.mean(1, keepdims=True))
    matching = (centred ** 2).sum() / (2 * 10 * 6)                  # (1 / 2VN) sum (s_c - t_c)^2
    grads = []
    for T in (50.0, 100.0, 200.0):
        loss, cache = distillation_forward(s, t, T)
        assert float(loss) == pytest.approx(matching, rel=3.0 / T)
        grads.append(np.abs(distillation_backward(1.0, cache)[0]).sum())
    assert max(grads) / min(grads) < 1.02                           # the T^2 factor at work
    dstudent = distillation_backward(1.0, distillation_forward(s, t, 200.0)[1])[0]
    assert_rel_close(dstudent, centred / (10 * 6), 0.01, "dstudent ~ (s_c - t_c) / (V N)")


def test_extreme_logits_stay_finite():
    s = np.array([[1000.0, -1000.0, 0.0]])
    t = np.array([[-1000.0, 1000.0, 0.0]])
    loss, cache = distillation_forward(s, t, 1.0)
    assert np.isfinite(float(loss)) and float(loss) == pytest.approx(2000.0)
    assert all(np.isfinite(g).all() for g in distillation_backward(1.0, cache))


@pytest.mark.parametrize("T", [0.0, -1.0, float("nan"), float("inf")])
def test_a_temperature_that_is_not_positive_and_finite_is_refused(T):
    with pytest.raises(ValueError, match="temperature"):
        distillation_forward(np.zeros((2, 3)), np.zeros((2, 3)), T)


def test_logits_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="teacher logits"):
        distillation_forward(np.zeros((2, 3)), np.zeros((2, 4)), 1.0)


def test_alpha_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        check_alpha(1.5)


def test_soft_and_hard_loss_mixes_the_two_and_its_gradient_is_exact(rng):
    s, t = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 5))
    y = rng.integers(0, 5, size=(2, 3))
    kd, ce = float(distillation_forward(s, t, 2.0)[0]), float(cross_entropy_forward(s, y)[0])
    assert float(soft_and_hard_loss(s, t, y, 2.0, 1.0)[0]) == pytest.approx(kd)
    assert float(soft_and_hard_loss(s, t, y, 2.0, 0.0)[0]) == pytest.approx(ce)
    assert float(soft_and_hard_loss(s, t, y, 2.0, 0.3)[0]) == pytest.approx(0.3 * kd + 0.7 * ce)

    def forward(student_logits):
        loss, dlogits = soft_and_hard_loss(student_logits, t, y, 2.0, 0.3)
        return loss, dlogits

    report = check_gradients(forward, lambda dloss, dlogits: dloss * dlogits,
                             {"student_logits": s}, tolerance=1e-7)
    assert report.passed, str(report)


def test_gpt_backward_from_logits_is_backward_of_the_loss(rng):
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    model.to(np.float64)
    idx, y = rng.integers(0, 11, size=(2, 8)), rng.integers(0, 11, size=(2, 8))
    model.forward(idx, y)
    model.backward()
    expected = {n: p.grad.copy() for n, p in model.named_parameters()}
    model.zero_grad()
    logits, _ = model.forward(idx)
    model.backward_from_logits(cross_entropy_backward(1.0, cross_entropy_forward(logits, y)[1]))
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, expected[name], rtol=1e-12, atol=1e-15, err_msg=name)
