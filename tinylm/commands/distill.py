"""``tinylm distill TEACHER --preset STUDENT_PRESET [--out-dir DIR] [--temperature T]
[--alpha A] [--max-iters N] [--overwrite]``

Trains the student GPT of a preset (e.g. ``shakespeare-char-student``) on a trained GPT
teacher's soft targets at temperature T, mixed with the data's hard labels, loss
alpha T^2 KL(teacher || student) + (1 - alpha) CE (tinylm/compress/distill.py), for the
preset's steps (or ``--max-iters``). The student's data is the preset's; the teacher must
have been trained with the same tokenizer. The result is a normal GPT run in OUT_DIR
(``tinylm eval``, ``tinylm generate``); compare it with ``tinylm train gpt --preset
STUDENT_PRESET``, the same student trained from scratch for the same steps on the same
batches (a distillation step costs more: it also runs the teacher's forward pass)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tinylm.checkpoint import checkpoint_exists
from tinylm.commands.arguments import nonnegative_int
from tinylm.compress.distill import check_alpha, check_teacher, distill
from tinylm.functional.distillation import check_temperature
from tinylm.train.config import TrainConfig
from tinylm.train.loop import CHECKPOINT_NAME
from tinylm.train.presets import get_preset
from tinylm.train.restore import load_trained, read_run_metadata
from tinylm.train.setup import build_model, data_provenance, prepare_data, with_training_window


def _checked(check):
    """An argparse type applying ``check`` (which raises ValueError with the rule)."""
    def convert(text: str) -> float:
        try:
            return check(float(text))
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = check.__name__
    return convert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The teacher run, the student preset, the distillation settings, the output folder."""
    parser.add_argument("teacher", help="OUT_DIR of a trained `tinylm train gpt` run")
    parser.add_argument("--preset", required=True, help="the student's GPT preset")
    parser.add_argument("--out-dir", default=None, help="default: the preset's out_dir")
    parser.add_argument("--temperature", type=_checked(check_temperature), default=2.0,
                        help="softmax temperature T of the soft targets (default 2)")
    parser.add_argument("--alpha", type=_checked(check_alpha), default=0.5,
                        help="weight of the soft targets, in [0, 1] (default 0.5)")
    parser.add_argument("--max-iters", type=nonnegative_int, default=None,
                        help="student steps (default: the preset's)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a checkpoint already in OUT_DIR")


def student_config(args) -> tuple[TrainConfig, dict]:
    """(TrainConfig, model configuration) of the student preset, with the flags on top."""
    preset = get_preset(args.preset)
    if preset["model"] != "gpt":
        raise ValueError(f"preset {args.preset!r} is for {preset['model']!r}; the student of "
                         "`tinylm distill` is a GPT.")
    values = dict(preset["train"], progress=False)
    if args.out_dir is not None:
        values["out_dir"] = args.out_dir
    if args.max_iters is not None:
        values["max_iters"] = args.max_iters         # as `tinylm train --max-iters`
    return TrainConfig.from_dict(values), dict(preset["model_config"])


def _load_teacher(path):
    if read_run_metadata(path)["model"] != "gpt":
        raise ValueError(f"the teacher {path} is not a GPT run; distil from a `tinylm train "
                         "gpt` run.")
    teacher, tokenizer, _ = load_trained(path)
    return teacher, tokenizer


def run(args) -> int:
    """Check teacher and student against each other, distil, print the validation loss."""
    cfg, model_config = student_config(args)
    out_dir = Path(cfg.out_dir)
    if checkpoint_exists(out_dir / CHECKPOINT_NAME) and not args.overwrite:
        raise ValueError(f"{out_dir} already holds a checkpoint; it is kept. Choose another "
                         "--out-dir or give --overwrite.")
    teacher, teacher_tokenizer = _load_teacher(args.teacher)
    data = prepare_data(cfg)
    student = build_model("gpt", model_config, data.tokenizer.vocab_size)
    cfg = with_training_window(cfg, student)
    check_teacher(teacher, teacher_tokenizer, data.tokenizer, cfg.block_size)
    settings = {"teacher": str(args.teacher), "temperature": args.temperature,
                "alpha": args.alpha}
    provenance = {"tokenizer": data.tokenizer.to_dict(), **data_provenance(cfg.dataset),
                  "distillation": settings}
    print(f"distilling a {teacher.num_parameters():,}-parameter teacher into a "
          f"{student.num_parameters():,}-parameter student (T={args.temperature:g}, "
          f"alpha={args.alpha:g}, {cfg.max_iters} steps)")
    started = time.perf_counter()
    history = distill(student, teacher, cfg, data.train, data.val, args.temperature,
                      args.alpha, provenance=provenance)
    final = history.evals[-1]
    print(f"done in {time.perf_counter() - started:.1f} s: val loss {final['val_loss']:.4f}, "
          f"val perplexity {final['val_perplexity']:.2f}")
    print(f"checkpoint: {out_dir / CHECKPOINT_NAME}.json")
    return 0
