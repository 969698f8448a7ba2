"""The ``tinylm`` command line (layer 6).

    tinylm train MODEL [--preset NAME] [--key value ...]   train a language model
    tinylm generate CHECKPOINT [--prompt ...]              sample text from a checkpoint
    tinylm eval CHECKPOINT                                 validation / test loss and perplexity
    tinylm gradcheck                                       the library's own gradient checks
    tinylm bench {kernels,lstm,gpt} [--json]               tinylm against PyTorch, same config
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys


def _bench(argv):
    from tinylm.bench import BENCHMARKS
    if not argv or argv[0] not in BENCHMARKS:
        raise SystemExit(f"usage: tinylm bench {{{','.join(BENCHMARKS)}}} [options]")
    module = importlib.import_module(BENCHMARKS[argv[0]])
    parser = argparse.ArgumentParser(prog=f"tinylm bench {argv[0]}")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    result = module.run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


COMMANDS = {
    "train": "tinylm.train.command",
    "generate": "tinylm.train.generate_command",
    "eval": "tinylm.train.eval_command",
    "gradcheck": "tinylm.checks",
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "bench":
        _bench(rest)
        return 0
    if command not in COMMANDS:
        print(f"tinylm: unknown command {command!r}.\n{__doc__}", file=sys.stderr)
        return 2
    return importlib.import_module(COMMANDS[command]).main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
