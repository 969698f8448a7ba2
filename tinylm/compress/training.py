"""What the compression runs (pruning's recovery, distillation) add to tinylm.train's
building blocks: the validation loss recorded into a run's history, in the shape the
training loop records it (``RunState.evals``), so that their checkpoints read like any run's."""

from __future__ import annotations

import math

from tinylm.evaluate import evaluate_lm
from tinylm.train.loop import NonFiniteLossError, RunState


def evaluate_into(run: RunState, model, cfg, val_ids, xp, log=print) -> dict:
    """Measure the validation loss (cfg.eval_iters batches, 0 = all) at ``run.iteration``,
    append it to ``run.evals`` and log it; a non-finite loss raises NonFiniteLossError."""
    result = evaluate_lm(model, val_ids, cfg.batch_size, cfg.block_size, xp=xp,
                         max_batches=cfg.eval_iters)
    if not math.isfinite(result["loss"]):
        raise NonFiniteLossError(f"the validation loss is {result['loss']} at step "
                                 f"{run.iteration}: the model's outputs are not finite.")
    recent = [loss for _, loss in run.train_losses[-max(1, cfg.eval_interval):]]
    entry = {"iter": run.iteration, "val_loss": result["loss"],
             "val_perplexity": result["perplexity"],
             "train_loss": sum(recent) / len(recent) if recent else None}
    run.evals.append(entry)
    train_text = "n/a" if entry["train_loss"] is None else f"{entry['train_loss']:.4f}"
    log(f"step {run.iteration}: train loss {train_text}, val loss {result['loss']:.4f}, "
        f"val ppl {result['perplexity']:.2f}")
    return entry
