"""``tinylm train MODEL [--preset NAME] [--field value ...] [--model key=value ...]
[--resume | --overwrite]``

Every TrainConfig field is a flag (``--max-iters 500``, ``--lr 3e-4``), checked against its
rule as it is parsed; ``--model`` sets a field of the model's configuration (``--model
n_hidden=256``). With ``--resume`` the run continues from ``OUT_DIR/ckpt`` with the
configuration stored there (flags still override, e.g. a larger ``--max-iters``). A folder
that already holds a checkpoint is never overwritten by a fresh run unless ``--overwrite``
says so. ``tinylm train word2vec|glove`` and ``tinylm train seq2seq`` (with its own
``--setting``, ``--max-steps`` and ``--max-minutes``) are dispatched to
tinylm/commands/embedding_train.py and tinylm/commands/seq2seq_train.py.

Under ``mpiexec -n N`` a language model trains data-parallel (tinylm/distributed): every
rank computes B/N rows of each global batch of B, the losses are those of one process with
batch B, rank 0 alone prints, shows the progress bar and writes the checkpoint; ``--zero 1``
shards the optimizer state across the ranks. An error on any rank stops every rank.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from tinylm.checkpoint import checkpoint_exists
from tinylm.cli import report
from tinylm.commands.arguments import (model_overrides, nonnegative_float, nonnegative_int,
                                      refuse_to_replace)
from tinylm.distributed import ZERO_STAGES, DataParallel, init_world, stop_every_rank_on_error
from tinylm.embeddings.registry import EMBEDDING_FAMILIES
from tinylm.models import MODEL_REGISTRY
from tinylm.train.config import RULES, TrainConfig
from tinylm.train.loop import CHECKPOINT_NAME, fit_counts, train
from tinylm.train.presets import get_preset
from tinylm.train.restore import (SEQ2SEQ_MODEL, check_same_data, read_run_metadata,
                                  run_tokenizer)
from tinylm.train.setup import (build_model, data_provenance, prepare_data,
                                with_training_window)


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (use true/false).")


def _flag_type(name: str, parse):
    """An argparse type: ``parse`` the text, then apply the setting's rule (RULES)."""
    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {parse.__name__}.") from None
        if name in RULES and RULES[name].problem(value):
            raise argparse.ArgumentTypeError(f"{value!r} is invalid: it must be "
                                             f"{RULES[name].text}.")
        return value
    convert.__name__ = parse.__name__
    return convert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model family, ``--preset``, ``--model``, ``--resume``/``--overwrite`` and one flag
    per TrainConfig field, each checked against its rule as it is parsed."""
    parser.add_argument("model", choices=sorted({*MODEL_REGISTRY, *EMBEDDING_FAMILIES,
                                                 SEQ2SEQ_MODEL}),
                        help="model family (word2vec and glove train word embeddings, "
                             "seq2seq an encoder-decoder)")
    parser.add_argument("--preset", help="a named configuration (see tinylm/train/presets/)")
    parser.add_argument("--model", dest="model_overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a model configuration field")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue from OUT_DIR/ckpt")
    start.add_argument("--overwrite", action="store_true",
                       help="start afresh even though OUT_DIR holds a checkpoint (replacing it "
                            "at the first evaluation)")
    parser.add_argument("--zero", type=int, choices=ZERO_STAGES, default=0,
                        help="under mpiexec: 1 shards the optimizer state across the ranks "
                             "(ZeRO stage 1)")
    seq2seq = parser.add_argument_group("seq2seq only")
    seq2seq.add_argument("--setting", dest="settings", action="append", default=[],
                         metavar="KEY=VALUE", help="override a seq2seq run setting")
    seq2seq.add_argument("--max-steps", type=nonnegative_int, default=None,
                         help="stop after this many optimizer steps")
    seq2seq.add_argument("--max-minutes", type=nonnegative_float, default=None,
                         help="stop after this many minutes of training (0: no limit)")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default_type = int if field.default is None else type(field.default)   # block_size
        if default_type is bool:
            parser.add_argument(flag, type=_bool, default=None, metavar="BOOL")
        elif default_type is tuple:
            parser.add_argument(flag, type=float, nargs="+", default=None)
        else:
            parser.add_argument(flag, type=_flag_type(field.name, default_type), default=None)


def _flag_values(args) -> dict:
    values = {}
    for field in dataclasses.fields(TrainConfig):
        value = getattr(args, field.name, None)
        if value is not None:
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return values


def _resumed_configs(args, flags: dict):
    """The stored configuration of the run in OUT_DIR, with the flags on top; the run
    stays in the folder it was found in, whatever its JSON says."""
    out_dir = flags.get("out_dir") or (get_preset(args.preset)["train"].get("out_dir")
                                       if args.preset else None)
    if not out_dir:
        raise ValueError("--resume needs --out-dir (or a --preset that names one).")
    if not checkpoint_exists(Path(out_dir) / CHECKPOINT_NAME):
        raise ValueError(f"--resume: {out_dir} holds no checkpoint to continue; start the run "
                         "without --resume.")
    if args.model_overrides:
        raise ValueError("--model cannot change the model of a resumed run (its parameters "
                         "have the stored shapes); start a new run in another --out-dir.")
    meta = read_run_metadata(out_dir)
    if meta["model"] != args.model:
        raise ValueError(f"{out_dir} holds a {meta['model']!r} run, not {args.model!r}.")
    model_config = {k: v for k, v in meta["model_config"].items() if k != "vocab_size"}
    train_values = {**meta["train_config"], **flags, "out_dir": str(out_dir)}
    return TrainConfig.from_dict(train_values), model_config, meta


def _check_length_flags(args, train_values: dict) -> None:
    """An epoch-based run ignores max_iters: say so instead of ignoring the flag."""
    if args.max_iters is not None and args.epochs is None and train_values.get("epochs", 0) > 0:
        raise ValueError(f"--max-iters has no effect: this run trains for epochs="
                         f"{train_values['epochs']} (sequential batching counts epochs). Give "
                         "--epochs N instead, or --epochs 0 --max-iters N.")


def resolve_configs(args) -> tuple[TrainConfig, dict, dict | None]:
    """(TrainConfig, model configuration, stored metadata when resuming): the preset (or
    the checkpoint when resuming), then the flags on top, every value checked."""
    flags = _flag_values(args)
    if args.resume:
        return _resumed_configs(args, flags)
    if args.preset:
        preset = get_preset(args.preset)
        if preset["model"] != args.model:
            raise ValueError(f"preset {args.preset!r} is for model {preset['model']!r}, "
                             f"not {args.model!r}.")
        train_values, model_config = dict(preset["train"]), dict(preset["model_config"])
    else:
        train_values, model_config = {}, {}
    _check_length_flags(args, train_values)
    model_config.update(model_overrides(args.model_overrides))
    return TrainConfig.from_dict({**train_values, **flags}), model_config, None


def _refuse_seq2seq_flags(args) -> None:
    given = [flag for flag, value in (("--setting", args.settings), ("--max-steps",
             args.max_steps), ("--max-minutes", args.max_minutes)) if value]
    if given:
        raise ValueError(f"{given[0]} applies to `tinylm train seq2seq` only; for "
                         f"{args.model} use --max-iters and the training flags.")


def run(args) -> int:
    """Train (or, for a count-based model, fit) and write the checkpoint and plot. Everything
    is checked (settings, data, model, training window) before anything is written."""
    world = init_world()
    if world.size > 1 and (args.model == SEQ2SEQ_MODEL or args.model in EMBEDDING_FAMILIES):
        raise ValueError(f"`tinylm train {args.model}` runs in one process; under mpiexec "
                         "tinylm trains the language models (gpt, mlp, rnn, lstm, gru).")
    if args.model == SEQ2SEQ_MODEL:
        from tinylm.commands.seq2seq_train import run_seq2seq_training
        return run_seq2seq_training(args, _flag_values(args))
    _refuse_seq2seq_flags(args)
    if args.model in EMBEDDING_FAMILIES:
        from tinylm.commands.embedding_train import run_embedding_training
        return run_embedding_training(args, _flag_values(args))
    with stop_every_rank_on_error(world, lambda error: report(f"train ({world})", error)):
        return _train_language_model(args, world)


def _silent(*_args, **_kwargs) -> None:
    """The print of the ranks other than 0."""


def _train_language_model(args, world) -> int:
    say = print if world.is_root else _silent
    cfg, model_config, resumed = resolve_configs(args)
    out_dir = Path(cfg.out_dir)
    refuse_to_replace(args, out_dir / CHECKPOINT_NAME)
    tokenizer = None
    if resumed is not None:
        check_same_data(resumed, cfg.dataset)
        tokenizer = run_tokenizer(resumed)
    data = prepare_data(cfg, tokenizer)
    model = build_model(args.model, model_config, data.tokenizer.vocab_size)
    cfg = with_training_window(cfg, model)
    provenance = {"tokenizer": data.tokenizer.to_dict(), **data_provenance(cfg.dataset)}
    say(f"{args.model}: {model.num_parameters():,} parameters; {len(data.train):,} training "
        f"and {len(data.val):,} validation tokens; vocabulary {data.tokenizer.vocab_size}")
    parallel = _data_parallel(args, world, model, say)
    started = time.perf_counter()
    if model.trainable:
        history = train(model, args.model, cfg, data.train, data.val, resume=args.resume,
                        log=say, provenance=provenance, parallel=parallel)
    else:                              # count-based (n-gram): counting replaces training
        history = fit_counts(model, args.model, cfg, data.train, data.val,
                             provenance=provenance)
    final = history.evals[-1]
    say(f"done in {time.perf_counter() - started:.1f} s: val loss {final['val_loss']:.4f}, "
        f"val perplexity {final['val_perplexity']:.2f}")
    if parallel is not None:
        say(_communication_line(parallel))
    say(f"checkpoint: {out_dir / CHECKPOINT_NAME}.json"
        + (f"  loss curve: {out_dir / 'loss.png'}" if model.trainable else ""))
    return 0


def _data_parallel(args, world, model, say):
    """This rank's DataParallel under mpiexec, None in one process."""
    if world.size == 1:
        if args.zero:
            say("--zero 1 shards the optimizer state across the ranks of an MPI job; in one "
                "process it changes nothing (run under mpiexec -n N).")
        return None
    if not model.trainable:
        raise ValueError(f"{args.model} is fitted by counting, in one process; run it "
                         "without mpiexec.")
    return DataParallel(world, zero=args.zero)


def _communication_line(parallel) -> str:
    c = parallel.communication()
    return (f"communication per step: {c['collectives_per_step']:.0f} collectives, "
            f"{c['payload_bytes_per_step'] / 2 ** 20:.2f} MiB of gradients and parameters, "
            f"{1e3 * c['seconds_per_step']:.1f} ms in them (waiting for the slowest rank "
            "included)")
