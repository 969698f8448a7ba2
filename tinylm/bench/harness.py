"""The one timing harness of ``tinylm bench``: threads, worker processes, rounds, results.

Training-step benchmarks (bench/gpt.py, bench/lstm.py) define

    build_side(side, config, torch) -> Side    "tinylm" or "torch": a step closure on fixed data

and ``compare`` runs each side in its own worker process (``python -m tinylm.bench.harness
MODULE SIDE CONFIG``), so the libraries' thread pools (numba's, OpenBLAS's, PyTorch's
OpenMP) never compete inside one process. Both processes get the same ``threads``: numba,
OpenBLAS and OpenMP through the environment and ``numba.set_num_threads``, PyTorch through
``torch.set_num_threads``. Both draw the same batch from the same seed before any timing.

Phases of a worker: build, ``WARMUP_STEPS`` untimed steps (compilation, allocators), then
rounds on request. The parent alternates ``repeat`` rounds between the sides, swapping the
order every round. Each round starts with ``ROUND_WARMUP_STEPS`` untimed steps, because a
side whose thread pool idled (asleep) while the other side ran pays the wake-up in its first
step; then ``steps`` timed steps. Result schema, per side S:

    S_ms_per_step          best round (the least disturbed on a shared machine)
    S_median_ms_per_step   median round
    S_tokens_per_s         tokens per step / best round
    ratio                  tinylm tokens/s / torch tokens/s (> 1: tinylm is faster)

``best_ms`` is the in-process timer of the single-kernel benchmark (bench/kernels.py).
"""

from __future__ import annotations

import cProfile
import dataclasses
import importlib
import json
import os
import pstats
import subprocess
import sys
import time
from typing import Callable

import numpy

from tinylm.backend import NUMBA_AVAILABLE, default_rng
from tinylm.bench import import_torch

WARMUP_STEPS = 2
ROUND_WARMUP_STEPS = 1


@dataclasses.dataclass
class Side:
    """One side of a comparison inside its worker: ``step()`` runs one training step;
    ``handle(command)`` answers the benchmark's own commands; ``ready`` is sent on start."""

    step: Callable
    handle: Callable | None = None
    ready: dict = dataclasses.field(default_factory=dict)


def add_timing_arguments(parser) -> None:
    """The flags every training-step benchmark shares: rounds, dtype, threads, the
    comparison column and the profile."""
    parser.add_argument("--steps", type=int, default=5, help="training steps per timed round")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (best is kept)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for numba, OpenBLAS and torch (default: numba's count)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch twin")
    parser.add_argument("--profile", action="store_true",
                        help="profile tinylm's step: its phases (and cProfile's top functions "
                             "where the benchmark lists them)")


def default_threads() -> int:
    """numba's thread count (all cores unless NUMBA_NUM_THREADS says otherwise)."""
    if NUMBA_AVAILABLE:
        import numba
        return numba.get_num_threads()
    return os.cpu_count() or 1


def set_threads(threads: int, torch=None) -> None:
    """Give numba, NumPy's BLAS and (when given) PyTorch ``threads`` threads in this process
    (the BLAS too: a "one thread" figure with a multi-threaded OpenBLAS under it is wrong)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")        # stays in force until exit
    if NUMBA_AVAILABLE:
        import numba
        numba.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)


def fixed_batch(config: dict):
    """The one batch both sides train on: idx, targets [batch, block] ids from seed 0."""
    rng = default_rng(0)
    shape = (config["batch"], config["block"])
    return (rng.integers(0, config["vocab"], size=shape),
            rng.integers(0, config["vocab"], size=shape))


def timed_steps(step, steps: int, warmup: int = ROUND_WARMUP_STEPS) -> float:
    """Seconds per step of ``steps`` calls of ``step`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def best_ms(fn, repeat: int, budget: float, clock=time.perf_counter) -> float:
    """Best time of ``fn()`` in milliseconds on ``clock``, after one untimed warm-up call;
    stops repeating once ``budget`` seconds are spent."""
    fn()
    best, spent = float("inf"), 0.0
    for _ in range(max(1, repeat)):
        start = clock()
        fn()
        elapsed = clock() - start
        best, spent = min(best, elapsed), spent + elapsed
        if spent > budget:
            break
    return 1e3 * best


class Worker:
    """One side in its own process, driven by one-line JSON commands on its stdin."""

    def __init__(self, module: str, side: str, config: dict):
        threads = str(config["threads"])
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, NUMBA_NUM_THREADS=threads,
                   OMP_NUM_THREADS=threads)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tinylm.bench.harness", module, side, json.dumps(config)],
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


def profile_report(step, phases: dict, steps: int) -> dict:
    """Run ``step`` ``steps`` times under cProfile: the share of each phase timer in
    ``phases`` (reset first) and cProfile's top functions."""
    for key in phases:
        phases[key] = 0.0
    lines = _profile_top(step, steps)
    total = sum(phases.values())
    return {"tinylm_phases": {k: f"{100 * v / total:.1f}%" for k, v in phases.items()},
            "tinylm_cprofile": lines}


def summarize(rounds: dict, tokens_per_step: int) -> dict:
    """Seconds per step of each side's rounds -> the result fields of the schema above."""
    result = {}
    for side, seconds in rounds.items():
        best, median = min(seconds), float(numpy.median(seconds))
        result[f"{side}_ms_per_step"] = round(1e3 * best, 2)
        result[f"{side}_median_ms_per_step"] = round(1e3 * median, 2)
        result[f"{side}_tokens_per_s"] = round(tokens_per_step / best, 1)
    if "torch" in rounds:
        result["ratio"] = round(result["tinylm_tokens_per_s"] / result["torch_tokens_per_s"], 3)
    else:
        result.update({"torch_tokens_per_s": None, "ratio": None})
    return result


def compare(module: str, config: dict, sides: list, repeat: int, steps: int, tokens: int,
            extra_commands=()) -> dict:
    """Start one worker per side, alternate ``repeat`` timed rounds, then send each
    (side, command) of ``extra_commands``; returns the summary with the replies merged."""
    workers = {side: Worker(module, side, config) for side in sides}
    try:
        rounds = {side: [] for side in sides}
        for r in range(max(1, repeat)):
            for side in (sides if r % 2 == 0 else sides[::-1]):
                rounds[side].append(workers[side].ask(command="time", steps=steps)["seconds"])
        result = summarize(rounds, tokens)
        if "torch" in workers:
            result["torch_version"] = workers["torch"].ready["version"]
        for side, command in extra_commands:
            result.update(workers[side].ask(**command))
    finally:
        for worker in workers.values():
            worker.close()
    return result


def torch_sides(skip: bool) -> list:
    """["tinylm"], plus "torch" when PyTorch is installed and not skipped."""
    return ["tinylm"] + ([] if skip or import_torch() is None else ["torch"])


def worker_main(module: str, side: str, config: dict) -> None:
    """Build the side, warm it up, then serve ``time`` and the benchmark's own commands."""
    torch = import_torch() if side == "torch" else None
    set_threads(config["threads"], torch)
    built = importlib.import_module(module).build_side(side, config, torch)
    for _ in range(WARMUP_STEPS):
        built.step()
    print(json.dumps(built.ready), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["command"] == "time":
            reply = {"seconds": timed_steps(built.step, command["steps"])}
        else:
            reply = built.handle(command)
        print(json.dumps(reply), flush=True)


if __name__ == "__main__" and len(sys.argv) == 4:
    worker_main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
