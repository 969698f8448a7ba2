"""``tinylm train MODEL [--preset NAME] [--field value ...] [--model key=value ...] [--resume]``

Every TrainConfig field is a flag (``--max-iters 500``, ``--lr 3e-4``); ``--model`` sets
a field of the model's configuration (``--model hidden=256``). With ``--resume`` the run
continues from ``OUT_DIR/ckpt`` with the configuration stored there (flags still override,
e.g. a larger ``--max-iters``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from tinylm.checkpoint import load_checkpoint
from tinylm.data import load_tokenizer
from tinylm.models import MODEL_REGISTRY
from tinylm.train.config import TrainConfig
from tinylm.train.loop import CHECKPOINT_NAME, fit_counts, train
from tinylm.train.presets import get_preset
from tinylm.train.setup import build_model, prepare_data, with_training_window

TOKENIZER_FILE = "tokenizer.json"


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (use true/false).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model family, ``--preset``, ``--model``, ``--resume`` and one flag per TrainConfig
    field."""
    parser.add_argument("model", choices=sorted(MODEL_REGISTRY), help="model family")
    parser.add_argument("--preset", help="a named configuration (see tinylm/train/presets/)")
    parser.add_argument("--model", dest="model_overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a model configuration field")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/ckpt")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default_type = int if field.default is None else type(field.default)   # block_size
        if default_type is bool:
            parser.add_argument(flag, type=_bool, default=None, metavar="BOOL")
        elif default_type is tuple:
            parser.add_argument(flag, type=float, nargs="+", default=None)
        else:
            parser.add_argument(flag, type=default_type, default=None)


def resolve_configs(args) -> tuple[TrainConfig, dict]:
    """Preset (or the checkpoint when resuming), then flags on top."""
    if args.resume:
        out_dir = args.out_dir or (get_preset(args.preset)["train"].get("out_dir")
                                   if args.preset else None)
        if not out_dir:
            raise SystemExit("--resume needs --out-dir (or a --preset that names one).")
        _, meta = load_checkpoint(Path(out_dir) / CHECKPOINT_NAME)
        train_values, model_config = meta["train_config"], meta["model_config"]
    elif args.preset:
        preset = get_preset(args.preset)
        if preset["model"] != args.model:
            raise SystemExit(f"preset {args.preset!r} is for model {preset['model']!r}, "
                             f"not {args.model!r}.")
        train_values, model_config = dict(preset["train"]), dict(preset["model_config"])
    else:
        train_values, model_config = {}, {}
    for field in dataclasses.fields(TrainConfig):
        value = getattr(args, field.name, None)
        if value is not None:
            train_values[field.name] = tuple(value) if isinstance(value, list) else value
    for item in args.model_overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--model expects KEY=VALUE, got {item!r}.")
        model_config[key] = _parse_value(value)
    model_config.pop("vocab_size", None)
    return TrainConfig.from_dict(train_values), model_config


def run(args) -> int:
    """Train (or, for a count-based model, fit) and write the checkpoint, tokenizer and plot."""
    cfg, model_config = resolve_configs(args)
    data = prepare_data(cfg)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_path = out_dir / TOKENIZER_FILE
    if args.resume and tokenizer_path.exists():
        data.tokenizer = load_tokenizer(tokenizer_path)
    else:
        data.tokenizer.save(tokenizer_path)
    model = build_model(args.model, model_config, data.tokenizer.vocab_size)
    cfg = with_training_window(cfg, model)
    print(f"{args.model}: {model.num_parameters():,} parameters; {len(data.train):,} training "
          f"and {len(data.val):,} validation tokens; vocabulary {data.tokenizer.vocab_size}")
    started = time.perf_counter()
    if model.trainable:
        history = train(model, args.model, cfg, data.train, data.val, resume=args.resume)
    else:                              # count-based (n-gram): counting replaces training
        history = fit_counts(model, args.model, cfg, data.train, data.val)
    final = history.evals[-1]
    print(f"done in {time.perf_counter() - started:.1f} s: val loss {final['val_loss']:.4f}, "
          f"val perplexity {final['val_perplexity']:.2f}")
    print(f"checkpoint: {out_dir / CHECKPOINT_NAME}.npz"
          + (f"  loss curve: {out_dir / 'loss.png'}" if model.trainable else ""))
    return 0
