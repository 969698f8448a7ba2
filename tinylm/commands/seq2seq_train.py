"""``tinylm train seq2seq --preset NAME [--model KEY=VALUE ...] [--setting KEY=VALUE ...]
[--max-steps N] [--max-minutes M] [--out-dir DIR] [--resume | --overwrite]``

The sequence-to-sequence branch of ``tinylm train`` (tinylm/train/seq2seq_run.py). A preset
(addition, addition-plain, addition-no-attention, date, fra-eng, fra-eng-rnn, cmn-eng) fills
the run's settings and the model's configuration; ``--model`` overrides a model field
(``--model n_hidden=256``), ``--setting`` any run setting (``--setting token_budget=2048``),
and the training flags that name a run setting too (``--lr``, ``--seed``, ``--out-dir``,
``--eval-interval``, ...); the other language-model flags are refused rather than ignored.
``--resume`` continues OUT_DIR's run with its stored settings and vocabularies; it may
change how long and how it trains (``--max-steps``, ``--lr``, ...), not its data or model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tinylm.checkpoint import checkpoint_exists
from tinylm.commands.arguments import model_overrides, refuse_to_replace
from tinylm.data.pair_tokens import SideVocabulary
from tinylm.train.loop import CHECKPOINT_NAME
from tinylm.train.presets import get_preset
from tinylm.train.restore import SEQ2SEQ_MODEL, check_same_data, read_run_metadata
from tinylm.train.seq2seq_run import Seq2SeqSettings, seq2seq_settings, train_seq2seq

SETTING_NAMES = {f.name for f in dataclasses.fields(Seq2SeqSettings)}
FIXED_ON_RESUME = ("dataset", "reverse_pairs", "src_scheme", "tgt_scheme", "min_count",
                   "max_tokens", "valid_fraction", "test_fraction", "keep_together",
                   "reverse_source", "family", "token_budget", "seed")


def _setting_values(args, flags: dict) -> dict:
    """The settings given on the command line: --setting items, then the named flags."""
    foreign = sorted(set(flags) - SETTING_NAMES)
    if foreign:
        names = ", ".join("--" + f.replace("_", "-") for f in foreign)
        raise ValueError(f"{names} {'does' if len(foreign) == 1 else 'do'} not apply to "
                         "seq2seq (a language-model setting); set a seq2seq run setting with "
                         "--setting KEY=VALUE (e.g. --setting token_budget=2048).")
    values = model_overrides(args.settings, flag="--setting")
    unknown = sorted(set(values) - SETTING_NAMES)
    if unknown:
        raise ValueError(f"--setting {unknown[0]} is not a seq2seq setting; choose from "
                         f"{sorted(SETTING_NAMES)}.")
    values.update(flags)
    for name in ("max_steps", "max_minutes"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return values


def _fresh_configs(args, values: dict):
    """(settings, model configuration) from the preset with the command line on top."""
    if not args.preset:
        raise ValueError("tinylm train seq2seq needs --preset NAME (addition, date, fra-eng, "
                         "...); see tinylm/train/presets/seq2seq.py.")
    preset = get_preset(args.preset)
    if preset["model"] != SEQ2SEQ_MODEL:
        raise ValueError(f"preset {args.preset!r} is for model {preset['model']!r}, not "
                         "seq2seq.")
    model_config = dict(preset["model_config"], **model_overrides(args.model_overrides))
    return seq2seq_settings({**preset["train"], **values}), model_config


def _resumed_configs(args, values: dict):
    """(settings, model configuration, vocabularies) of the run in OUT_DIR."""
    out_dir = values.get("out_dir") or (get_preset(args.preset)["train"].get("out_dir")
                                        if args.preset else None)
    if not out_dir or not checkpoint_exists(Path(out_dir) / CHECKPOINT_NAME):
        raise ValueError(f"--resume: {out_dir or 'no --out-dir'} holds no seq2seq checkpoint "
                         "to continue; give the run's --out-dir, or start without --resume.")
    if args.model_overrides:
        raise ValueError("--model cannot change the model of a resumed run (its parameters "
                         "have the stored shapes); start a new run in another --out-dir.")
    meta = read_run_metadata(out_dir)
    if meta["model"] != SEQ2SEQ_MODEL:
        raise ValueError(f"{out_dir} holds a {meta['model']!r} run, not a seq2seq one.")
    stored = meta["train_config"]
    changed = [k for k in FIXED_ON_RESUME if k in values and values[k] != stored.get(k)]
    if changed:
        raise ValueError(f"--resume cannot change {changed[0]} (the data, vocabularies or "
                         "model of the run depend on it); start a new run in another "
                         "--out-dir.")
    settings = seq2seq_settings({**stored, **values, "out_dir": str(out_dir)})
    check_same_data(meta, settings.dataset)
    model_config = {k: v for k, v in meta["model_config"].items()
                    if k not in ("src_vocab", "tgt_vocab")}
    vocab = meta["provenance"]["vocab"]
    vocabularies = (SideVocabulary.from_dict(vocab["source"]),
                    SideVocabulary.from_dict(vocab["target"]))
    return settings, model_config, vocabularies


def run_seq2seq_training(args, flags: dict) -> int:
    """Check everything, then train; nothing is written before the checks pass."""
    values = _setting_values(args, flags)
    vocabularies = None
    if args.resume:
        settings, model_config, vocabularies = _resumed_configs(args, values)
    else:
        settings, model_config = _fresh_configs(args, values)
    out_dir = Path(settings.out_dir)
    refuse_to_replace(args, out_dir / CHECKPOINT_NAME)
    history = train_seq2seq(settings, model_config, resume=args.resume,
                            vocabularies=vocabularies)
    best = history.best
    print(f"done in {history.elapsed_s / 60:.1f} min ({history.iteration} steps, stopped by "
          f"{history.stopped_by}): best val loss {best['val_loss']:.4f} at step {best['iter']}")
    print(f"checkpoint: {out_dir / CHECKPOINT_NAME}.json  loss curve: {out_dir / 'loss.png'}")
    return 0
