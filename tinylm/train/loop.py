"""The training loop: batches -> forward -> loss -> backward -> clip -> step, with periodic
evaluation, checkpoints and exact resume.

One iteration ``it`` (0-based) is

    lr      = lr_at(it)                       (schedule)
    x, y, _ = batcher.next_batch()            [B, T] ids, y = x shifted by one
    loss    = model.forward(x, y)             mean cross-entropy
    model.backward(); clip_grad_norm(); optimizer.step(); zero_grad()

Every ``eval_interval`` steps (and after the last) the validation loss is measured with
``tinylm.evaluate.evaluate_lm`` and a checkpoint is written *at that point*: model,
optimizer moments, batcher position/generator, dropout generators and the loss history.
Because evaluation also resets any recurrent state, a run resumed from a checkpoint sees
exactly the same numbers as the uninterrupted run (``tests/test_train.py`` proves it).

With ``parallel`` (a ``tinylm.distributed.DataParallel``, one per rank of an MPI job) each
rank computes its rows of every batch and the ranks' gradients are summed before the step
(``data_parallel_step``); evaluation is sharded, rank 0 alone writes the checkpoint, the
plot and the progress bar. The checkpoint is the one-process run's, so it resumes with any
number of ranks (tests/test_distributed.py).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy

from tinylm.backend import array_module_for, to_numpy
from tinylm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, split_prefix
from tinylm.evaluate import evaluate_lm
from tinylm.functional.embedding import ids_checked_on_host
from tinylm.models.base import IGNORE_INDEX
from tinylm.optim import clip_grad_norm, lr_at
from tinylm.train.plot import plot_history
from tinylm.train.setup import build_batcher, build_optimizer, total_iters

CHECKPOINT_NAME = "ckpt"


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite: the run diverged."""


@dataclasses.dataclass
class RunState:
    iteration: int = 0
    train_losses: list = dataclasses.field(default_factory=list)   # [(it, loss), ...]
    evals: list = dataclasses.field(default_factory=list)          # [{"iter", "val_loss", ...}]
    elapsed_s: float = 0.0


def schedule_view(cfg, batcher, max_iters: int):
    """The config the lr schedule reads: with ``epochs`` > 0, step-decay settings are in
    epochs and are converted to iterations here."""
    if cfg.epochs > 0 and cfg.schedule == "step":
        spe = batcher.steps_per_epoch
        return dataclasses.replace(cfg, max_iters=max_iters, decay_start=cfg.decay_start * spe,
                                   decay_every=cfg.decay_every * spe)
    return dataclasses.replace(cfg, max_iters=max_iters)


def _rng_modules(model):
    return [(name, m) for name, m in model.named_modules() if hasattr(m, "get_rng_state")]


def save_run(out_dir, model, model_name, cfg, run: RunState, optimizer=None, batcher=None,
             provenance: dict | None = None, write: bool = True) -> Path | None:
    """The one writer of a run's checkpoint, ``OUT_DIR/ckpt``: the model's parameters and
    the run's metadata; with ``optimizer`` and ``batcher`` (a neural run) also what an exact
    resume needs: optimizer state, batcher position and dropout generators. ``provenance``
    (the tokenizer and the data's sha256, from the command line) is stored as it is.

    Parameters that are not finite are never saved: the last good checkpoint stays. The
    ranks of a data-parallel run other than rank 0 call it with ``write=False``: they take
    part in gathering a sharded optimizer state, and write nothing.
    """
    state = model.state_dict()
    broken = [name for name, value in state.items() if not numpy.isfinite(value).all()]
    if broken:
        raise NonFiniteLossError(f"parameters {broken[:3]} hold NaN or infinite values at step "
                                 f"{run.iteration}: the run diverged and is not saved; the last "
                                 f"good checkpoint in {out_dir} is kept. Lower the learning "
                                 "rate or set grad_clip (e.g. 1.0).")
    arrays = {f"model/{k}": v for k, v in state.items()}
    meta = {"model": model_name, "model_config": model.config_dict(), "train_config": cfg.to_dict(),
            "run": dataclasses.asdict(run), "provenance": provenance or {}}
    if optimizer is not None:
        arrays.update({f"optim/{k}": to_numpy(v) for k, v in optimizer.state_dict().items()})
        meta.update(batcher=batcher.state_dict(),
                    rng={name: m.get_rng_state() for name, m in _rng_modules(model)})
    return save_checkpoint(Path(out_dir) / CHECKPOINT_NAME, arrays, meta) if write else None


