"""``tinylm baseline tfidf --task sms-spam|polarity --split balanced|stratified|cv10
--features word|char [--seed N] [--json]``: the TF-IDF + logistic-regression baseline of
chapter 09 (tinylm/classify/baseline.py), printed as a metrics table or one JSON object.

    tinylm baseline tfidf --task sms-spam --split balanced --features word
    tinylm baseline tfidf --task polarity --split cv10 --features word --json
"""

from __future__ import annotations

import argparse
import json

from tinylm.classify.baseline import FEATURES, SPLITS, run_tfidf_baseline
from tinylm.classify.metrics import format_metrics
from tinylm.data.classification import TASKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One sub-command, ``tfidf``, with the task, split, features, seed and --json."""
    baselines = parser.add_subparsers(dest="baseline", required=True, metavar="BASELINE")
    sub = baselines.add_parser("tfidf", help="TF-IDF features + logistic regression")
    sub.add_argument("--task", choices=tuple(TASKS), required=True)
    sub.add_argument("--split", choices=SPLITS, default="balanced")
    sub.add_argument("--features", choices=tuple(FEATURES), default="word",
                     help="word: word 1-2-grams; char: char_wb 2-5-grams")
    sub.add_argument("--seed", type=int, default=123, help="seed of the split (default 123)")
    sub.add_argument("--json", action="store_true", help="print one JSON object")


def _header(result: dict) -> list:
    """The run's settings, sizes and chosen C, one line each."""
    lines = [f"tfidf baseline: task {result['task']}, split {result['split']}, features "
             f"{result['features']} ({result['analyzer']} {result['ngram_range'][0]}-"
             f"{result['ngram_range'][1]}-grams), seed {result['seed']}"]
    if result["split"] == "cv10":
        accuracies = ", ".join(f"{a:.4f}" for a in result["fold_accuracies"])
        lines += [f"{result['sizes']['examples']} examples in {result['sizes']['folds']} folds; "
                  f"C per fold {result['C_per_fold']}",
                  f"fold accuracies {accuracies} (std {result['accuracy_std']:.4f})"]
    else:
        sizes = ", ".join(f"{k} {v}" for k, v in result["sizes"].items())
        lines.append(f"sizes: {sizes}; {result['n_features']} features; chosen C "
                     f"{result['C']:g} (lambda {result['lambda']:.3g})")
    if not result["converged"]:
        lines.append("warning: L-BFGS stopped before reaching its gradient tolerance")
    return lines + [f"{result['seconds']:.1f} s", ""]


def run(args) -> int:
    """Run the baseline and print the table (or the JSON object)."""
    result = run_tfidf_baseline(args.task, args.split, args.features, args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(_header(result)) + format_metrics(result))
    return 0
