"""Distilling a trained GPT (the teacher) into a smaller one (the student).

At every step both models read the same batch x [B, T]; the teacher (frozen, in eval mode)
gives its logits t [B, T, V], the student its own s [B, T, V], and the student is trained on

    L = alpha T^2 KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) CE(s, y)

averaged over the B T positions (the derivation and the role of T^2 are in
tinylm/functional/distillation.py). The soft targets carry more per position than the
hard label y: the teacher's whole next-character distribution ("after 'th', 'e' is likely,
'a' possible, 'z' not"), which is what a small model fitted to one-hot labels must work out
from many examples.

Everything else is a normal training run, built from tinylm.train's pieces: the student's
TrainConfig (its preset: batch, schedule, AdamW, clipping), its batcher, optimizer and
checkpoints. The checkpoint is written by the loop's ``save_run`` with the student's data
provenance, so ``tinylm eval`` and ``tinylm generate`` read it like any GPT run; the
teacher and the settings are recorded under ``provenance["distillation"]``.

The teacher must speak the student's vocabulary: both tokenizers are compared before
anything runs. Chapter 11, section "Distillation".
"""

from __future__ import annotations

import math
import time

import numpy

from tinylm.backend import array_module_for
from tinylm.compress.training import evaluate_into
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.distillation import (check_temperature, distillation_backward,
                                            distillation_forward)
from tinylm.optim import clip_grad_norm, lr_at
from tinylm.train.loop import NonFiniteLossError, RunState, save_run, schedule_view
from tinylm.train.setup import build_batcher, build_optimizer, total_iters


def check_alpha(alpha: float) -> float:
    """The weight of the soft targets, in [0, 1]."""
    a = float(alpha)
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"distillation: alpha={alpha!r} must lie in [0, 1] (the weight of "
                         "the teacher's soft targets; 1 - alpha is the hard labels').")
    return a


def check_teacher(teacher, teacher_tokenizer, student_tokenizer, window: int) -> None:
    """The teacher must share the student's tokenizer and read windows of ``window`` tokens."""
    if teacher_tokenizer.to_dict() != student_tokenizer.to_dict():
        raise ValueError(f"distillation: the teacher's tokenizer ({teacher_tokenizer.type_name}, "
                         f"{teacher_tokenizer.vocab_size} tokens) differs from the one built on "
                         f"the student's data ({student_tokenizer.type_name}, "
                         f"{student_tokenizer.vocab_size} tokens); the two models must score "
                         "the same vocabulary: distil on the teacher's dataset and tokenizer.")
    limit = teacher.longest_window
    if limit is not None and window > limit:
        raise ValueError(f"distillation: the student trains on windows of {window} tokens but "
                         f"the teacher reads at most {limit}; give the student a block_size "
                         f"<= {limit}.")


def soft_and_hard_loss(student_logits, teacher_logits, targets, temperature: float,
                       alpha: float):
    """s, t [B, T, V], y [B, T] -> (L = alpha L_KD + (1 - alpha) CE, dL/ds [B, T, V])."""
    kd, kd_cache = distillation_forward(student_logits, teacher_logits, temperature)
    ce, ce_cache = cross_entropy_forward(student_logits, targets)
    dsoft, _ = distillation_backward(alpha, kd_cache)                   # the teacher's unused
    dhard = cross_entropy_backward(1.0 - alpha, ce_cache)
    return alpha * kd + (1.0 - alpha) * ce, dsoft + dhard


def distillation_step(student, teacher, optimizer, batcher, cfg, lr: float, xp,
                      temperature: float, alpha: float, it: int) -> float:
    """One optimizer step of the student on one batch; returns its loss L (a float)."""
    batch = batcher.next_batch()
    x, y = xp.asarray(batch.x), xp.asarray(batch.y)                     # [B, T]
    teacher_logits, _ = teacher.forward(x)                              # [B, T, V]
    student_logits, _ = student.forward(x)                              # [B, T, V]
    loss, dlogits = soft_and_hard_loss(student_logits, teacher_logits, y, temperature, alpha)
    loss = float(loss)
    if not math.isfinite(loss):
        raise NonFiniteLossError(f"the distillation loss is {loss} at step {it} (lr {lr:g}): "
                                 f"the run diverged (the last checkpoint in {cfg.out_dir} is "
                                 "kept). Lower the learning rate or set grad_clip.")
    optimizer.lr = lr
    student.backward_from_logits(dlogits)
    if cfg.grad_clip > 0:
        clip_grad_norm(student.parameters(), cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad()
    return loss


def distill(student, teacher, cfg, train_ids, val_ids, temperature: float = 2.0,
            alpha: float = 0.5, log=print, provenance: dict | None = None) -> RunState:
    """Train ``student`` (a GPT, in place) on ``teacher``'s soft targets and the hard labels
    for the steps of ``cfg``; evaluate and checkpoint every ``cfg.eval_interval`` steps and
    after the last, into ``cfg.out_dir``. Returns the run's history."""
    T, a = check_temperature(temperature), check_alpha(alpha)
    xp = array_module_for(cfg.device)
    dtype = numpy.dtype(cfg.dtype)
    student.to(dtype=dtype, device=cfg.device).train()
    teacher.to(dtype=dtype, device=cfg.device).eval()
    optimizer = build_optimizer(student, cfg)
    batcher = build_batcher(train_ids, cfg)
    max_iters = total_iters(cfg, batcher)
    sched = schedule_view(cfg, batcher, max_iters)
    run, start = RunState(), time.perf_counter()
    for it in range(max_iters + 1):
        if it % cfg.eval_interval == 0 or it == max_iters:
            evaluate_into(run, student, cfg, val_ids, xp, log)
            run.elapsed_s = time.perf_counter() - start
            save_run(cfg.out_dir, student, "gpt", cfg, run, optimizer, batcher, provenance)
        if it == max_iters:
            break
        lr = lr_at(it, sched)
        run.train_losses.append((it, distillation_step(student, teacher, optimizer, batcher,
                                                       cfg, lr, xp, T, a, it)))
        run.iteration += 1
    return run
