"""``tinylm quantize RUN --bits 8|4 --out RUN_Q [--group-size G] [--overwrite]``

Weight-only post-training quantisation of a trained GPT or recurrent language model
(tinylm/compress/quantize.py): ``--bits 8`` stores each weight matrix as int8 with one scale
per output channel (``--group-size G``: per group of G inputs instead), ``--bits 4`` as
packed int4 with one scale per group of G inputs (default 32). The result is a run in
RUN_Q that ``tinylm eval RUN_Q`` and ``tinylm generate RUN_Q`` read like any other; its
``provenance.quantization`` records the settings, the source run and the weights' bytes
before and after. It holds no optimizer state and cannot be trained or resumed."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from tinylm.checkpoint import checkpoint_exists
from tinylm.commands.arguments import positive_int
from tinylm.compress.quantize import quantize_model
from tinylm.train.config import TrainConfig
from tinylm.train.loop import CHECKPOINT_NAME, RunState, save_run
from tinylm.train.restore import load_trained, read_run_metadata


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run, the width and grouping, the output folder."""
    parser.add_argument("run", help="OUT_DIR of a `tinylm train gpt|lstm|gru|rnn` run")
    parser.add_argument("--bits", type=int, required=True, help="8 (int8) or 4 (int4)")
    parser.add_argument("--group-size", type=positive_int, default=None, metavar="G",
                        help="inputs sharing one scale (int4 default 32; int8 default: a "
                             "whole output channel)")
    parser.add_argument("--out", required=True, help="folder of the quantised run")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a checkpoint already in --out")


def run(args) -> int:
    """Quantise, write RUN_Q and print the weights' sizes."""
    out = Path(args.out)
    if checkpoint_exists(out / CHECKPOINT_NAME) and not args.overwrite:
        raise ValueError(f"{out} already holds a checkpoint; it is kept. Choose another --out "
                         "or give --overwrite.")
    meta = read_run_metadata(args.run)
    source = meta["provenance"].get("quantization")
    if source is not None:
        raise ValueError(f"{args.run} is already quantised (int{source['bits']}, from "
                         f"{source['source']}); quantise the float run instead.")
    model, _, _ = load_trained(args.run)
    report = quantize_model(model, args.bits, args.group_size)
    quantization = {"bits": report.bits, "group_size": report.group_size,
                    "source": str(args.run), "layers": list(report.layers),
                    "float_bytes": report.float_bytes, "quantized_bytes": report.quantized_bytes}
    cfg = dataclasses.replace(TrainConfig.from_dict(meta["train_config"]), out_dir=str(out))
    save_run(out, model, meta["model"], cfg, RunState(**meta["run"]),
             provenance={**meta["provenance"], "quantization": quantization})
    print(report)
    print(f"checkpoint: {out / CHECKPOINT_NAME}.json")
    return 0
