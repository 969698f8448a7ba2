"""The training configuration: every knob of ``tinylm train`` in one dataclass.

A preset (tinylm/train/presets/) fills some fields; command-line flags override any of them
(``--lr 3e-4 --max-iters 500``). The whole configuration is stored in every checkpoint's
JSON, so a run can be resumed or reproduced exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tinylm.typed_config import config_from_dict


@dataclass
class TrainConfig:
    # data
    dataset: str = "tinyshakespeare"     # a name known to tinylm.data (see `tinylm.data.DATASETS`)
    tokenizer: str = "char"              # "char" or "word"
    min_freq: int = 1                    # word tokenizer: rarer words become <unk>
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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """From plain data (a preset, flags, a checkpoint's JSON); unknown settings and values
        of the wrong type raise ValueError naming them."""
        return config_from_dict(cls, values, owner="training settings")
