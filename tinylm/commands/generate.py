"""``tinylm generate CHECKPOINT [--prompt TEXT] [--max-new-tokens N] [--temperature T]
[--top-k K] [--top-p P] [--greedy] [--seed S] [--device cpu|gpu]``"""

from __future__ import annotations

import argparse

import numpy

from tinylm.backend import array_module_for, default_rng
from tinylm.generate import generate
from tinylm.train.restore import load_trained


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The checkpoint, the prompt and the sampling settings."""
    p.add_argument("checkpoint", help="OUT_DIR or OUT_DIR/ckpt of a `tinylm train` run")
    p.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    p.add_argument("--max-new-tokens", type=int, default=500)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--greedy", action="store_true", help="always take the most likely token")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")


def run(args) -> int:
    """Print the prompt followed by the sampled continuation."""
    model, tokenizer, _ = load_trained(args.checkpoint, args.device)
    xp = array_module_for(args.device)
    prompt_ids = numpy.asarray(tokenizer.encode(args.prompt), dtype=numpy.int64)
    if prompt_ids.size == 0:
        raise SystemExit("the prompt encodes to no tokens; give at least one character/word.")
    new_ids = generate(model, xp.asarray(prompt_ids[None, :]), args.max_new_tokens,
                       default_rng(args.seed), temperature=args.temperature, top_k=args.top_k,
                       top_p=args.top_p, greedy=args.greedy)
    print(args.prompt + tokenizer.decode([int(i) for i in new_ids[0]]))
    return 0
