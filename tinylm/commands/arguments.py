"""What the commands share: argument types that parse one flag and refuse a value out of
range at parse time (so ``tinylm generate --max-new-tokens -5`` stops with a one-line usage
error instead of running), the ``--model KEY=VALUE`` parser, and the rule that a fresh run
never replaces a trained one."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from tinylm.checkpoint import checkpoint_exists


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}.") from None


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be an integer >= 1.")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be an integer >= 0.")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(f"{value} must be a finite number >= 0.")
    return value


def probability(text: str) -> float:
    """A number in (0, 1]."""
    value = _number(text, float)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} must lie in (0, 1].")
    return value


def model_overrides(items, flag: str = "--model") -> dict:
    """``--model KEY=VALUE`` items (or those of another ``flag``) -> {key: value} (values
    parsed as JSON where they can be)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} expects KEY=VALUE (e.g. {flag} n_hidden=256), got "
                             f"{item!r}.")
        if key == "vocab_size" and flag == "--model":
            raise ValueError("--model vocab_size cannot be set: the vocabulary size comes from "
                             "the tokenizer built on the data (see --tokenizer, --min-freq).")
        overrides[key] = _json_or_text(value)
    return overrides


def refuse_to_replace(args, checkpoint: Path) -> None:
    """A fresh run never replaces a trained model unless told to (``checkpoint``: DIR/ckpt)."""
    if args.resume or args.overwrite or not checkpoint_exists(checkpoint):
        return
    raise ValueError(f"{checkpoint.parent} already holds a checkpoint ({checkpoint}.json); "
                     "it is kept. Continue it with --resume, replace it with --overwrite, or "
                     "choose another --out-dir.")


def _json_or_text(text: str):
    """'256' -> 256, 'true' -> True, '[0.9, 0.95]' -> [0.9, 0.95]; anything else stays text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
