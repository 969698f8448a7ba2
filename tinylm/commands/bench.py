"""``tinylm bench {kernels,lstm,gpt,word2vec} [--json] [options]``: tinylm against PyTorch
(gensim for word2vec), same configuration.

Each benchmark (tinylm/bench/) brings its own flags; the result is printed one field a line,
or with ``--json`` as one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json

from tinylm.bench import BENCHMARKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One sub-command per benchmark, each with ``--json`` and the benchmark's own flags."""
    choices = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, module_name in BENCHMARKS.items():
        sub = choices.add_parser(name, help=f"tinylm bench {name}")
        sub.add_argument("--json", action="store_true", help="print one JSON object")
        importlib.import_module(module_name).add_arguments(sub)


def run(args) -> int:
    """Run the chosen benchmark and print its result."""
    result = importlib.import_module(BENCHMARKS[args.benchmark]).run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0
