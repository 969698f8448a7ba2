"""``tinylm pretrain bert|gpt [--preset NAME] [--model KEY=VALUE ...] [--setting KEY=VALUE ...]
[--max-steps N] [--max-minutes M] [--out-dir DIR] [--resume | --overwrite]``

Pre-train a BERT (masked LM) or a GPT (next token) on unlabelled English
(tinylm/train/pretrain_run.py). The preset (bert-small, gpt-small) fills the run's settings
and the model's configuration; ``--model`` overrides a model field (``--model n_layer=6``),
``--setting`` any run setting (``--setting corpora=ptb,fra-eng``). ``--resume`` continues
OUT_DIR's run with its stored settings and vocabulary (it may train longer, not change the
data or the model). ``--setting init=RUN`` starts a new run from RUN's best parameters,
shape and tokenizer -- e.g. domain-adaptive pre-training on a task's own unlabelled text:
``--setting init=runs/bert-small --setting corpora=sms-spam``. The checkpoint is what
``tinylm finetune RUN`` starts from.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from tinylm.checkpoint import checkpoint_exists, load_metadata
from tinylm.commands.arguments import model_overrides, nonnegative_float, positive_int, \
    refuse_to_replace
from tinylm.data.tokenizers import tokenizer_from_dict
from tinylm.train.loop import CHECKPOINT_NAME
from tinylm.train.presets import get_preset
from tinylm.train.pretrain_run import (FAMILIES, PRETRAINED_MODEL, PretrainSettings,
                                       pretrain_settings, train_pretrain)

SETTING_NAMES = {f.name for f in dataclasses.fields(PretrainSettings)}
FIXED_ON_RESUME = ("family", "corpora", "val_fraction", "tokenizer", "vocab_size",
                   "min_count", "block_size", "seed", "init")
INHERITED_FROM_INIT = ("tokenizer", "vocab_size", "min_count", "block_size", "next_sentence")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("family", choices=sorted(FAMILIES))
    parser.add_argument("--preset", help="bert-small or gpt-small (default: FAMILY-small)")
    parser.add_argument("--model", dest="model_overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a model configuration field")
    parser.add_argument("--setting", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="override a pre-training setting")
    parser.add_argument("--max-steps", type=positive_int)
    parser.add_argument("--max-minutes", type=nonnegative_float)
    parser.add_argument("--out-dir")
    parser.add_argument("--no-progress", action="store_true")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue OUT_DIR's run")
    group.add_argument("--overwrite", action="store_true", help="replace OUT_DIR's run")


def _values(args) -> dict:
    values = model_overrides(args.settings, flag="--setting")
    unknown = sorted(set(values) - SETTING_NAMES)
    if unknown:
        raise ValueError(f"--setting {unknown[0]} is not a pre-training setting; choose from "
                         f"{sorted(SETTING_NAMES)}.")
    for flag in ("max_steps", "max_minutes", "out_dir"):
        if getattr(args, flag) is not None:
            values[flag] = getattr(args, flag)
    if args.no_progress:
        values["progress"] = False
    return values


def _fresh(args, values: dict):
    name = args.preset or f"{args.family}-small"
    preset = get_preset(name)
    if preset["model"] != PRETRAINED_MODEL or preset["train"]["family"] != args.family:
        raise ValueError(f"preset {name!r} is not a {args.family} pre-training preset; use "
                         f"{args.family}-small.")
    if values.get("init"):
        return _continued(args, {**preset["train"], **values})
    model_config = dict(preset["model_config"], **model_overrides(args.model_overrides))
    return pretrain_settings({**preset["train"], **values}), model_config, None


def _pretraining_metadata(out_dir, flag: str, fix: str) -> dict:
    if not checkpoint_exists(Path(out_dir) / CHECKPOINT_NAME):
        raise ValueError(f"{flag}: {out_dir} holds no pre-training checkpoint; {fix}")
    meta = load_metadata(Path(out_dir) / CHECKPOINT_NAME)
    if meta.get("model") != PRETRAINED_MODEL:
        raise ValueError(f"{flag}: {out_dir} holds a {meta.get('model')!r} run, not a "
                         f"pre-training run; {fix}")
    return meta


def _backbone_config(meta: dict) -> dict:
    return {k: v for k, v in meta["model_config"].items()
            if k not in ("vocab_size", "block_size", "next_sentence")}


def _continued(args, values: dict):
    """A new run from ``init``'s best parameters: its model, tokenizer and windows."""
    init = values["init"]
    meta = _pretraining_metadata(init, f"--setting init={init}",
                                 "give the OUT_DIR of `tinylm pretrain`.")
    if meta.get("family") != args.family:
        raise ValueError(f"--setting init={init}: it is a {meta.get('family')!r} run; continue "
                         f"it with `tinylm pretrain {meta.get('family')}`.")
    if args.model_overrides:
        raise ValueError("--model cannot change the model of a continued run (init=...): its "
                         "parameters come from the earlier run.")
    stored = meta["train_config"]
    given = [k for k in INHERITED_FROM_INIT
             if k in model_overrides(args.settings, flag="--setting") and
             values[k] != stored.get(k)]
    if given:
        raise ValueError(f"--setting {given[0]} cannot differ from init={init}'s "
                         f"({stored.get(given[0])!r}): the continued run keeps its vocabulary "
                         "and model.")
    values = {**values, **{k: stored[k] for k in INHERITED_FROM_INIT if k in stored}}
    tokenizer = tokenizer_from_dict(meta["provenance"]["tokenizer"])
    return pretrain_settings(values), _backbone_config(meta), tokenizer


def _resumed(args, values: dict):
    out_dir = values.get("out_dir") or get_preset(args.preset or f"{args.family}-small")[
        "train"]["out_dir"]
    meta = _pretraining_metadata(out_dir, "--resume", "give the run's --out-dir, or start "
                                 "without --resume.")
    if args.model_overrides:
        raise ValueError("--model cannot change the model of a resumed run; start a new run "
                         "in another --out-dir.")
    if meta.get("family") != args.family:
        raise ValueError(f"{out_dir} holds a {meta.get('family', meta['model'])!r} run, not a "
                         f"{args.family} pre-training run.")
    stored = meta["train_config"]
    changed = [k for k in FIXED_ON_RESUME if k in values and values[k] != stored.get(k)]
    if changed:
        raise ValueError(f"--resume cannot change {changed[0]} (the data, vocabulary or model "
                         "depend on it); start a new run in another --out-dir.")
    settings = pretrain_settings({**stored, **values, "out_dir": str(out_dir)})
    return settings, _backbone_config(meta), tokenizer_from_dict(meta["provenance"]["tokenizer"])


def run(args) -> int:
    values = _values(args)
    settings, model_config, tokenizer = (_resumed if args.resume else _fresh)(args, values)
    out_dir = Path(settings.out_dir)
    refuse_to_replace(args, out_dir / CHECKPOINT_NAME)
    history = train_pretrain(settings, model_config, resume=args.resume, tokenizer=tokenizer)
    last = history.evals[-1]
    print(f"done in {history.elapsed_s / 60:.1f} min ({history.iteration} steps): val loss "
          f"{last['val_loss']:.4f}, accuracy {last['val_accuracy']:.3f}, perplexity "
          f"{last['val_perplexity']:.1f}; best val loss {history.best['val_loss']:.4f} at step "
          f"{history.best['iter']}")
    print(f"checkpoint: {out_dir / CHECKPOINT_NAME}.json  loss curve: {out_dir / 'loss.png'}")
    return 0
