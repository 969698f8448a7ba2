"""``tinylm eval CHECKPOINT [--split val|test]``: loss and perplexity on a held-out split."""

from __future__ import annotations

import argparse

from tinylm.backend import array_module_for
from tinylm.evaluate import evaluate_lm
from tinylm.train.restore import load_trained
from tinylm.train.setup import prepare_data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The checkpoint, the split, and optionally the batch size and device."""
    parser.add_argument("checkpoint")
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default="cpu")


def run(args) -> int:
    """Print the split's loss (nats/token) and perplexity."""
    model, tokenizer, cfg = load_trained(args.checkpoint, args.device)
    data = prepare_data(cfg)
    ids = data.val if args.split == "val" else data.test
    if ids is None:
        raise SystemExit(f"dataset {cfg.dataset!r} has no test split; use --split val.")
    if data.tokenizer.vocab_size != tokenizer.vocab_size:
        raise SystemExit("the dataset's vocabulary differs from the checkpoint's tokenizer.")
    result = evaluate_lm(model, ids, args.batch_size or cfg.batch_size, cfg.block_size,
                         xp=array_module_for(args.device))
    print(f"{args.split}: loss {result['loss']:.4f} nats/token, perplexity "
          f"{result['perplexity']:.2f} over {result['tokens']:,} tokens")
    return 0
