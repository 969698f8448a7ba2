"""``tinylm bench bert``: a BERT masked-LM training step (forward, backward, AdamW), tinylm
against PyTorch eager on the same configuration, the same weights and the same masked
batch, interleaved.

    tinylm bench bert --layers 4 --heads 4 --embd 128 --block 64 --batch 64 --vocab 16384
                      [--steps 5] [--repeat 5] [--dtype float32] [--threads N] [--profile]
                      [--json]

The PyTorch twin (tinylm/bench/twins/bert.py) is written from the paper with PyTorch's
layers and ``F.scaled_dot_product_attention``; like tinylm it runs the MLM head on the
masked positions only (15 % of the tokens, the 80-10-10 rule of tinylm/data/masking.py),
so both sides do the same arithmetic. ``torch.optim.AdamW`` (lr 5e-4, betas (0.9, 0.999),
eps 1e-6, weight decay 0.01 on matrices) against tinylm's AdamW with the same settings.
Dropout is 0 (a timing of the arithmetic). The defaults are the shape of the ``bert-small``
pre-training preset. Timing and the ``ratio`` (tinylm tokens/s / PyTorch tokens/s, > 1:
tinylm is faster) are tinylm/bench/harness.py's.
"""

from __future__ import annotations

import os

import numpy

from tinylm.backend import KERNEL_ENV_VAR
from tinylm.bench.gpt import tinylm_step_fn
from tinylm.bench.harness import (Side, add_timing_arguments, compare, default_threads,
                                   profile_report, torch_sides)
from tinylm.bench.twins.bert import bert_twin
from tinylm.data.masking import mask_tokens
from tinylm.models.bert import BERT, BERTConfig
from tinylm.optim import AdamW, decay_groups

LR, BETAS, EPS, WEIGHT_DECAY = 5e-4, (0.9, 0.999), 1e-6, 0.01
CONFIG_KEYS = ("layers", "heads", "embd", "block", "batch", "vocab", "dtype", "threads",
               "steps")
FIRST_WORD, MASK = 5, 4


def add_arguments(parser) -> None:
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--embd", type=int, default=128)
    parser.add_argument("--block", type=int, default=64, help="tokens per sequence (T)")
    parser.add_argument("--batch", type=int, default=64, help="sequences per batch (B)")
    parser.add_argument("--vocab", type=int, default=16384)
    add_timing_arguments(parser)


def masked_batch(config: dict):
    """A fixed batch of random word ids, [CLS] first, masked by the 80-10-10 rule."""
    rng = numpy.random.default_rng(0)
    B, T, V = config["batch"], config["block"], config["vocab"]
    ids = rng.integers(FIRST_WORD, V, size=(B, T))
    ids[:, 0] = 2
    maskable = ids >= FIRST_WORD
    return mask_tokens(ids, maskable, V, MASK, FIRST_WORD, rng)


def build_tinylm(config: dict):
    bert_config = BERTConfig(vocab_size=config["vocab"], block_size=config["block"],
                             n_layer=config["layers"], n_head=config["heads"],
                             n_embd=config["embd"], dropout=0.0)
    return BERT(bert_config).to(dtype=numpy.dtype(config["dtype"]))


def run(args) -> dict:
    config = {key: getattr(args, key) for key in CONFIG_KEYS}
    config["threads"] = args.threads or default_threads()
    extra = [("tinylm", {"command": "profile", "steps": args.steps})] if args.profile else []
    timings = compare(__name__, config, torch_sides(args.no_torch), args.repeat, args.steps,
                      args.batch * args.block, extra)
    return {"config": {k: config[k] for k in CONFIG_KEYS[:7]}, "threads": config["threads"],
            "kernels": os.environ.get(KERNEL_ENV_VAR, "auto"), **timings}


def build_side(side: str, config: dict, torch) -> Side:
    """A harness side: tinylm's BERT, or its PyTorch twin with the same weights and batch."""
    model = build_tinylm(config)
    inputs, targets = masked_batch(config)
    if side == "torch":
        twin = bert_twin(torch, model, fused_attention=True)
        optimizer = torch.optim.AdamW(decay_groups(list(twin.parameters()), WEIGHT_DECAY),
                                      lr=LR, betas=BETAS, eps=EPS)
        t_inputs, t_targets = torch.from_numpy(inputs), torch.from_numpy(targets)

        def step():
            optimizer.zero_grad(set_to_none=True)
            twin(t_inputs, t_targets)[1].backward()
            optimizer.step()
        return Side(step, ready={"version": torch.__version__})
    optimizer = AdamW(decay_groups(model.parameters(), WEIGHT_DECAY), lr=LR, betas=BETAS,
                      eps=EPS)
    step, phases = tinylm_step_fn(model, optimizer, inputs, targets)
    return Side(step, lambda command: profile_report(step, phases, command["steps"]))
