"""``tinylm analogy RUN A B C [--topn N]``: "A is to B as C is to ?", answered by the words
closest to B - A + C by cosine (3CosAdd, the rule of the Google analogy test), the three
question words excluded: ``tinylm analogy runs/ptb-skipgram man king woman``."""

from __future__ import annotations

import argparse

from tinylm.commands.arguments import positive_int
from tinylm.train.embedding_run import load_word_vectors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run, the three words and how many answers to list."""
    parser.add_argument("run", help="the --out-dir of `tinylm train word2vec|glove`")
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("c")
    parser.add_argument("--topn", type=positive_int, default=5)


def run(args) -> int:
    """Print the candidate answers, best first, with their cosine similarity."""
    vectors = load_word_vectors(args.run)
    for word, cosine in vectors.analogy(args.a, args.b, args.c, topn=args.topn):
        print(f"{word:<20} {cosine:.4f}")
    return 0
