"""Benchmarks (commands, not tests): ``tinylm bench NAME``. Each module here defines

    add_arguments(parser)   -- its flags
    run(args) -> dict       -- times tinylm (and PyTorch, when installed) in the same run

and the command line prints the dict (``--json``: as one JSON object).

PyTorch (gensim for word2vec) is the yardstick, never a dependency: ``import_torch`` is the one place where tinylm
may load it, only inside a benchmark's ``run``, and only when it is installed. The models
and kernels being timed never see it.
"""

import importlib

BENCHMARKS = {
    "kernels": "tinylm.bench.kernels",
    "lstm": "tinylm.bench.lstm",
    "gpt": "tinylm.bench.gpt",
    "bert": "tinylm.bench.bert",
    "seq2seq": "tinylm.bench.seq2seq",
    "seq2seq-twin": "tinylm.bench.seq2seq_twin",
    "word2vec": "tinylm.bench.word2vec",
    "tokenizer": "tinylm.bench.tokenizer",
    "quantize": "tinylm.bench.quantize",
}


def import_torch(skip: bool = False):
    """The ``torch`` module for a benchmark's comparison column, or None when ``skip`` is set
    (``--no-torch``) or PyTorch is not installed."""
    if skip:
        return None
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None
