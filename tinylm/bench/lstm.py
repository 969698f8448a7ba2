"""``tinylm bench lstm``: one full training step of an LSTM language model, tinylm against
PyTorch on the same configuration, in the same process, interleaved.

    tinylm bench lstm --vocab 65 --embd 128 --hidden 256 --block 64 --batch 32 [--layers 1]
                      [--steps 5] [--repeat 5] [--dtype float32] [--threads N] [--json]

A step is forward (embedding -> LSTM stack -> linear -> softmax cross-entropy over the B x T
targets), backward, and an AdamW update (lr 1e-3, weight decay 0.01 on every parameter, as
torch.optim.AdamW's default). The PyTorch twin is nn.Embedding + nn.LSTM(batch_first=True)
+ nn.Linear + F.cross_entropy + torch.optim.AdamW, in the same dtype, with
torch.set_num_threads equal to numba's thread count (NUMBA_NUM_THREADS, default: all cores).

Timing: after two untimed warm-up steps each (numba compilation, allocator warm-up), the two
implementations alternate ``--repeat`` rounds of ``--steps`` steps; each reports its best
round (the least disturbed by other processes on a shared machine). ``ratio`` is tinylm's
tokens/s over PyTorch's: above 1.0 tinylm is faster. ``--profile`` adds tinylm's time split
into forward, backward and optimizer step.
"""

from __future__ import annotations

import os
import time

import numpy

from tinylm.backend import KERNEL_ENV_VAR, NUMBA_AVAILABLE, default_rng
from tinylm.bench import import_torch
from tinylm.models.rnn_lm import LSTMLM, RecurrentLMConfig
from tinylm.optim import AdamW

LR, WEIGHT_DECAY = 1e-3, 0.01


def add_arguments(parser) -> None:
    parser.add_argument("--vocab", type=int, default=65)
    parser.add_argument("--embd", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--block", type=int, default=64, help="time steps per sequence (T)")
    parser.add_argument("--batch", type=int, default=32, help="sequences per batch (B)")
    parser.add_argument("--steps", type=int, default=5, help="training steps per timed round")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (best is kept)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for numba and torch (default: numba's count)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch twin")
    parser.add_argument("--profile", action="store_true",
                        help="split tinylm's step into forward / backward / optimizer")


def tinylm_step_fn(args, idx, targets):
    """A closure running one tinylm training step, and a dict of phase timers."""
    config = RecurrentLMConfig(vocab_size=args.vocab, n_embd=args.embd, n_hidden=args.hidden,
                               n_layer=args.layers, init_range=0.0)
    model = LSTMLM(config).to(dtype=numpy.dtype(args.dtype))
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


def torch_step_fn(torch, args, idx, targets):
    """The PyTorch twin of ``tinylm_step_fn``'s step."""
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(args.vocab, args.embd).to(dtype)
    lstm = torch.nn.LSTM(args.embd, args.hidden, args.layers, batch_first=True).to(dtype)
    head = torch.nn.Linear(args.hidden, args.vocab).to(dtype)
    params = [*embedding.parameters(), *lstm.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=WEIGHT_DECAY)
    t_idx, t_targets = torch.from_numpy(idx), torch.from_numpy(targets)

    def step():
        optimizer.zero_grad(set_to_none=True)
        out, _ = lstm(embedding(t_idx))
        logits = head(out)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, args.vocab),
                                                 t_targets.reshape(-1))
        loss.backward()
        optimizer.step()
    return step


def _round_seconds(step, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps



def run(args) -> dict:
    if NUMBA_AVAILABLE:
        import numba
        threads = args.threads or numba.get_num_threads()
        numba.set_num_threads(threads)
    else:
        threads = args.threads or os.cpu_count()
    torch = import_torch(args.no_torch)
    if torch is not None:
        torch.set_num_threads(threads)
    rng = default_rng(0)
    idx = rng.integers(0, args.vocab, size=(args.batch, args.block))
    targets = rng.integers(0, args.vocab, size=(args.batch, args.block))
    tokens = args.batch * args.block

    tiny_step, phases = tinylm_step_fn(args, idx, targets)
    torch_step = torch_step_fn(torch, args, idx, targets) if torch is not None else None
    for _ in range(2):
        tiny_step()
        if torch_step is not None:
            torch_step()
    for key in phases:
        phases[key] = 0.0
    tiny_best, torch_best = float("inf"), float("inf")
    for _ in range(max(1, args.repeat)):
        tiny_best = min(tiny_best, _round_seconds(tiny_step, args.steps))
        if torch_step is not None:
            torch_best = min(torch_best, _round_seconds(torch_step, args.steps))

    result = {"config": {"vocab": args.vocab, "embd": args.embd, "hidden": args.hidden,
                         "layers": args.layers, "block": args.block, "batch": args.batch,
                         "dtype": args.dtype},
              "threads": threads, "kernels": os.environ.get(KERNEL_ENV_VAR, "auto"),
              "tinylm_ms_per_step": round(1e3 * tiny_best, 2),
              "tinylm_tokens_per_s": round(tokens / tiny_best, 1)}
    if torch_step is not None:
        result.update({"torch_version": torch.__version__,
                       "torch_ms_per_step": round(1e3 * torch_best, 2),
                       "torch_tokens_per_s": round(tokens / torch_best, 1),
                       "ratio": round(torch_best / tiny_best, 3)})
    else:
        result.update({"torch_tokens_per_s": None, "ratio": None})
    if args.profile:
        total = sum(phases.values())
        result["tinylm_profile"] = {k: f"{100 * v / total:.1f}%" for k, v in phases.items()}
    return result
