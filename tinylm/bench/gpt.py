"""``tinylm bench gpt``: a full GPT training step (forward, backward, AdamW), tinylm against
PyTorch eager on the same configuration and the same weights, interleaved.

    tinylm bench gpt --layers 4 --heads 4 --embd 128 --block 64 --batch 12 --vocab 65
                     [--steps 5] [--repeat 5] [--dtype float32] [--threads N] [--profile]
                     [--generate N] [--json]

The PyTorch twin is nanoGPT's model (Embedding, LayerNorm, Linear with a fused QKV,
``F.scaled_dot_product_attention(is_causal=True)``, GELU tanh, weights tied with the head)
with ``torch.optim.AdamW`` (lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on matrices), in
the same dtype, started from tinylm's initial weights. Dropout is 0 (a timing of the
arithmetic, not of random masks).

Each side runs in its own worker process (``python -m tinylm.bench.gpt worker ...``), so
the two libraries' thread pools (numba's, OpenBLAS's, PyTorch's OpenMP) never compete
inside one process. Both get ``--threads`` threads (default: numba's count): numba and
OpenBLAS (``OPENBLAS_NUM_THREADS``) on tinylm's side, ``torch.set_num_threads`` on
PyTorch's. After two warm-up steps each, the parent alternates ``--repeat`` rounds of
``--steps`` steps between the workers; a waiting worker is blocked on its pipe. Each side
reports its best round (the least disturbed on a shared machine) and its median round.
``ratio`` = tinylm tokens/s / PyTorch tokens/s (> 1: tinylm is faster).

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

import cProfile
import json
import os
import pstats
import subprocess
import sys
import time

import numpy

from tinylm.backend import KERNEL_ENV_VAR, NUMBA_AVAILABLE, default_rng
from tinylm.bench import import_torch
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.optim import AdamW

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
    parser.add_argument("--steps", type=int, default=5, help="training steps per timed round")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (best is kept)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for numba, OpenBLAS and torch (default: numba's count)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch twin")
    parser.add_argument("--profile", action="store_true",
                        help="split tinylm's step into phases and list cProfile's top functions")
    parser.add_argument("--generate", type=int, default=0, metavar="N",
                        help="also time generating N tokens with and without the KV cache")
    parser.add_argument("--train", metavar="PRESET", default=None,
                        help="time a whole training run of this preset, tinylm and PyTorch")
    parser.add_argument("--train-iters", type=int, default=None,
                        help="with --train: override the preset's max_iters")


# -- the two models ---------------------------------------------------------------------------

def build_tinylm(args):
    config = GPTConfig(vocab_size=args.vocab, block_size=args.block, n_layer=args.layers,
                       n_head=args.heads, n_embd=args.embd, dropout=0.0)
    return GPT(config).to(dtype=numpy.dtype(args.dtype))


def tinylm_optimizer(model, lr=LR):
    """AdamW with weight decay on matrices only, as nanoGPT (and tinylm's train loop)."""
    params = model.parameters()
    return AdamW([{"params": [p for p in params if p.data.ndim >= 2],
                   "weight_decay": WEIGHT_DECAY},
                  {"params": [p for p in params if p.data.ndim < 2], "weight_decay": 0.0}],
                 lr=lr, betas=BETAS)


def torch_gpt_class(torch):
    """nanoGPT's GPT in a few lines, built on ``torch`` passed in."""
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, D, H, p):
            super().__init__()
            self.H, self.p, self.drop = H, p, nn.Dropout(p)
            self.ln_1, self.ln_2 = nn.LayerNorm(D), nn.LayerNorm(D)
            self.c_attn, self.attn_proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
            self.c_fc, self.mlp_proj = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

        def forward(self, x):
            B, T, D = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(D, dim=2)
            q, k, v = (t.view(B, T, self.H, D // self.H).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.p if self.training else 0.0)
            x = x + self.drop(self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, D)))
            h = F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")
            return x + self.drop(self.mlp_proj(h))

    class TorchGPT(nn.Module):
        def __init__(self, V, T, L, H, D, p=0.0):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(V, D), nn.Embedding(T, D)
            self.h = nn.ModuleList([Block(D, H, p) for _ in range(L)])
            self.ln_f, self.drop = nn.LayerNorm(D), nn.Dropout(p)

        def forward(self, idx, targets):
            pos = torch.arange(idx.shape[1], device=idx.device)
            x = self.drop(self.wte(idx) + self.wpe(pos))
            for block in self.h:
                x = block(x)
            logits = self.ln_f(x) @ self.wte.weight.T
            return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))

    return TorchGPT


