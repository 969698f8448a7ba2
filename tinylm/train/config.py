"""The training configuration: every knob of ``tinylm train`` in one dataclass.

A preset (tinylm/train/presets/) fills some fields; command-line flags override any of them
(``--lr 3e-4 --max-iters 500``). The whole configuration is stored in every checkpoint's
JSON, so a run can be resumed or reproduced exactly. ``RULES`` says what each setting
may be; ``validate`` (run by the constructor) and the command-line flags both apply it, so a
bad value is refused before anything runs or is written.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

from tinylm.optim.schedules import SCHEDULES
from tinylm.typed_config import config_from_dict


@dataclass
class TrainConfig:
    # data
    dataset: str = "tinyshakespeare"     # a name known to tinylm.data (see `tinylm.data.DATASETS`)
    tokenizer: str = "char"              # "char", "word", "bpe" (byte-level BPE learned from the
                                         #   training text), "gpt2" or "cl100k" (OpenAI's)
    min_freq: int = 1                    # word tokenizer: rarer words become <unk>
    subword_vocab_size: int = 1024       # bpe: 256 bytes + (this - 256) merges
    val_fraction: float = 0.1            # datasets without their own split: last 10% is validation
    batching: str = "random"             # "random" windows (nanoGPT) or "sequential" streams (PTB)
    batch_size: int = 32
    block_size: int | None = None        # tokens per training window (BPTT length for RNNs);
                                         #   None: the model's context (setup.with_training_window)
    # optimisation
    optimizer: str = "adamw"             # "adamw", "adam" or "sgd"
    lr: float = 1e-3
    momentum: float = 0.0                # sgd only
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float = 0.0               # global-norm clipping; 0 disables
    schedule: str = "constant"           # "constant", "cosine" (warm-up + cosine) or "step"
    warmup_iters: int = 0
    min_lr: float = 0.0                  # cosine: the floor reached at lr_decay_iters
    lr_decay_iters: int = 0              # cosine: 0 means max_iters
    decay_start: int = 0                 # step: first iteration of decay
    decay_every: int = 1                 # step: iterations between multiplications
    decay_factor: float = 1.0            # step: lr *= decay_factor every decay_every iterations
    # length of the run
    max_iters: int = 1000                # optimizer steps (with "sequential" batching, `epochs`
    epochs: int = 0                      #   > 0 overrides it: epochs * steps per epoch)
    # evaluation, logging, checkpoints
    eval_interval: int = 250             # evaluate and write a checkpoint every this many steps
    eval_iters: int = 20                 # batches per estimate; 0 = the whole validation split
    log_interval: int = 10
    out_dir: str = "runs/default"
    # reproducibility and hardware
    seed: int = 1337
    dtype: str = "float32"
    device: str = "cpu"                  # "cpu" or "gpu" (CuPy)
    progress: bool = True                # tqdm progress bar

    def __post_init__(self):
        self.validate()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """From plain data (a preset, flags, a checkpoint's JSON); unknown settings, values
        of the wrong type and values out of range raise ValueError naming them."""
        return config_from_dict(cls, values, owner="training settings")

    def validate(self) -> None:
        """Raise ValueError naming the first setting outside its range (``RULES``)."""
        for name, rule in RULES.items():
            problem = rule.problem(getattr(self, name))
            if problem:
                raise ValueError(f"training setting {name} (--{name.replace('_', '-')}) "
                                 f"{problem}.")


@dataclass(frozen=True)
class Rule:
    """What a setting must be: ``ok(value)`` decides, ``text`` says it to the user."""

    ok: Callable
    text: str

    def problem(self, value) -> str | None:
        """None when ``value`` is acceptable, else "is X; it must be <text>"."""
        try:
            good = bool(self.ok(value))
        except TypeError:
            good = False
        return None if good else f"is {value!r}; it must be {self.text}"


def _int_at_least(low: int) -> Rule:
    return Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low,
                f"an integer >= {low}")


def _number_at_least(low: float, strict: bool = False) -> Rule:
    sign = ">" if strict else ">="
    return Rule(lambda v: math.isfinite(v) and (v > low if strict else v >= low),
                f"a finite number {sign} {low:g}")


def _one_of(*choices: str) -> Rule:
    return Rule(lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices))


RULES = {
    "tokenizer": _one_of("char", "word", "bpe", "gpt2", "cl100k"),
    "min_freq": _int_at_least(1),
    "subword_vocab_size": _int_at_least(256),
    "val_fraction": Rule(lambda v: 0.0 < v < 1.0, "a fraction strictly between 0 and 1"),
    "batching": _one_of("random", "sequential"),
    "batch_size": _int_at_least(1),
    "block_size": Rule(lambda v: v is None or (isinstance(v, int) and v >= 1),
                       "an integer >= 1 (or unset: the model's context)"),
    "optimizer": _one_of("adamw", "adam", "sgd"),
    "lr": _number_at_least(0.0),
    "momentum": Rule(lambda v: 0.0 <= v < 1.0, "a number in [0, 1)"),
    "betas": Rule(lambda v: len(v) == 2 and all(0.0 <= b < 1.0 for b in v),
                  "two numbers in [0, 1), e.g. 0.9 0.999"),
    "eps": _number_at_least(0.0),
    "weight_decay": _number_at_least(0.0),
    "grad_clip": _number_at_least(0.0),
    "schedule": _one_of(*SCHEDULES),
    "warmup_iters": _int_at_least(0),
    "min_lr": _number_at_least(0.0),
    "lr_decay_iters": _int_at_least(0),
    "decay_start": _int_at_least(0),
    "decay_every": _int_at_least(1),
    "decay_factor": _number_at_least(0.0, strict=True),
    "max_iters": _int_at_least(0),
    "epochs": _int_at_least(0),
    "eval_interval": _int_at_least(1),
    "eval_iters": _int_at_least(0),
    "log_interval": _int_at_least(1),
    "out_dir": Rule(lambda v: isinstance(v, str) and v.strip() != "", "a folder name"),
    "seed": _int_at_least(0),
    "dtype": _one_of("float32", "float64"),
    "device": _one_of("cpu", "gpu"),
}
