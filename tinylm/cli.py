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
import sys

COMMANDS = {
    "train": "tinylm.commands.train",
    "generate": "tinylm.commands.generate",
    "eval": "tinylm.commands.eval",
    "gradcheck": "tinylm.commands.gradcheck",
    "bench": "tinylm.commands.bench",
}


def main(argv=None) -> int:
    """Dispatch ``argv`` to the command it names (imported only then); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"tinylm: unknown command {command!r}.\n{__doc__}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command])
    parser = argparse.ArgumentParser(prog=f"tinylm {command}", description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return module.run(parser.parse_args(rest)) or 0


if __name__ == "__main__":
    sys.exit(main())