def _restore_generators(model, saved) -> None:
    """Every dropout generator of the model from the checkpoint, matched by module name."""
    own = dict(_rng_modules(model))
    if not isinstance(saved, dict) or set(saved) != set(own):
        found = sorted(saved) if isinstance(saved, dict) else saved
        raise CheckpointError(f"the checkpoint's generator states {found} do not match the "
                              f"model's dropout modules {sorted(own)}; it was saved for "
                              "another model configuration.")
    for name, module in own.items():
        module.set_rng_state(saved[name])


def restore_run(out_dir, model, optimizer, batcher) -> RunState:
    """Load OUT_DIR/ckpt into model, optimizer, batcher and generators -> the run so far."""
    arrays, meta = load_checkpoint(Path(out_dir) / CHECKPOINT_NAME)
    missing = [k for k in ("run", "batcher", "rng") if k not in meta]
    if missing:
        raise CheckpointError(f"{out_dir}/{CHECKPOINT_NAME}.json lacks {missing}: it cannot be "
                              "resumed exactly. It holds no training state: a count-based "
                              "model, an imported, quantised or pruned model; train the run "
                              "it came from instead.")
    model.load_state_dict(split_prefix(arrays, "model"))
    optimizer.load_state_dict(split_prefix(arrays, "optim"))
    batcher.load_state_dict(meta["batcher"])
    _restore_generators(model, meta["rng"])
    run = meta["run"]
    try:
        return RunState(int(run["iteration"]), [tuple(x) for x in run["train_losses"]],
                        list(run["evals"]), float(run["elapsed_s"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"the run history in {out_dir}/{CHECKPOINT_NAME}.json is "
                              f"malformed ({e!r}).") from e


def _progress(total, initial, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True)


def _evaluate(model, cfg, val_ids, xp, run: RunState, log, evaluate=evaluate_lm):
    """Measure the validation loss into ``run.evals``; a non-finite one stops the run before
    anything is saved, so the last good checkpoint stays."""
    result = evaluate(model, val_ids, cfg.batch_size, cfg.block_size, xp=xp,
                      max_batches=cfg.eval_iters)
    if not math.isfinite(result["perplexity"]):
        raise NonFiniteLossError(f"the validation loss is {result['loss']} at step "
                                 f"{run.iteration}: the run diverged and is not saved; the last "
                                 f"good checkpoint in {cfg.out_dir} is kept. Lower the learning "
                                 "rate or set grad_clip (e.g. 1.0).")
    recent = [loss for _, loss in run.train_losses[-max(1, cfg.eval_interval):]]
    entry = {"iter": run.iteration, "val_loss": result["loss"],
             "val_perplexity": result["perplexity"],
             "train_loss": float(numpy.mean(recent)) if recent else None}
    run.evals.append(entry)
    train_text = "n/a" if entry["train_loss"] is None else f"{entry['train_loss']:.4f}"
    log(f"step {run.iteration}: train loss {train_text}, val loss {result['loss']:.4f}, "
        f"val ppl {result['perplexity']:.2f}")


def interrupted(iteration: int, evals: list, out_dir) -> KeyboardInterrupt:
    """The Ctrl-C a run re-raises: where it stopped, and which checkpoint is intact."""
    saved = evals[-1]["iter"] if evals else None
    return KeyboardInterrupt(f"interrupted at step {iteration}; " + (
        f"the checkpoint of step {saved} in {out_dir} is intact: continue with --resume."
        if saved is not None else "no checkpoint was written."))


def train(model, model_name: str, cfg, train_ids, val_ids, resume: bool = False,
          log=print, provenance: dict | None = None, parallel=None) -> RunState:
    """Train ``model`` in place according to ``cfg``; returns the run's history.

    A Ctrl-C stops the run between two steps with a message naming the last checkpoint;
    a diverged run (``NonFiniteLossError``) stops before it would overwrite a good one.
    ``parallel``: this rank's ``DataParallel`` in an MPI job (None: one process).
    """
    xp = array_module_for(cfg.device)
    model.to(dtype=numpy.dtype(cfg.dtype), device=cfg.device).train()
    optimizer = build_optimizer(model, cfg)
    batcher = build_batcher(train_ids, cfg)
    max_iters = total_iters(cfg, batcher)
    sched = schedule_view(cfg, batcher, max_iters)
    out_dir = Path(cfg.out_dir)
    run = RunState()
    if resume:
        run = restore_run(out_dir, model, optimizer, batcher)
        log(f"resumed from {out_dir / CHECKPOINT_NAME} at step {run.iteration}")
    step, evaluate, root = train_step, evaluate_lm, True
    if parallel is not None:
        parallel.check_same_start(model, batcher, settings=cfg.to_dict(),
                                  training_data=train_ids, validation_data=val_ids)
        optimizer, batcher = parallel.distribute(model, optimizer, batcher, cfg.batch_size)
        log(parallel.describe())
        step, evaluate, root = data_parallel_step, parallel.evaluate_lm, parallel.world.is_root
    model.reset_state()
    bar = _progress(max_iters, run.iteration, cfg.progress and root)
    unread = []                                   # (it, lr, loss) still on the device
    try:
        start = time.perf_counter() - run.elapsed_s
        while True:
            it = run.iteration
            already_evaluated = bool(run.evals) and run.evals[-1]["iter"] == it
            if (it % cfg.eval_interval == 0 or it == max_iters) and not already_evaluated:
                _read_losses(unread, run, cfg)
                _evaluate(model, cfg, val_ids, xp, run, log if bar is None else bar.write,
                          evaluate)
                run.elapsed_s = time.perf_counter() - start
                save_run(cfg.out_dir, model, model_name, cfg, run, optimizer, batcher, provenance,
                         write=root)
            if it >= max_iters:
                break
            lr = lr_at(it, sched)
            unread.append((it, lr, step(model, optimizer, batcher, cfg, lr, xp, it)))
            run.iteration += 1
            if cfg.device == "cpu" or it % cfg.log_interval == 0:
                _read_losses(unread, run, cfg)
            if bar is not None:
                _show_step(bar, it, run.train_losses[-1][1], cfg)
    except KeyboardInterrupt:
        raise interrupted(run.iteration, run.evals, out_dir) from None
    finally:
        if bar is not None:
            bar.close()
    if root:
        plot_history(run, out_dir / "loss.png", title=f"{model_name} on {cfg.dataset}")
    return run


def _show_step(bar, it: int, loss: float, cfg) -> None:
    """Advance the progress bar; every log_interval steps show the loss and tokens/s."""
    bar.update(1)
    if it % cfg.log_interval == 0:
        steps_per_s = bar.format_dict["rate"] or 0
        bar.set_postfix(loss=f"{loss:.4f}",
                        tok_s=f"{cfg.batch_size * cfg.block_size * steps_per_s:,.0f}")


def fit_counts(model, model_name: str, cfg, train_ids, val_ids, log=print,
               provenance: dict | None = None) -> RunState:
    """A count-based model (the n-gram baseline) is "trained" by counting, then scored with
    the same evaluation code as the neural models and saved like them."""
    started = time.perf_counter()
    model.fit(train_ids)
    run = RunState()
    _evaluate(model, cfg, val_ids, numpy, run, log)
    run.elapsed_s = time.perf_counter() - started
    save_run(cfg.out_dir, model, model_name, cfg, run, provenance=provenance)
    return run


def train_step(model, optimizer, batcher, cfg, lr: float, xp, it: int):
    """One optimisation step; returns the training loss of the batch: a float on the host,
    where a non-finite one stops the run before the update; on a GPU the 0-d device array,
    which ``_read_losses`` reads later with others in one synchronisation (reading it here
    would make the host wait for the device at every step).

    The batch's ids are checked on the host before they are moved (``check_batch``), so
    that the model's own checks need not wait for the device (``ids_checked_on_host``)."""
    batch = batcher.next_batch()
    if batch.new_epoch:
        model.reset_state()
    optimizer.lr = lr
    loss = _forward(model, batch, cfg, xp)
    if cfg.device == "cpu":
        loss = _finite_loss(float(loss), it, lr, cfg)
    model.backward()
    if cfg.grad_clip > 0:
        clip_grad_norm(model.parameters(), cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad()
    return loss


def data_parallel_step(model, optimizer, batcher, cfg, lr: float, xp, it: int) -> float:
    """``train_step`` on one rank of a data-parallel run: ``batcher`` gives this rank's rows
    of the global batch and ``optimizer`` is its ``tinylm.distributed.DataParallel``.

    The rank's mean loss L_r over its n_r targets becomes the global batch's,
    L = sum_r n_r L_r / n, and its gradient is back-propagated with weight n_r / n, so that
    the *sum* over the ranks of their gradients is the global batch's gradient; then the
    global-norm clip and the step, the same on every rank. The loss returned is L, a float,
    the same on every rank: a non-finite one stops every rank at the same step. On a GPU
    the loss and each gradient bucket go through host memory (one synchronisation each)."""
    batch = batcher.next_batch()
    if batch.new_epoch:
        model.reset_state()
    optimizer.lr = lr
    targets = int(numpy.count_nonzero(batch.y != IGNORE_INDEX))      # what the mean runs over
    loss, share = optimizer.global_loss(_forward(model, batch, cfg, xp), targets)
    loss = _finite_loss(loss, it, lr, cfg)
    model.backward(share)
    optimizer.reduce_gradients()
    if cfg.grad_clip > 0:
        optimizer.clip_grad_norm(cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad()
    return loss


def _forward(model, batch, cfg, xp):
    """The batch's mean loss (a 0-d array on the model's device); on a GPU the ids are
    checked on the host before they move."""
    if cfg.device == "cpu":
        return model.forward(batch.x, batch.y)[1]
    model.check_batch(batch.x, batch.y)
    with ids_checked_on_host():
        return model.forward(xp.asarray(batch.x), xp.asarray(batch.y))[1]


def _read_losses(unread: list, run: RunState, cfg) -> None:
    """Move the losses of the steps in ``unread`` into ``run.train_losses`` (on a GPU with
    one device-to-host copy for all of them); the first non-finite one stops the run."""
    if not unread:
        return
    xp = array_module_for(cfg.device)
    values = to_numpy(xp.stack([xp.asarray(loss) for _, _, loss in unread]))
    for (it, lr, _), loss in zip(unread, values):
        run.train_losses.append((it, _finite_loss(float(loss), it, lr, cfg)))
    unread.clear()


def _finite_loss(loss: float, it: int, lr: float, cfg) -> float:
    if not math.isfinite(loss):
        raise NonFiniteLossError(f"the training loss is {loss} at step {it} (lr {lr:g}); the run "
                                 f"diverged and stops here (the last checkpoint in "
                                 f"{cfg.out_dir} is kept). Lower the learning rate or set "
                                 "grad_clip (e.g. 1.0).")
    return loss