def torch_names(name: str) -> tuple:
    """tinylm parameter name -> (torch parameter name, transpose?). tinylm stores Linear
    weights [in, out]; torch stores [out, in]."""
    renames = {"attn.c_proj": "attn_proj", "mlp.c_proj": "mlp_proj", "attn.c_attn": "c_attn",
               "mlp.c_fc": "c_fc"}
    if name in ("wte", "wpe"):
        return f"{name}.weight", False
    for ours, theirs in renames.items():
        name = name.replace(ours, theirs)
    return name, name.endswith("weight") and not name.split(".")[-2].startswith("ln_")


def build_torch_twin(torch, model, dtype: str):
    """The PyTorch GPT with ``model``'s exact weights."""
    c = model.config
    twin = torch_gpt_class(torch)(c.vocab_size, c.block_size, c.n_layer, c.n_head, c.n_embd,
                                  c.dropout)
    twin = twin.to(getattr(torch, dtype))
    params = dict(twin.named_parameters())
    with torch.no_grad():
        for name, p in model.named_parameters():
            theirs, transpose = torch_names(name)
            value = p.data.T if transpose else p.data
            params[theirs].copy_(torch.from_numpy(numpy.ascontiguousarray(value)))
    return twin


def torch_optimizer(torch, twin, lr=LR):
    params = list(twin.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=BETAS)


# -- one training step of each ---------------------------------------------------------------

def tinylm_step_fn(model, optimizer, idx, targets):
    phases = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}

    def step():
        t0 = time.perf_counter()
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


def torch_step_fn(twin, optimizer, t_idx, t_targets):
    def step():
        optimizer.zero_grad(set_to_none=True)
        twin(t_idx, t_targets).backward()
        optimizer.step()
    return step



def _profile_top(step, steps: int, limit: int = 15) -> list:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:limit]
    return [f"{100 * tt / total:5.1f}%  {tt / steps * 1e3:7.2f} ms/step  "
            f"{os.path.basename(fn)}:{line}({name})"
            for (fn, line, name), (_, _, tt, _, _) in rows]


# -- the parent: start the workers, alternate them, collect the numbers -------------------------

def _default_threads() -> int:
    if NUMBA_AVAILABLE:
        import numba
        return numba.get_num_threads()
    return os.cpu_count() or 1


