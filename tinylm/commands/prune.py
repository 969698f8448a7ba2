"""``tinylm prune RUN --sparsity S [--structured heads|neurons] [--finetune N] [--lr LR]
[--include-embeddings] --out RUN_P [--overwrite]``

Prunes a trained GPT run (tinylm/compress/prune.py): without ``--structured``, the fraction
S of the blocks' Linear weights with the smallest magnitudes over the whole model (also the
embeddings with ``--include-embeddings``); with ``--structured heads`` (``neurons``) the
fraction S of the attention heads (MLP neurons) of every layer with the smallest weight
norms. ``--finetune N`` then trains N recovery steps at the constant learning rate ``--lr``
(default: the run's final one, min_lr of a cosine schedule) with the pruned weights held at
zero. The result is a normal run in RUN_P: ``tinylm eval RUN_P`` and ``tinylm generate
RUN_P`` read it; what was pruned and the losses before and after are in its
``provenance.pruning``. It cannot be resumed with ``tinylm train --resume`` (the masks are
not part of a training checkpoint)."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from tinylm.checkpoint import checkpoint_exists
from tinylm.commands.arguments import nonnegative_int
from tinylm.compress.prune import (STRUCTURED_KINDS, check_sparsity, finetune_pruned, prune,
                                   recovery_config, weight_sparsity)
from tinylm.train.loop import CHECKPOINT_NAME, save_run
from tinylm.train.restore import load_trained, read_run_metadata
from tinylm.train.setup import prepare_data


def _sparsity(text: str) -> float:
    """An argparse type: a number in [0, 1)."""
    try:
        return check_sparsity(float(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run, the sparsity and kind, the recovery steps, the output folder."""
    parser.add_argument("run", help="OUT_DIR of a `tinylm train gpt` run")
    parser.add_argument("--sparsity", type=_sparsity, required=True,
                        help="fraction in [0, 1) of weights (or heads, neurons) to remove")
    parser.add_argument("--structured", choices=STRUCTURED_KINDS, default=None,
                        help="remove whole attention heads or MLP neurons")
    parser.add_argument("--include-embeddings", action="store_true",
                        help="magnitude pruning: rank wte and wpe with the block weights")
    parser.add_argument("--finetune", type=nonnegative_int, default=0, metavar="N",
                        help="recovery fine-tuning steps after pruning (default 0)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate of the recovery steps (default: the run's last)")
    parser.add_argument("--out", required=True, help="folder of the pruned run")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a checkpoint already in --out")


def _final_lr(cfg) -> float:
    """The learning rate the run ended with: min_lr after a cosine schedule, else lr."""
    return cfg.min_lr if cfg.schedule == "cosine" and cfg.min_lr > 0 else cfg.lr


def _load_gpt_run(path):
    """(model, tokenizer, TrainConfig, metadata) of a GPT run; another family raises."""
    meta = read_run_metadata(path)
    if meta["model"] != "gpt":
        raise ValueError(f"tinylm prune works on GPT runs; {path} holds a {meta['model']!r} "
                         "run.")
    return (*load_trained(path, same_data=True), meta)


def _record(args, kind: str, achieved: float, lr: float, meta: dict, evals: list) -> dict:
    """What the pruned run's provenance says about its pruning and its losses."""
    return {"source": str(args.run), "kind": kind, "sparsity": args.sparsity,
            "include_embeddings": args.include_embeddings, "weight_sparsity": achieved,
            "val_loss_source": meta["run"]["evals"][-1]["val_loss"],
            "val_loss_pruned": evals[0]["val_loss"], "finetune_steps": args.finetune,
            "finetune_lr": lr,
            "val_loss_finetuned": evals[-1]["val_loss"] if args.finetune else None}


def run(args) -> int:
    """Prune, optionally fine-tune, write RUN_P and print the validation losses."""
    out = Path(args.out)
    if checkpoint_exists(out / CHECKPOINT_NAME) and not args.overwrite:
        raise ValueError(f"{out} already holds a checkpoint; it is kept. Choose another --out "
                         "or give --overwrite.")
    model, tokenizer, cfg, meta = _load_gpt_run(args.run)
    lr = _final_lr(cfg) if args.lr is None else args.lr
    cfg = dataclasses.replace(cfg, out_dir=str(out), progress=False)
    recovery = recovery_config(cfg, args.finetune, lr)            # a bad --lr stops here
    data = prepare_data(cfg, tokenizer)
    started = time.perf_counter()
    masks = prune(model, args.sparsity, args.structured, args.include_embeddings)
    achieved = weight_sparsity(model, args.include_embeddings)
    kind = args.structured or "magnitude"
    print(f"pruned {kind} at sparsity {args.sparsity:g}: {achieved:.2%} of the prunable "
          "weights are zero")
    history = finetune_pruned(model, masks, cfg, data.train, data.val, args.finetune, lr)
    history.elapsed_s = time.perf_counter() - started
    record = _record(args, kind, achieved, lr, meta, history.evals)
    save_run(out, model, "gpt", recovery, history,
             provenance={**meta["provenance"], "pruning": record})
    recovered = record["val_loss_finetuned"]
    print(f"val loss: {record['val_loss_source']:.4f} before pruning, "
          f"{record['val_loss_pruned']:.4f} pruned"
          + ("" if recovered is None else f", {recovered:.4f} after {args.finetune} recovery "
                                          "steps"))
    print(f"checkpoint: {out / CHECKPOINT_NAME}.json")
    return 0
