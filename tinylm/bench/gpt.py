"""``tinylm bench gpt``: a full GPT training step (forward, backward, AdamW), tinylm against
PyTorch eager on the same configuration and the same weights, interleaved.

    tinylm bench gpt --layers 4 --heads 4 --embd 128 --block 64 --batch 12 --vocab 65
                     [--steps 5] [--repeat 5] [--dtype float32] [--threads N] [--profile]
                     [--generate N] [--json]

The PyTorch twin is nanoGPT's model (tinylm/bench/twins/gpt.py: fused QKV,
``F.scaled_dot_product_attention(is_causal=True)``, GELU tanh, weights tied with the head)
with ``torch.optim.AdamW`` (lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on matrices), in
the same dtype, started from tinylm's initial weights. Dropout is 0 (a timing of the
arithmetic, not of random masks).

Timing is tinylm/bench/harness.py's: each side in its own worker process with ``--threads``
threads (default: numba's count), alternating ``--repeat`` rounds of ``--steps`` steps, each
round after one untimed step; best and median round per side, ``ratio`` = tinylm tokens/s /
PyTorch tokens/s (> 1: tinylm is faster).

``--profile`` adds tinylm's step split into forward / backward / optimizer and cProfile's
top functions. ``--generate N`` adds the generation speed of tinylm's model: N new tokens
from a one-token prompt (batch 1), with the KV cache and with full recomputation.

``--train PRESET`` times whole training runs instead: the preset's run (e.g.
shakespeare-char-cpu, 2000 iterations) with tinylm's training loop, then with a PyTorch
loop that reads the same batches, follows the same learning-rate schedule, clips
gradients the same way and evaluates the same validation windows; each in its own
process, reporting wall time and final validation loss.
"""

from __future__ import annotations

import os
import time

import numpy

from tinylm.backend import KERNEL_ENV_VAR, default_rng
from tinylm.bench.harness import (Side, Worker, add_timing_arguments, compare,
                                   default_threads, fixed_batch, profile_report, torch_sides)
from tinylm.bench.twins.gpt import gpt_twin
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.optim import AdamW, decay_groups

LR, BETAS, WEIGHT_DECAY = 1e-3, (0.9, 0.99), 0.1
CONFIG_KEYS = ("layers", "heads", "embd", "block", "batch", "vocab", "dtype", "threads",
               "steps", "train", "train_iters")


def add_arguments(parser) -> None:
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--embd", type=int, default=128)
    parser.add_argument("--block", type=int, default=64, help="context length (T)")
    parser.add_argument("--batch", type=int, default=12, help="sequences per batch (B)")
    parser.add_argument("--vocab", type=int, default=65)
    add_timing_arguments(parser)
    parser.add_argument("--generate", type=int, default=0, metavar="N",
                        help="also time generating N tokens with and without the KV cache")
    parser.add_argument("--train", metavar="PRESET", default=None,
                        help="time a whole training run of this preset, tinylm and PyTorch")
    parser.add_argument("--train-iters", type=int, default=None,
                        help="with --train: override the preset's max_iters")


# -- the two models ---------------------------------------------------------------------------

def build_tinylm(config: dict):
    gpt_config = GPTConfig(vocab_size=config["vocab"], block_size=config["block"],
                           n_layer=config["layers"], n_head=config["heads"],
                           n_embd=config["embd"], dropout=0.0)
    return GPT(gpt_config).to(dtype=numpy.dtype(config["dtype"]))


def tinylm_optimizer(model, lr=LR):
    """AdamW with weight decay on matrices only, as nanoGPT (and tinylm's train loop)."""
    return AdamW(decay_groups(model.parameters(), WEIGHT_DECAY), lr=lr, betas=BETAS)


def torch_optimizer(torch, twin, lr=LR):
    return torch.optim.AdamW(decay_groups(list(twin.parameters()), WEIGHT_DECAY), lr=lr,
                             betas=BETAS)


# -- one training step of each ---------------------------------------------------------------

def tinylm_step_fn(model, optimizer, *inputs):
    """One training step, ``model.forward(*inputs)`` then backward and the optimizer, and
    the seconds spent in each phase (accumulated over calls)."""
    phases = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}

    def step():
        t0 = time.perf_counter()
        model.forward(*inputs)
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


def torch_step_fn(twin, optimizer, t_idx, t_targets):
    def step():
        optimizer.zero_grad(set_to_none=True)
        twin(t_idx, t_targets)[1].backward()
        optimizer.step()
    return step


# -- the parent and the workers --------------------------------------------------------------

def run(args) -> dict:
    config = {key: getattr(args, key) for key in CONFIG_KEYS}
    config["threads"] = args.threads or default_threads()
    sides = torch_sides(args.no_torch)
    if args.train:
        return run_training(config, sides)
    extra = ([("tinylm", {"command": "generate", "tokens": args.generate})] if args.generate
             else []) + ([("tinylm", {"command": "profile", "steps": args.steps})]
                         if args.profile else [])
    timings = compare(__name__, config, sides, args.repeat, args.steps,
                      args.batch * args.block, extra)
    return {"config": {k: config[k] for k in CONFIG_KEYS[:7]}, "threads": config["threads"],
            "kernels": os.environ.get(KERNEL_ENV_VAR, "auto"), **timings}


