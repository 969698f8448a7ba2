"""The ``tinylm`` command line (layer 6).

    tinylm train MODEL [--preset NAME] [--key value ...]   train a language model
    tinylm generate CHECKPOINT [--prompt ...]              sample text from a checkpoint
    tinylm eval CHECKPOINT                                 validation / test loss and perplexity
                                                           (word vectors: the three evaluations;
                                                           seq2seq: BLEU or exact match)
    tinylm translate RUN SENTENCE [--beam K]               translate with a seq2seq run
    tinylm poems RUN [--first 春,月] [--samples N]         sample five-character quatrains
    tinylm pretrain bert|gpt [--preset NAME]               pre-train on unlabelled English
    tinylm finetune [RUN] --task T [--method M]            fine-tune a classifier (or an LSTM)
    tinylm classify RUN TEXT                               label a text with a classifier
    tinylm similar RUN WORD                                nearest words by cosine (embeddings)
    tinylm analogy RUN A B C                               A is to B as C is to ? (embeddings)
    tinylm gradcheck                                       the library's own gradient checks
    tinylm check EXERCISE FILE [--list]                    check a fill-in exercise (exercises/)
    tinylm prune RUN --sparsity S --out RUN_P [...]        prune a GPT run, optionally fine-tune
    tinylm distill TEACHER --preset STUDENT [...]          distil a GPT run into a smaller GPT
    tinylm quantize RUN --bits 8|4 --out RUN_Q [...]       int8 / int4 weights of a GPT or RNN run
    tinylm bench {kernels,lstm,gpt,bert,...} [--json]      tinylm against PyTorch, same config
    tinylm baseline tfidf --task T [--split S] [--json]    TF-IDF + logistic regression scores
    tinylm import-hf DIR RUN [--tokenizer PATH]            a Hugging Face GPT-2 / BERT as a run
    tinylm export-hf RUN DIR                               a GPT / BERT run in Hugging Face format
    tinylm tokenize "TEXT" [--tokenizer gpt2|cl100k|PATH]  tokens, ids and boundaries of a text
    tinylm train-tokenizer --corpus C --vocab-size N ...   train a BPE or WordPiece vocabulary

Add --debug (or set TINYLM_DEBUG=1) to see the Python traceback of an error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = {
    "train": "tinylm.commands.train",
    "generate": "tinylm.commands.generate",
    "eval": "tinylm.commands.eval",
    "translate": "tinylm.commands.translate",
    "poems": "tinylm.commands.poems",
    "similar": "tinylm.commands.similar",
    "analogy": "tinylm.commands.analogy",
    "gradcheck": "tinylm.commands.gradcheck",
    "check": "tinylm.commands.check",
    "prune": "tinylm.commands.prune",
    "distill": "tinylm.commands.distill",
    "quantize": "tinylm.commands.quantize",
    "bench": "tinylm.commands.bench",
    "pretrain": "tinylm.commands.pretrain",
    "finetune": "tinylm.commands.finetune",
    "classify": "tinylm.commands.classify",
    "baseline": "tinylm.commands.baseline",
    "import-hf": "tinylm.commands.import_hf",
    "tokenize": "tinylm.commands.tokenize",
    "train-tokenizer": "tinylm.commands.train_tokenizer",
    "export-hf": "tinylm.commands.export_hf",
}

# What a user can cause -- bad settings, files, data, a diverged run -- is reported by its
# message alone; anything else is a bug in tinylm and says so.
USER_ERRORS = (ValueError, TypeError, KeyError, OSError, RuntimeError, FloatingPointError)
EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 1, 2, 130, 141   # 141: SIGPIPE


def _message(error: BaseException) -> str:
    """KeyError quotes its argument; every other exception's text is its message."""
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error) or type(error).__name__


def report(command: str, error: BaseException) -> int:
    """Print ``error`` as one or two lines on stderr -> the exit status."""
    prog = f"tinylm {command}"
    if isinstance(error, KeyboardInterrupt):
        print(f"{prog}: {_message(error) if error.args else 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(error, USER_ERRORS):
        print(f"{prog}: error: {_message(error)}", file=sys.stderr)
        return EXIT_ERROR
    print(f"{prog}: internal error ({type(error).__name__}: {_message(error)}).\n"
          "This is a bug in tinylm: rerun with --debug and report the traceback.", file=sys.stderr)
    return EXIT_ERROR


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is two lines (the problem, then where the help is) instead
    of the whole usage summary, which for ``tinylm train`` is twenty lines of flags."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n"
                              f"(all flags: {self.prog} --help)\n")


def _split_debug(argv: list) -> tuple[list, bool]:
    debug = "--debug" in argv or os.environ.get("TINYLM_DEBUG", "") not in ("", "0")
    return [a for a in argv if a != "--debug"], debug


def _silence_stdout() -> None:
    """The reader of stdout has gone: point stdout at /dev/null so that the interpreter's
    final flush does not fail a second time (the recipe of Python's signal docs)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv=None) -> int:
    """Dispatch ``argv`` to the command it names (imported only then); returns the exit
    status. Every error is caught here, the one boundary, unless --debug asks for the
    traceback."""
    argv, debug = _split_debug(sys.argv[1:] if argv is None else list(argv))
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"tinylm: unknown command {command!r}.\n{__doc__}", file=sys.stderr)
        return EXIT_USAGE
    try:
        module = importlib.import_module(COMMANDS[command])
        parser = ArgumentParser(prog=f"tinylm {command}", description=module.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(parser)
        args = parser.parse_args(rest)        # a usage error exits here with status 2
        return module.run(args) or 0
    except BrokenPipeError:                   # `tinylm tokenize ... | head` closed the pipe
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - the one boundary
        if debug:
            raise
        return report(command, error)


if __name__ == "__main__":
    sys.exit(main())
