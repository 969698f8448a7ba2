"""Small training runs for tests/test_distributed.py, in one process (imported by the test)
or as the ranks of an MPI job:

    mpiexec -n 2 python tests/distributed_run.py OUT_DIR --families gpt lstm mlp --zero 0 1
    mpiexec -n 2 python tests/distributed_run.py OUT_DIR --families gpt --stop-at 17 --signal KILL
    mpiexec -n 2 python tests/distributed_run.py OUT_DIR --families gpt --resume

Each run trains a tiny float64 model of its family with dropout for ``STEPS`` steps
(AdamW with weight decay and global-norm clipping for GPT and the LSTM, SGD with momentum
for the MLP; sequential batching with carried state across two epochs for the LSTM) and
rank 0 writes its losses to OUT_DIR/losses.json: {"<family>-zero<k>": {"train": [...],
"val": [...]}}. ``--stop-at S --signal KILL|TERM`` sends rank 1 that signal during step S.
``--fake-gpu FAMILY ...`` also trains those families on the fake device (tests/fake_cupy),
whose buffers go through host memory for every collective ("<family>-zero<k>-fakegpu").
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinylm.train.loop as loop  # noqa: E402
from model_helpers import learnable_ids  # noqa: E402  (this folder: the script's own)
from tinylm.distributed import DataParallel, init_world, stop_every_rank_on_error  # noqa: E402
from tinylm.models.gpt import GPT, GPTConfig  # noqa: E402
from tinylm.models.mlp_lm import MLPConfig, MLPLM  # noqa: E402
from tinylm.models.rnn_lm import LSTMLM, RecurrentLMConfig  # noqa: E402
from tinylm.train.config import TrainConfig  # noqa: E402

STEPS, V, BATCH = 20, 11, 4


def ids(n=1400, seed=0):
    """A learnable stream: a repeating pattern with 10 % noise."""
    return learnable_ids(n, V, seed)


def build(family: str):
    """(model, training settings) of a family."""
    common = dict(batch_size=BATCH, max_iters=STEPS, eval_interval=10, eval_iters=3,
                  dtype="float64", progress=False, seed=5, log_interval=4)
    if family == "gpt":
        model = GPT(GPTConfig(vocab_size=V, block_size=8, n_layer=2, n_head=2, n_embd=16,
                              dropout=0.2, seed=1))
        return model, dict(common, block_size=8, lr=3e-3, weight_decay=0.1, grad_clip=0.5,
                           schedule="cosine", warmup_iters=4, min_lr=3e-4)
    if family == "lstm":
        model = LSTMLM(RecurrentLMConfig(vocab_size=V, n_embd=8, n_hidden=12, n_layer=2,
                                         dropout=0.2, seed=2))
        return model, dict(common, batching="sequential", block_size=10, lr=3e-3,
                           weight_decay=0.1, grad_clip=0.5)
    if family == "mlp":
        model = MLPLM(MLPConfig(vocab_size=V, block_size=4, n_embd=6, n_hidden=24,
                                dropout=0.2, token_dropout=0.1, seed=3))
        return model, dict(common, block_size=6, optimizer="sgd", lr=0.3, momentum=0.9,
                           grad_clip=1.0)
    raise ValueError(f"unknown family {family!r}")


def run(family: str, out_dir, parallel=None, resume=False, lr=None, device="cpu"):
    """Train ``family`` into ``out_dir`` -> (training losses, validation losses)."""
    model, settings = build(family)
    settings["lr"] = lr or settings["lr"]
    settings["device"] = device
    stream = ids(700 if family == "lstm" else 1400)
    cut = int(0.85 * len(stream))
    cfg = TrainConfig(**settings, out_dir=str(out_dir))
    history = loop.train(model, family, cfg, stream[:cut], stream[cut:], resume=resume,
                         log=lambda *_: None, parallel=parallel)
    return [loss for _, loss in history.train_losses], [e["val_loss"] for e in history.evals]


def use_fake_gpu() -> None:
    """device="gpu" is the fake device from now on (as the fake_gpu fixture of conftest)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fake_cupy
    import tinylm.backend
    tinylm.backend.cupy = fake_cupy
    sys.modules.update(fake_cupy.cupyx_modules())


def stop_rank_during(step: int, rank: int, signum: int) -> None:
    """Rank ``rank`` receives ``signum`` during training step ``step``."""
    real = loop.data_parallel_step

    def step_then_signal(model, optimizer, batcher, cfg, lr, xp, it):
        if it == step and optimizer.world.rank == rank:
            os.kill(os.getpid(), signum)
        return real(model, optimizer, batcher, cfg, lr, xp, it)

    loop.data_parallel_step = step_then_signal


def report(world):
    def print_error(error):
        print(f"distributed_run ({world}): {error}", file=sys.stderr)
        return 1
    return print_error


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--families", nargs="*", default=["gpt"])
    parser.add_argument("--zero", nargs="+", type=int, default=[0])
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--stop-at", type=int)
    parser.add_argument("--signal", choices=["KILL", "TERM"], default="KILL")
    parser.add_argument("--lr", type=float, help="another learning rate (a mismatched rank)")
    parser.add_argument("--fake-gpu", nargs="*", default=[], metavar="FAMILY")
    args = parser.parse_args(argv)
    world = init_world()
    if args.stop_at is not None:
        stop_rank_during(args.stop_at, 1, getattr(signal, f"SIG{args.signal}"))
    if args.fake_gpu:
        use_fake_gpu()
    runs = [(family, "cpu") for family in args.families] + [(f, "gpu") for f in args.fake_gpu]
    losses = {}
    with stop_every_rank_on_error(world, report(world)):
        for family, device in runs:
            for zero in args.zero:
                parallel = DataParallel(world, zero) if world.size > 1 else None
                name = f"{family}-zero{zero}" + ("-fakegpu" if device == "gpu" else "")
                train, val = run(family, Path(args.out_dir) / name, parallel, args.resume,
                                 args.lr, device)
                losses[name] = {"train": train, "val": val,
                                "memory": parallel.memory() if parallel else None}
    if world.is_root:
        (Path(args.out_dir) / "losses.json").write_text(json.dumps(losses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
