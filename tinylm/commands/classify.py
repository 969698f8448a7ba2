"""``tinylm classify RUN TEXT [TEXT ...]``

Label each text with a ``tinylm finetune`` classifier: one line per text, the label and its
probability (``spam 0.998``). An empty text is an error.
"""

from __future__ import annotations

import argparse

from tinylm.train.text_classifier import load_classifier


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="OUT_DIR of a `tinylm finetune` run")
    parser.add_argument("texts", nargs="+", metavar="TEXT")


def run(args) -> int:
    classifier = load_classifier(args.run)
    for label, probability in classifier.classify(args.texts):
        print(f"{label}\t{probability:.4f}")
    return 0
