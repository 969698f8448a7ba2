"""``tinylm finetune [RUN] --task sms-spam|polarity [--method full|probe|top|lora]
[--split balanced|stratified|cv10] [--fold K | --all-folds] [--init pretrained|random]
[--backbone lstm] [--label-fraction F] [--epochs N] [--lr LR] [--seed S]
[--setting KEY=VALUE ...] [--out-dir DIR] [--json]``

Fine-tune the backbone of a ``tinylm pretrain`` run RUN as a text classifier
(tinylm/train/finetune_run.py), or, with ``--backbone lstm`` and no RUN, train an LSTM
classifier from scratch. Prints the test metrics of the best validation epoch (accuracy,
per-class precision / recall / F1, the confusion matrix) and writes the classifier to
OUT_DIR for ``tinylm classify``. ``--all-folds`` (with ``--split cv10``) runs the ten folds
and reports each test accuracy, their mean and standard deviation. ``--label-curve
0.01,0.1,1 --seeds 0,1,2`` runs the label-efficiency experiment instead
(tinylm/train/label_curve.py): every fraction and seed with the pre-trained and with a
random backbone, written to OUT_DIR/label-curve.json and OUT_DIR/label-curve.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy

from tinylm.classify.metrics import format_metrics
from tinylm.commands.arguments import model_overrides, positive_int, probability
from tinylm.train.finetune_run import (INITS, METHODS, SPLITS, TASKS, FinetuneSettings,
                                       finetune, finetune_settings)
from tinylm.train.label_curve import label_curve, plot_label_curve

SETTING_NAMES = {f.name for f in dataclasses.fields(FinetuneSettings)}
FLAGS = ("task", "split", "fold", "method", "init", "backbone", "label_fraction", "epochs",
         "lr", "seed", "out_dir")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", nargs="?", help="OUT_DIR of a `tinylm pretrain` run")
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--split", choices=SPLITS)
    parser.add_argument("--fold", type=int, choices=range(10), metavar="K")
    parser.add_argument("--all-folds", action="store_true")
    parser.add_argument("--method", choices=METHODS)
    parser.add_argument("--init", choices=INITS)
    parser.add_argument("--backbone", choices=["lstm"])
    parser.add_argument("--label-fraction", type=probability)
    parser.add_argument("--epochs", type=positive_int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--setting", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="any other fine-tuning setting")
    parser.add_argument("--label-curve", metavar="F1,F2,...",
                        help="label fractions of the label-efficiency experiment")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of --label-curve")
    parser.add_argument("--out-dir")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _settings(args) -> FinetuneSettings:
    values = model_overrides(args.settings, flag="--setting")
    unknown = sorted(set(values) - SETTING_NAMES)
    if unknown:
        raise ValueError(f"--setting {unknown[0]} is not a fine-tuning setting; choose from "
                         f"{sorted(SETTING_NAMES)}.")
    values.update({k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None})
    values.setdefault("out_dir", f"runs/finetune-{values['task']}")
    if args.json:
        values["progress"] = False
    return finetune_settings(values)


def _all_folds(args, settings: FinetuneSettings, log) -> dict:
    if settings.split != "cv10":
        raise ValueError("--all-folds needs --split cv10.")
    results = []
    for fold in range(10):
        out_dir = str(Path(settings.out_dir) / f"fold{fold}")
        results.append(finetune(dataclasses.replace(settings, fold=fold, out_dir=out_dir),
                                args.run, log=log))
        log(f"fold {fold}: test accuracy {results[-1]['test']['accuracy']:.4f}")
    accuracies = numpy.array([r["test"]["accuracy"] for r in results])
    return {"task": settings.task, "split": "cv10", "method": settings.method,
            "init": results[0]["init"], "backbone": results[0]["backbone"],
            "fold_accuracies": accuracies.round(4).tolist(),
            "mean_accuracy": float(accuracies.mean()),
            "std_accuracy": float(accuracies.std(ddof=1)),
            "seconds": round(sum(r["seconds"] for r in results), 1)}


def _numbers(text: str, kind, flag: str) -> list:
    try:
        values = [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ValueError(f"{flag} expects comma-separated numbers, got {text!r}.") from None
    if not values:
        raise ValueError(f"{flag} expects at least one number.")
    return values


def _label_curve(args, settings, log) -> dict:
    fractions = _numbers(args.label_curve, float, "--label-curve")
    if not all(0 < f <= 1 for f in fractions):
        raise ValueError(f"--label-curve fractions must lie in (0, 1], got {fractions}.")
    curve = label_curve(settings, args.run, fractions, _numbers(args.seeds, int, "--seeds"), log)
    path = plot_label_curve(curve, Path(settings.out_dir) / "label-curve.png",
                            title=f"{settings.task}: {settings.method} fine-tuning")
    log(f"figure: {path}")
    return curve


def run(args) -> int:
    settings = _settings(args)
    log = (lambda line: None) if args.json else print
    if args.label_curve:
        curve = _label_curve(args, settings, log)
        if args.json:
            print(json.dumps(curve))
        return 0
    result = (_all_folds(args, settings, log) if args.all_folds
              else finetune(settings, args.run, log=log))
    if args.json:
        print(json.dumps(result))
    elif args.all_folds:
        print(f"10-fold accuracy {result['mean_accuracy']:.4f} +- {result['std_accuracy']:.4f} "
              f"({', '.join(f'{a:.3f}' for a in result['fold_accuracies'])})")
    else:
        print(format_metrics(result["test"]))
        print(f"{result['trainable_parameters']:,} of {result['total_parameters']:,} "
              f"parameters trained; best epoch {result['best_epoch']}; "
              f"{result['seconds']:.0f} s; classifier: {settings.out_dir}")
    return 0
