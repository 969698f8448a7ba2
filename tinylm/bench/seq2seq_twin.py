"""``tinylm bench seq2seq-twin RUN``: train the PyTorch twin of a ``tinylm train seq2seq``
Transformer run on the same data, batches, schedule and number of steps, then score both
models the same way.

    tinylm bench seq2seq-twin runs/fra-eng [--beam 1] [--limit 0] [--threads 2] [--json]

What is shared, so that the two runs differ only in the arithmetic of their libraries:

* the data: the run's settings and vocabularies (``prepare_pairs``), the same split;
* the initial weights: a tinylm model built from the run's configuration and seed (the
  run's own step-0 weights), copied into the twin (tinylm/bench/twins/seq2seq_transformer.py);
* the batches: ``PairBatches.batch_at(step)`` for every step, in order;
* the schedule: ``lr_at(step, settings)``, AdamW with the run's betas, eps and weight decay
  (on the matrices, ``decay_groups``), global gradient-norm clipping at ``grad_clip``, the
  run's label smoothing; dropout p as configured (torch draws its own masks);
* the steps: as many as the run took (``run.iteration`` of its checkpoint);
* model selection: the validation loss every ``eval_interval`` steps and at the end, the
  best parameters kept, as the run does;
* the scoring: the twin's best parameters are copied back into a tinylm model and decoded
  by the same ``Translator`` (greedy, or beam search with ``--beam``) as the run's, and
  scored by the same BLEU (or exact match) on the same split.

The result: ``tinylm_score``, ``torch_score`` and their difference, both best validation
losses, and each side's training time (tinylm's from the run's history, which counts its
validation passes too). Float32, like the run.
"""

from __future__ import annotations

import time

import numpy

from tinylm.bench import import_torch
from tinylm.bench.twins.seq2seq_transformer import seq2seq_transformer_twin, to_torch_layout
from tinylm.data.pair_tokens import SideVocabulary
from tinylm.optim import decay_groups
from tinylm.train.restore import read_run
from tinylm.train.seq2seq_run import (PairBatches, build_model, lr_at, prepare_pairs,
                                      seq2seq_settings)
from tinylm.train.translator import Translator, evaluate_split, load_translator


def add_arguments(parser) -> None:
    parser.add_argument("run", help="a `tinylm train seq2seq` run folder (Transformer family)")
    parser.add_argument("--beam", type=int, default=1, help="beam width for scoring (1: greedy)")
    parser.add_argument("--limit", type=int, default=0,
                        help="score the first N test pairs only (0: all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")


def _tensors(torch, batch) -> tuple:
    return (torch.from_numpy(batch.src), torch.from_numpy(batch.tgt_in),
            torch.from_numpy(batch.tgt_out), torch.from_numpy(batch.src_mask))


def _validation_loss(torch, twin, batches: PairBatches) -> float:
    """Mean cross-entropy per real target token over the validation split."""
    total, count = 0.0, 0
    twin.eval()
    with torch.no_grad():
        for b in batches.validation_batches():
            _, loss = twin(*_tensors(torch, b))
            tokens = int((b.tgt_out != -100).sum())
            total, count = total + float(loss) * tokens, count + tokens
    twin.train()
    return total / count


def train_twin(torch, twin, settings, batches: PairBatches, steps: int) -> dict:
    """The run's training loop, in torch: -> {"best_state", "best_val_loss", "seconds"}."""
    params = list(twin.parameters())
    optimizer = torch.optim.AdamW(decay_groups(params, settings.weight_decay), lr=settings.lr,
                                  betas=tuple(settings.betas), eps=settings.eps,
                                  weight_decay=settings.weight_decay)
    best = {"best_val_loss": float("inf"), "best_state": None}
    started = time.perf_counter()
    twin.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, settings)
        _, loss = twin(*_tensors(torch, batches.batch_at(step)),
                       label_smoothing=settings.label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        if settings.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
        optimizer.step()
        if (step + 1) % settings.eval_interval == 0 or step + 1 == steps:
            val_loss = _validation_loss(torch, twin, batches)
            if val_loss < best["best_val_loss"]:
                best = {"best_val_loss": val_loss,
                        "best_state": {n: p.detach().clone() for n, p in twin.named_parameters()}}
    best["seconds"] = time.perf_counter() - started
    return best


def _tinylm_copy(model, twin_state: dict):
    """A tinylm model holding the twin's parameters (torch layout -> tinylm's)."""
    state = {name: to_torch_layout(name, tensor.detach().numpy())
             for name, tensor in twin_state.items()}
    model.load_state_dict(state)
    return model.eval()


def run(args) -> dict:
    torch = import_torch()
    if torch is None:
        raise SystemExit("tinylm bench seq2seq-twin needs PyTorch: pip install -r "
                         "requirements-dev.txt")
    torch.set_num_threads(args.threads)
    _, meta = read_run(args.run)
    settings = seq2seq_settings(meta["train_config"])
    if settings.family != "transformer":
        raise ValueError(f"{args.run} is a {settings.family!r} run; the twin trainer covers the "
                         "Transformer family (tinylm/bench/twins/seq2seq_transformer.py).")
    vocab = meta["provenance"]["vocab"]
    source, target = SideVocabulary.from_dict(vocab["source"]), SideVocabulary.from_dict(
        vocab["target"])
    data = prepare_pairs(settings, (source, target))
    model_config = {k: v for k, v in meta["model_config"].items()
                    if k not in ("src_vocab", "tgt_vocab")}
    model = build_model(settings.family, model_config, len(source), len(target))
    twin = seq2seq_transformer_twin(torch, model)          # the run's step-0 weights
    steps = int(meta["run"]["iteration"])
    trained = train_twin(torch, twin, settings, PairBatches(settings, data), steps)
    twin_translator = Translator(_tinylm_copy(model, trained["best_state"]), source, target,
                                 settings)
    ours = evaluate_split(load_translator(args.run), "test", args.beam, limit=args.limit)
    theirs = evaluate_split(twin_translator, "test", args.beam, limit=args.limit)
    return {"run": str(args.run), "steps": steps, "metric": ours["metric"],
            "split": "test", "pairs": ours["pairs"], "beam": args.beam,
            "tinylm_score": round(ours["score"], 2), "torch_score": round(theirs["score"], 2),
            "difference": round(ours["score"] - theirs["score"], 2),
            "tinylm_best_val_loss": round(meta["run"]["best"]["val_loss"], 4),
            "torch_best_val_loss": round(trained["best_val_loss"], 4),
            "tinylm_train_s": round(meta["run"]["elapsed_s"], 1),
            "torch_train_s": round(trained["seconds"], 1), "threads": args.threads,
            "torch_version": torch.__version__, "numpy_version": numpy.__version__}
