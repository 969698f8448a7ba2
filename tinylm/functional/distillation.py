"""Knowledge distillation（知识蒸馏; Hinton, Vinyals & Dean 2015): the soft-target loss
between a student's and a teacher's logits at a temperature T.

Shapes: student logits s [..., V], teacher logits t [..., V], flattened to [N, V] (N
positions: batch x time for a language model). Per position n, at temperature T > 0:

    p_n = softmax(t_n / T)        the teacher's softened distribution (the soft targets)
    q_n = softmax(s_n / T)        the student's, at the same temperature

    L_KD = (T^2 / N) sum_n KL(p_n || q_n) = (T^2 / N) sum_n sum_j p_nj (log p_nj - log q_nj)

Both log p and log q are log-softmaxes, z/T - max - log sum exp(z/T - max), so neither
exp overflows nor log underflows; a p_nj that underflows to 0 multiplies a finite log and
adds 0, as it should. With identical logits the loss is exactly 0.

Gradient with respect to the student. Only -sum_j p_nj log q_nj depends on s, and
d log q_nk / d s_nj = ([j == k] - q_nj) / T, so with sum_k p_nk = 1

    dL_KD / ds_nj = (T^2 / N) * (-1/T) sum_k p_nk ([j == k] - q_nj) = T (q_nj - p_nj) / N.

Gradient with respect to the teacher (rarely needed: the teacher is frozen; it is here so
that the pair is a complete backward, checked like every other). With r_nj = log p_nj -
log q_nj and d p_nk / d t_nj = p_nk ([j == k] - p_nj) / T (the "+1" from d(p log p) sums to
zero over k):

    dL_KD / dt_nj = T p_nj (r_nj - sum_k p_nk r_nk) / N.

Why T^2. At a high temperature the softmax is nearly uniform: with centred logits
z_c = z - mean_j z, softmax(z/T)_j = (1 + z_c,j / T) / V + O(1/T^2), so

    q_nj - p_nj ~ (s_c,nj - t_c,nj) / (V T),

and the KL's own gradient, (q - p) / (T N), shrinks like 1/T^2. Multiplying by T^2 gives
T (q - p) / N ~ (s_c - t_c) / (V N), independent of T: the soft-target gradient keeps the
size of the hard-label cross-entropy's (p - onehot) / N whatever temperature is chosen, and
the weight alpha below keeps its meaning. In that limit the loss itself becomes

    L_KD -> (1 / (2 V N)) sum_n sum_j (s_c,nj - t_c,nj)^2,

matching the centred logits (Hinton et al.'s "logit matching" as a special case).

The loss a student is trained on mixes the soft targets with the data's hard labels y:

    L = alpha L_KD + (1 - alpha) CE(s, y)        CE at temperature 1 (cross_entropy.py)
    dL/ds = alpha T (q - p) / N + (1 - alpha) (softmax(s) - onehot(y)) / N

(tinylm/compress/distill.py combines the two pairs). torch's equivalent of L_KD is
``kl_div(log_softmax(s/T), log_softmax(t/T), log_target=True, reduction="batchmean") * T**2``
on the [N, V] rows. Chapter 11, section "Distillation".
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.backend import get_array_module
from tinylm.gradcheck import GradcheckCase


class DistillationCache(NamedTuple):
    """What the backward of the soft-target loss needs (rows flattened)."""
    student_probs: object    # q [N, V]
    teacher_probs: object    # p [N, V]
    log_ratio: object        # r = log p - log q [N, V]
    row_kl: object           # KL(p_n || q_n) [N, 1]
    temperature: float
    shape: tuple             # the logits' shape [..., V]


def _log_softmax_rows(z):
    """z [N, V] -> log softmax(z) [N, V], the maximum subtracted first."""
    xp = get_array_module(z)
    shifted = z - z.max(axis=1, keepdims=True)                            # [N, V]
    return shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))


def check_temperature(temperature: float) -> float:
    """The temperature as a float; anything not a finite number > 0 raises."""
    T = float(temperature)
    if not (T > 0.0 and T < float("inf")):
        raise ValueError(f"distillation: temperature={temperature!r} must be a finite number "
                         "> 0 (1 is the plain softmax; 2 to 4 are usual for distillation).")
    return T


def distillation_forward(student_logits, teacher_logits, temperature: float = 1.0):
    """student_logits s, teacher_logits t [..., V], T > 0
    -> (L_KD = T^2 mean_n KL(softmax(t_n/T) || softmax(s_n/T)), DistillationCache)."""
    xp = get_array_module(student_logits)
    T = check_temperature(temperature)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"distillation: student logits {tuple(student_logits.shape)} and "
                         f"teacher logits {tuple(teacher_logits.shape)} differ; the two models "
                         "must score the same positions over the same vocabulary.")
    V = student_logits.shape[-1]
    log_q = _log_softmax_rows(student_logits.reshape(-1, V) / T)          # [N, V]
    log_p = _log_softmax_rows(teacher_logits.reshape(-1, V) / T)          # [N, V]
    p = xp.exp(log_p)                                                     # [N, V]
    log_ratio = log_p - log_q                                             # [N, V]
    row_kl = (p * log_ratio).sum(axis=1, keepdims=True)                   # [N, 1]
    loss = (T * T) * row_kl.mean()
    cache = DistillationCache(xp.exp(log_q), p, log_ratio, row_kl, T, student_logits.shape)
    return xp.asarray(loss, dtype=student_logits.dtype), cache


def distillation_backward(dloss, cache: DistillationCache):
    """dloss: scalar upstream gradient -> (dstudent [..., V], dteacher [..., V]):
    T (q - p) / N and T p (r - KL_n) / N, times dloss."""
    q, p, T = cache.student_probs, cache.teacher_probs, cache.temperature
    scale = dloss * T / q.shape[0]
    dstudent = (q - p) * scale                                            # [N, V]
    dteacher = p * (cache.log_ratio - cache.row_kl) * scale               # [N, V]
    dtype = q.dtype
    return (dstudent.astype(dtype).reshape(cache.shape),
            dteacher.astype(dtype).reshape(cache.shape))


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    pair = (distillation_forward, distillation_backward)
    return [
        GradcheckCase("distillation", *pair,
                      lambda rng: {"student_logits": rng.standard_normal((5, 7)),
                                   "teacher_logits": rng.standard_normal((5, 7))}),
        GradcheckCase("distillation[T=4, 3-D]", *pair,
                      lambda rng: {"student_logits": 3.0 * rng.standard_normal((2, 3, 6)),
                                   "teacher_logits": 3.0 * rng.standard_normal((2, 3, 6)),
                                   "temperature": 4.0}),
        GradcheckCase("distillation[T=0.5]", *pair,
                      lambda rng: {"student_logits": rng.standard_normal((4, 5)),
                                   "teacher_logits": rng.standard_normal((4, 5)),
                                   "temperature": 0.5}),
    ]
