"""``tinylm generate CHECKPOINT [--prompt TEXT] [--max-new-tokens N] [--temperature T]
[--top-k K] [--top-p P] [--greedy] [--seed S] [--device cpu|gpu]``

``--greedy`` always takes the most likely token, so it excludes the sampling flags
(``--temperature``, ``--top-k``, ``--top-p``)."""

from __future__ import annotations

import argparse

import numpy

from tinylm.backend import array_module_for, default_rng
from tinylm.commands.arguments import nonnegative_float, nonnegative_int, positive_int, probability
from tinylm.generate import generate
from tinylm.train.restore import load_trained

SAMPLING_FLAGS = ("temperature", "top_k", "top_p")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The checkpoint, the prompt and the sampling settings."""
    p.add_argument("checkpoint", help="OUT_DIR or OUT_DIR/ckpt of a `tinylm train` run")
    p.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    p.add_argument("--max-new-tokens", type=positive_int, default=500)
    p.add_argument("--temperature", type=nonnegative_float, default=None,
                   help="softmax temperature (default 1; 0 means greedy)")
    p.add_argument("--top-k", type=positive_int, default=None)
    p.add_argument("--top-p", type=probability, default=None)
    p.add_argument("--greedy", action="store_true", help="always take the most likely token")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")


def _check_decoding_flags(args) -> None:
    given = [f"--{name.replace('_', '-')}" for name in SAMPLING_FLAGS
             if getattr(args, name) is not None]
    if args.greedy and given:
        raise ValueError(f"--greedy takes the most likely token, so {', '.join(given)} would "
                         "have no effect; drop --greedy to sample, or drop the sampling flags.")


def run(args) -> int:
    """Print the prompt followed by the sampled continuation."""
    _check_decoding_flags(args)
    model, tokenizer, _ = load_trained(args.checkpoint, args.device)
    xp = array_module_for(args.device)
    prompt_ids = numpy.asarray(tokenizer.encode(args.prompt), dtype=numpy.int64)
    if prompt_ids.size == 0:
        raise ValueError("the prompt encodes to no tokens; give at least one character/word.")
    temperature = 1.0 if args.temperature is None else args.temperature
    new_ids = generate(model, xp.asarray(prompt_ids[None, :]), args.max_new_tokens,
                       default_rng(args.seed), temperature=temperature, top_k=args.top_k,
                       top_p=args.top_p, greedy=args.greedy)
    print(args.prompt + tokenizer.decode([int(i) for i in new_ids[0]]))
    return 0