def build_side(side: str, config: dict, torch) -> Side:
    """A harness side: tinylm's GPT, or its PyTorch twin with the same weights and batch;
    with ``whole_run`` (``--train``), the preset's training run, reported when ready."""
    if config.get("whole_run"):
        return Side(lambda: None, ready=train_preset(config, torch))
    model = build_tinylm(config)
    idx, targets = fixed_batch(config)
    if side == "torch":
        twin = gpt_twin(torch, model, fused_attention=True)
        step = torch_step_fn(twin, torch_optimizer(torch, twin), torch.from_numpy(idx),
                             torch.from_numpy(targets))
        return Side(step, ready={"version": torch.__version__})
    step, phases = tinylm_step_fn(model, tinylm_optimizer(model), idx, targets)

    def handle(command):
        if command["command"] == "generate":
            return generation_speed(model, command["tokens"])
        return profile_report(step, phases, command["steps"])
    return Side(step, handle)


# -- generation speed --------------------------------------------------------------------------

def generation_speed(model, n_tokens: int) -> dict:
    """Tokens/s of ``generate`` from a one-token prompt, with and without the KV cache."""
    from tinylm.generate import generate
    prompt = numpy.zeros((1, 1), dtype=numpy.int64)
    speeds = {}
    for use_cache in (True, False):
        generate(model, prompt, 4, default_rng(0), use_cache=use_cache)        # warm-up
        start = time.perf_counter()
        new = generate(model, prompt, n_tokens, default_rng(0), use_cache=use_cache)
        speeds[use_cache] = new.shape[1] / (time.perf_counter() - start)
    return {"generate_tokens": n_tokens,
            "generate_tokens_per_s_kv_cache": round(speeds[True], 1),
            "generate_tokens_per_s_recompute": round(speeds[False], 1)}


# -- whole training runs -----------------------------------------------------------------------

def run_training(config: dict, sides: list) -> dict:
    """The preset's training run with tinylm's loop, then the same run in PyTorch."""
    result = {"preset": config["train"], "threads": config["threads"]}
    for side in sides:
        worker = Worker(__name__, side, dict(config, whole_run=True))
        result.update(worker.ready)
        worker.close()
    if "torch_wall_s" in result:
        result["speedup"] = round(result["torch_wall_s"] / result["tinylm_wall_s"], 3)
    return result


def train_preset(config: dict, torch) -> dict:
    """Train the preset once (tinylm's loop, or the PyTorch twin when ``torch`` is given)."""
    import dataclasses
    import tempfile

    from tinylm.train.config import TrainConfig
    from tinylm.train.loop import train
    from tinylm.train.presets import get_preset
    from tinylm.train.setup import prepare_data, with_training_window

    preset = get_preset(config["train"])
    if preset["model"] != "gpt":
        raise SystemExit(f"preset {config['train']!r} is not a GPT preset.")
    cfg = TrainConfig.from_dict(preset["train"])
    if config["train_iters"]:
        cfg = dataclasses.replace(cfg, max_iters=config["train_iters"],
                                  lr_decay_iters=config["train_iters"])
    data = prepare_data(cfg)
    model = GPT.from_config(dict(preset["model_config"], vocab_size=data.tokenizer.vocab_size))
    cfg = with_training_window(cfg, model)
    side = "tinylm" if torch is None else "torch"
    with tempfile.TemporaryDirectory() as out_dir:
        cfg = dataclasses.replace(cfg, out_dir=out_dir, progress=False)
        start = time.perf_counter()
        if torch is None:
            val_loss = train(model, "gpt", cfg, data.train, data.val,
                             log=lambda line: None).evals[-1]["val_loss"]
        else:
            twin = gpt_twin(torch, model.to(dtype=numpy.float32), fused_attention=True)
            val_loss = torch_training_run(torch, twin, cfg, data)
        wall = time.perf_counter() - start
    return {"max_iters": cfg.max_iters, f"{side}_wall_s": round(wall, 1),
            f"{side}_val_loss": round(val_loss, 4)}


def torch_training_run(torch, twin, cfg, data) -> float:
    """tinylm's training loop (tinylm/train/loop.py) step for step in PyTorch: the same
    batches, schedule, clipping and validation windows. Returns the final validation loss."""
    from tinylm.optim import lr_at
    from tinylm.train.loop import schedule_view
    from tinylm.train.setup import build_batcher

    batcher = build_batcher(data.train, cfg)
    sched = schedule_view(cfg, batcher, cfg.max_iters)
    optimizer = torch_optimizer(torch, twin, cfg.lr)
    val_loss = float("nan")
    for it in range(cfg.max_iters + 1):
        if it % cfg.eval_interval == 0 or it == cfg.max_iters:
            val_loss = torch_evaluate(torch, twin, data.val, cfg)
        if it == cfg.max_iters:
            break
        for group in optimizer.param_groups:
            group["lr"] = lr_at(it, sched)
        x, y, _ = batcher.next_batch()
        _, loss = twin(torch.from_numpy(x), torch.from_numpy(y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), cfg.grad_clip)
        optimizer.step()
    return val_loss


def torch_evaluate(torch, twin, ids, cfg) -> float:
    """Mean validation loss over the windows tinylm.evaluate.evaluate_lm reads."""
    from tinylm.data import iterate_eval_windows

    twin.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i, (x, y) in enumerate(iterate_eval_windows(ids, cfg.batch_size, cfg.block_size)):
            if cfg.eval_iters and i >= cfg.eval_iters:
                break
            _, loss = twin(torch.from_numpy(numpy.ascontiguousarray(x)),
                           torch.from_numpy(numpy.ascontiguousarray(y)))
            total += loss.item() * y.size
            count += y.size
    twin.train()
    return total / count

