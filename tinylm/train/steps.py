"""The step loop that the step-budgeted runs share (translation, pre-training, fine-tuning):
train until ``max_steps`` or ``max_minutes``, evaluate and save every ``eval_interval`` steps
and at the end, keep a history that a resumed run continues.

A run object brings the work of one step and of one evaluation:

    run.limits                max_steps, max_minutes, eval_interval, out_dir, progress
                              (its settings, or a ``LoopLimits`` derived from them)
    run.history               a StepHistory
    run.train_step(step)      one optimisation step -> its training loss (a float)
    run.evaluate(started)     validation into history.evals (and history.best), then save
    run.save()                the checkpoint alone

The loop never decides what a step or an evaluation is; the runs never repeat the loop.
"""

from __future__ import annotations

import dataclasses
import math
import time

from tinylm.train.loop import NonFiniteLossError, interrupted


@dataclasses.dataclass(frozen=True)
class LoopLimits:
    """How long a run trains and how often it evaluates."""

    max_steps: int
    eval_interval: int
    out_dir: str
    progress: bool = True
    max_minutes: float = 0.0             # 0: no time limit


@dataclasses.dataclass
class StepHistory:
    """What a run has done: ``train_losses`` [(step, loss)], ``evals`` [{"iter", ...}],
    the best evaluation, training seconds and why it stopped."""

    iteration: int = 0
    train_losses: list = dataclasses.field(default_factory=list)
    evals: list = dataclasses.field(default_factory=list)
    best: dict | None = None
    elapsed_s: float = 0.0
    stopped_by: str = ""


def history_from_dict(values: dict, where) -> StepHistory:
    """The history saved in a checkpoint's JSON; a malformed one names the file."""
    from tinylm.checkpoint import CheckpointError
    try:
        history = StepHistory(**values)
    except TypeError as e:
        raise CheckpointError(f"the run history in {where} is malformed ({e}).") from e
    history.train_losses = [tuple(x) for x in history.train_losses]
    return history


def check_finite_loss(loss: float, step: int) -> float:
    """The loss itself, or NonFiniteLossError naming the step (the last checkpoint stays)."""
    if not math.isfinite(loss):
        raise NonFiniteLossError(f"the training loss is {loss} at step {step}; the run "
                                 "diverged (the last checkpoint is kept). Lower lr or set "
                                 "grad_clip (e.g. 1.0).")
    return loss


def recent_train_loss(history: StepHistory, steps: int):
    """The mean training loss of the last ``steps`` steps, or None before the first."""
    recent = [loss for _, loss in history.train_losses[-max(1, steps):]]
    return sum(recent) / len(recent) if recent else None


def _progress_bar(settings, initial: int):
    if not settings.progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=settings.max_steps, initial=initial, unit="step", dynamic_ncols=True)


def out_of_time(settings, started: float) -> bool:
    return settings.max_minutes > 0 and time.perf_counter() - started >= 60 * settings.max_minutes


def run_steps(run, log) -> None:
    """Train ``run`` until max_steps or max_minutes, evaluating (and saving) every
    eval_interval steps and at the end; a Ctrl-C stops between steps, naming the last
    checkpoint."""
    s, h = run.limits, run.history
    bar = _progress_bar(s, h.iteration)
    started = time.perf_counter() - h.elapsed_s
    say = log if bar is None else bar.write
    try:
        while h.iteration < s.max_steps and not out_of_time(s, started):
            loss = run.train_step(h.iteration)
            h.train_losses.append((h.iteration, loss))
            h.iteration += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{run.optimizer.lr:.2e}")
            if h.iteration % s.eval_interval == 0:
                run.evaluate(started, say)
        h.stopped_by = "max_steps" if h.iteration >= s.max_steps else "max_minutes"
        if not h.evals or h.evals[-1]["iter"] != h.iteration:
            run.evaluate(started, say)
        else:
            h.elapsed_s = time.perf_counter() - started
            run.save()
    except KeyboardInterrupt:
        raise interrupted(h.iteration, h.evals, s.out_dir) from None
    finally:
        if bar is not None:
            bar.close()
