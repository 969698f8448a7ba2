"""``tinylm bench lstm``: one full training step of an LSTM language model, tinylm against
PyTorch on the same configuration, each in its own worker process, interleaved.

    tinylm bench lstm --vocab 65 --embd 128 --hidden 256 --block 64 --batch 32 [--layers 1]
                      [--steps 5] [--repeat 5] [--dtype float32] [--threads N] [--json]

A step is forward (embedding -> LSTM stack -> linear -> softmax cross-entropy over the B x T
targets), backward, and an AdamW update (lr 1e-3, weight decay 0.01 on every parameter, as
torch.optim.AdamW's default). The PyTorch twin is nn.Embedding + nn.LSTM(batch_first=True)
+ nn.Linear + F.cross_entropy + torch.optim.AdamW (tinylm/bench/twins/recurrent.py), in
the same dtype.

Timing is tinylm/bench/harness.py's: each side in its own worker process with ``--threads``
threads (default: numba's count), alternating ``--repeat`` rounds of ``--steps`` steps, each
round after one untimed step; best and median round per side. ``ratio`` is tinylm's
tokens/s over PyTorch's: above 1.0 tinylm is faster. ``--profile`` adds tinylm's time split
into forward, backward and optimizer step.
"""

from __future__ import annotations

import os
import time

import numpy

from tinylm.backend import KERNEL_ENV_VAR
from tinylm.bench.harness import (Side, add_timing_arguments, compare, default_threads,
                                   fixed_batch, timed_steps, torch_sides)
from tinylm.bench.twins.recurrent import recurrent_lm_twin, twin_lm_loss, twin_parameters
from tinylm.models.rnn_lm import LSTMLM, RecurrentLMConfig
from tinylm.optim import AdamW

LR, WEIGHT_DECAY = 1e-3, 0.01
CONFIG_KEYS = ("vocab", "embd", "hidden", "layers", "block", "batch", "dtype", "threads")


def add_arguments(parser) -> None:
    parser.add_argument("--vocab", type=int, default=65)
    parser.add_argument("--embd", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--block", type=int, default=64, help="time steps per sequence (T)")
    parser.add_argument("--batch", type=int, default=32, help="sequences per batch (B)")
    add_timing_arguments(parser)


def tinylm_step_fn(config: dict, idx, targets):
    """A closure running one tinylm training step, and a dict of phase timers."""
    lm_config = RecurrentLMConfig(vocab_size=config["vocab"], n_embd=config["embd"],
                                  n_hidden=config["hidden"], n_layer=config["layers"],
                                  init_range=0.0)
    model = LSTMLM(lm_config).to(dtype=numpy.dtype(config["dtype"]))
    optimizer = AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    phases = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}

    def step():
        t0 = time.perf_counter()
        model.reset_state()                      # start from zeros, as the torch twin does
        model.forward(idx, targets)
        t1 = time.perf_counter()
        model.backward()
        t2 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad()
        t3 = time.perf_counter()
        phases["forward"] += t1 - t0
        phases["backward"] += t2 - t1
        phases["optimizer"] += t3 - t2
    return step, phases


def torch_step_fn(torch, config: dict, idx, targets):
    """The PyTorch twin of ``tinylm_step_fn``'s step."""
    twin = recurrent_lm_twin(torch, "lstm", config["vocab"], config["embd"], config["hidden"],
                             config["layers"], dtype=config["dtype"])
    optimizer = torch.optim.AdamW(twin_parameters(twin), lr=LR, weight_decay=WEIGHT_DECAY)
    t_idx, t_targets = torch.from_numpy(idx), torch.from_numpy(targets)

    def step():
        optimizer.zero_grad(set_to_none=True)
        twin_lm_loss(torch, twin, t_idx, t_targets)[1].backward()
        optimizer.step()
    return step


def build_side(side: str, config: dict, torch) -> Side:
    """A harness side: tinylm's LSTM LM or its PyTorch twin, on the same batch."""
    idx, targets = fixed_batch(config)
    if side == "torch":
        return Side(torch_step_fn(torch, config, idx, targets),
                    ready={"version": torch.__version__})
    step, phases = tinylm_step_fn(config, idx, targets)

    def profile(command):
        for key in phases:
            phases[key] = 0.0
        timed_steps(step, command["steps"], warmup=0)
        total = sum(phases.values())
        return {"tinylm_profile": {k: f"{100 * v / total:.1f}%" for k, v in phases.items()}}
    return Side(step, profile)


def run(args) -> dict:
    config = {key: getattr(args, key) for key in CONFIG_KEYS}
    config["threads"] = args.threads or default_threads()
    extra = [("tinylm", {"command": "profile", "steps": args.steps})] if args.profile else []
    timings = compare(__name__, config, torch_sides(args.no_torch), args.repeat, args.steps,
                      args.batch * args.block, extra)
    return {"config": {k: config[k] for k in CONFIG_KEYS if k != "threads"},
            "threads": config["threads"], "kernels": os.environ.get(KERNEL_ENV_VAR, "auto"),
            **timings}
