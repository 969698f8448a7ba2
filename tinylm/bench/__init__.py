"""Benchmarks (commands, not tests): ``tinylm bench NAME``. Each module here defines

    add_arguments(parser)   -- its flags
    run(args) -> dict       -- times tinylm (and PyTorch, when installed) in the same run

and the command line prints the dict (``--json``: as one JSON object).
"""

BENCHMARKS = {
    "kernels": "tinylm.bench.kernels",
    "lstm": "tinylm.bench.lstm",
    "gpt": "tinylm.bench.gpt",
}