class Worker:
    """One side of the comparison in its own process, driven by one-line JSON commands."""

    def __init__(self, side: str, config: dict):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(config["threads"]),
                   NUMBA_NUM_THREADS=str(config["threads"]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tinylm.bench.gpt", "worker", side, json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.side = side
        self.ready = self.receive()

    def ask(self, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.receive()

    def receive(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.side} benchmark worker exited early (exit status "
                               f"{self.process.wait()}); its error is printed above.")
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait()


def run(args) -> dict:
    config = {key: getattr(args, key) for key in CONFIG_KEYS}
    config["threads"] = args.threads or _default_threads()
    sides = ["tinylm"] + ([] if args.no_torch or import_torch() is None else ["torch"])
    if args.train:
        return run_training(config, sides)
    workers = [Worker(side, config) for side in sides]
    try:
        rounds = {w.side: [] for w in workers}
        for _ in range(max(1, args.repeat)):
            for w in workers:
                rounds[w.side].append(w.ask(command="time", steps=args.steps)["seconds"])
        result = {"config": {k: config[k] for k in CONFIG_KEYS[:7]}, "threads": config["threads"],
                  "kernels": os.environ.get(KERNEL_ENV_VAR, "auto")}
        tokens = args.batch * args.block
        for w in workers:
            best, median = min(rounds[w.side]), float(numpy.median(rounds[w.side]))
            result[f"{w.side}_ms_per_step"] = round(1e3 * best, 2)
            result[f"{w.side}_median_ms_per_step"] = round(1e3 * median, 2)
            result[f"{w.side}_tokens_per_s"] = round(tokens / best, 1)
        if len(workers) == 2:
            result["torch_version"] = workers[1].ready["version"]
            result["ratio"] = round(result["tinylm_tokens_per_s"] / result["torch_tokens_per_s"], 3)
        else:
            result.update({"torch_tokens_per_s": None, "ratio": None})
        if args.generate:
            result.update(workers[0].ask(command="generate", tokens=args.generate))
        if args.profile:
            result.update(workers[0].ask(command="profile", steps=args.steps))
    finally:
        for w in workers:
            w.close()
    return result


# -- the workers -------------------------------------------------------------------------------

def _batch(config):
    rng = default_rng(0)
    shape = (config["batch"], config["block"])
    return rng.integers(0, config["vocab"], size=shape), rng.integers(0, config["vocab"], size=shape)


def _tinylm_worker(config, model):
    idx, targets = _batch(config)
    step, phases = tinylm_step_fn(model, tinylm_optimizer(model), idx, targets)

    def handle(command):
        if command["command"] == "generate":
            return generation_speed(model, command["tokens"])
        for key in phases:
            phases[key] = 0.0
        lines = _profile_top(step, command["steps"])
        total = sum(phases.values())
        return {"tinylm_phases": {k: f"{100 * v / total:.1f}%" for k, v in phases.items()},
                "tinylm_cprofile": lines}
    return step, handle, {}


def _torch_worker(config, model, torch):
    idx, targets = _batch(config)
    twin = build_torch_twin(torch, model, config["dtype"])
    step = torch_step_fn(twin, torch_optimizer(torch, twin), torch.from_numpy(idx),
                         torch.from_numpy(targets))
    return step, None, {"version": torch.__version__}


def worker_main(side: str, config: dict) -> None:
    """Serve ``time`` / ``generate`` / ``profile`` commands on stdin, one JSON line each."""
    torch = import_torch() if side in ("torch", "train-torch") else None
    if NUMBA_AVAILABLE:
        import numba
        numba.set_num_threads(config["threads"])
    if torch is not None:
        torch.set_num_threads(config["threads"])
    if side.startswith("train-"):
        print(json.dumps(train_preset(config, torch)), flush=True)
        return
    args = type("Args", (), {k: config[k] for k in ("layers", "heads", "embd", "block",
                                                    "vocab", "dtype")})
    model = build_tinylm(args)
    step, handle, ready = (_tinylm_worker(config, model) if torch is None
                           else _torch_worker(config, model, torch))
    for _ in range(2):                                    # warm-up: compilation, allocators
        step()
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["command"] == "time":
            start = time.perf_counter()
            for _ in range(command["steps"]):
                step()
            reply = {"seconds": (time.perf_counter() - start) / command["steps"]}
        else:
            reply = handle(command)
        print(json.dumps(reply), flush=True)


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
        worker = Worker(f"train-{side}", config)
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
    from tinylm.train.setup import prepare_data

    preset = get_preset(config["train"])
    if preset["model"] != "gpt":
        raise SystemExit(f"preset {config['train']!r} is not a GPT preset.")
    cfg = TrainConfig.from_dict(preset["train"])
    if config["train_iters"]:
        cfg = dataclasses.replace(cfg, max_iters=config["train_iters"],
                                  lr_decay_iters=config["train_iters"])
    data = prepare_data(cfg)
    model = GPT.from_config(dict(preset["model_config"], vocab_size=data.tokenizer.vocab_size))
    side = "tinylm" if torch is None else "torch"
    with tempfile.TemporaryDirectory() as out_dir:
        cfg = dataclasses.replace(cfg, out_dir=out_dir, progress=False)
        start = time.perf_counter()
        if torch is None:
            val_loss = train(model, "gpt", cfg, data.train, data.val,
                             log=lambda line: None).evals[-1]["val_loss"]
        else:
            twin = build_torch_twin(torch, model.to(dtype=numpy.float32), "float32")
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
        loss = twin(torch.from_numpy(x), torch.from_numpy(y))
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
            loss = twin(torch.from_numpy(numpy.ascontiguousarray(x)),
                        torch.from_numpy(numpy.ascontiguousarray(y)))
            total += loss.item() * y.size
            count += y.size
    twin.train()
    return total / count


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "worker":
    worker_main(sys.argv[2], json.loads(sys.argv[3]))
