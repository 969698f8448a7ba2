"""Learning-rate schedules: the learning rate as a function of the iteration number.

The training loop sets ``opt.lr = lr_at(it, config)`` before step ``it`` (it = 0, 1, ...).
Three schedules (chapter 04, "Learning-rate schedules"):

* ``constant``:       lr(it) = lr
* ``warmup_cosine``:  nanoGPT's ``get_lr``; with W = warmup_iters, D = lr_decay_iters,
                          lr(it) = lr * (it + 1) / (W + 1)                          it < W
                          lr(it) = min_lr + (lr - min_lr) * (1 + cos(pi r)) / 2     W <= it <= D,
                                   r = (it - W) / (D - W)
                          lr(it) = min_lr                                           it > D
* ``step_decay``:     lr(it) = lr                                                  it < S
                      lr(it) = lr * f ** (1 + (it - S) // E)                       it >= S
                      with S = decay_start, E = decay_every, f = decay_factor. Zaremba et
                      al.'s PTB LSTM: lr 1, halved after every epoch from the 5th on, is
                      S = 4 * steps_per_epoch, E = steps_per_epoch, f = 0.5.

``lr_at`` reads its settings from any object with the right attributes (a
``tinylm.train.config.TrainConfig`` or a ``types.SimpleNamespace``); this module does not
import the training package.
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine", "step")


def constant(it: int, lr: float) -> float:
    """lr(it) = lr."""
    return lr


def warmup_cosine(it: int, lr: float, warmup_iters: int, lr_decay_iters: int,
                  min_lr: float) -> float:
    """Linear warm-up over ``warmup_iters`` steps, then a half cosine from ``lr`` down to
    ``min_lr`` at ``lr_decay_iters``, then ``min_lr`` (nanoGPT's get_lr):

        it < W:        lr * (it + 1) / (W + 1)
        W <= it <= D:  min_lr + (lr - min_lr) * 0.5 * (1 + cos(pi * (it - W) / (D - W)))
        it > D:        min_lr
    """
    if it < warmup_iters:
        return lr * (it + 1) / (warmup_iters + 1)
    if it >= lr_decay_iters:          # it == D gives min_lr in the cosine branch too
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)     # in [0, 1)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))                   # 1 -> 0
    return min_lr + coeff * (lr - min_lr)


def step_decay(it: int, lr: float, decay_start: int, decay_every: int,
               decay_factor: float) -> float:
    """Constant until ``decay_start``, then multiplied by ``decay_factor`` at the start and
    every ``decay_every`` iterations after:

        it < S:   lr
        it >= S:  lr * f ** (1 + (it - S) // E)
    """
    if decay_every < 1:
        raise ValueError(f"step_decay: decay_every={decay_every} must be >= 1 iteration.")
    if it < decay_start:
        return lr
    return lr * decay_factor ** (1 + (it - decay_start) // decay_every)


def lr_at(it: int, config) -> float:
    """The learning rate for iteration ``it`` under ``config.schedule``.

    ``config`` needs ``lr`` and ``schedule``; "cosine" also reads ``warmup_iters``,
    ``min_lr``, ``lr_decay_iters`` (0 means ``max_iters``) and ``max_iters``; "step" reads
    ``decay_start``, ``decay_every`` and ``decay_factor``.
    """
    schedule = config.schedule
    if schedule == "constant":
        return constant(it, config.lr)
    if schedule == "cosine":
        decay_iters = config.lr_decay_iters or config.max_iters
        return warmup_cosine(it, config.lr, config.warmup_iters, decay_iters, config.min_lr)
    if schedule == "step":
        return step_decay(it, config.lr, config.decay_start, config.decay_every,
                          config.decay_factor)
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of {SCHEDULES}.")
