"""``tinylm similar RUN WORD [WORD ...] [--topn N]``: the words nearest to WORD by cosine in a
word-embedding run (several words: nearest to the mean of their unit vectors)."""

from __future__ import annotations

import argparse

from tinylm.commands.arguments import positive_int
from tinylm.train.embedding_run import load_word_vectors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run, the query words and how many neighbours to list."""
    parser.add_argument("run", help="the --out-dir of `tinylm train word2vec|glove`")
    parser.add_argument("words", nargs="+", metavar="WORD")
    parser.add_argument("--topn", type=positive_int, default=10)


def run(args) -> int:
    """Print one neighbour a line: the word and its cosine similarity."""
    vectors = load_word_vectors(args.run)
    for word, cosine in vectors.most_similar(args.words, topn=args.topn):
        print(f"{word:<20} {cosine:.4f}")
    return 0
