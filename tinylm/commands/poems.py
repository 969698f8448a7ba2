"""``tinylm poems RUN [--first 春,月,山,風,花] [--temperatures 0.6,0.8,1.0] [--samples N]
[--seed S] [--device cpu|gpu] [--json]``

Sample five-character quatrains（五言绝句）from a character-level GPT trained on the Tang
poems (``tinylm train gpt --preset tang-poems``): for each temperature, ``--samples`` poems
for each first character, each prompted with a newline and that character and stopped at
the next newline. Prints, per temperature, the fraction of samples with the exact quatrain
form, the fraction with four lines, the fraction copied from the training quatrains, the
failures by kind and the first sample of each first character; and the run's validation
perplexity. The measurement is tinylm/train/quatrains.py; the form, tinylm/data/poetry.py.
"""

from __future__ import annotations

import argparse
import json
import math

from tinylm.backend import array_module_for
from tinylm.commands.arguments import nonnegative_int, positive_int
from tinylm.train.quatrains import measure_quatrains
from tinylm.train.restore import load_trained, read_run_metadata
from tinylm.train.setup import prepare_data

GPT = "gpt"
DEFAULT_FIRST = "春,月,山,風,花"
DEFAULT_TEMPERATURES = "0.6,0.8,1.0"


def first_characters(text: str) -> list[str]:
    """'春,月' (commas ASCII or full-width) -> ['春', '月']; each item one character."""
    items = [item.strip() for item in text.replace("，", ",").split(",")]
    if not any(items):
        raise argparse.ArgumentTypeError("give at least one first character, e.g. --first 春,月.")
    for item in items:
        if len(item) != 1:
            raise argparse.ArgumentTypeError(f"{item!r} is {len(item)} characters; give one "
                                             "character per comma-separated item (春,月,山).")
    return items


def temperatures(text: str) -> list[float]:
    """'0.6,0.8,1.0' -> [0.6, 0.8, 1.0]; each a finite number > 0."""
    values = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not a number.") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"temperature {value} must be a finite number > 0 "
                                             "(0 would be greedy: the same poem every time).")
        values.append(value)
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run, the first characters, the temperatures, the sample count and the output."""
    parser.add_argument("run", help="OUT_DIR of `tinylm train gpt --preset tang-poems`")
    parser.add_argument("--first", type=first_characters, default=DEFAULT_FIRST,
                        help=f"first characters, comma-separated (default {DEFAULT_FIRST})")
    parser.add_argument("--temperatures", type=temperatures, default=DEFAULT_TEMPERATURES,
                        help=f"sampling temperatures, comma-separated (default "
                             f"{DEFAULT_TEMPERATURES})")
    parser.add_argument("--samples", type=positive_int, default=20,
                        help="poems per first character and temperature (default 20)")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")


def run(args) -> int:
    """Sample, measure and print (text or JSON)."""
    meta = read_run_metadata(args.run)
    if meta["model"] != GPT:
        raise ValueError(f"{args.run} holds a {meta['model']!r} run; tinylm poems samples from a "
                         "GPT: train one with `tinylm train gpt --preset tang-poems`.")
    model, tokenizer, cfg = load_trained(args.run, args.device, same_data=True)
    data = prepare_data(cfg, tokenizer)
    known = set(tokenizer.decode(data.train).split("\n"))
    results = measure_quatrains(model, tokenizer, args.first, args.temperatures, args.samples,
                                args.seed, known=known, xp=array_module_for(args.device))
    final = meta["run"]["evals"][-1]
    summary = {"run": str(args.run), "dataset": cfg.dataset, "step": final["iter"],
               "val_loss": final["val_loss"], "val_perplexity": final["val_perplexity"],
               "first": args.first, "samples_per_first": args.samples, "seed": args.seed,
               "temperatures": results}
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=1))
    else:
        _print_text(summary)
    return 0


def _print_text(summary: dict) -> None:
    print(f"{summary['run']}: GPT on {summary['dataset']}, step {summary['step']}, validation "
          f"loss {summary['val_loss']:.4f} nats/char, perplexity {summary['val_perplexity']:.2f}")
    print(f"{summary['samples_per_first']} samples for each of {' '.join(summary['first'])}, "
          f"seed {summary['seed']}")
    for r in summary["temperatures"]:
        failures = ", ".join(f"{kind} {n}" for kind, n in sorted(r["failures"].items()))
        print(f"\ntemperature {r['temperature']:g}, {r['samples']} samples: quatrain form "
              f"{r['form']:.1%}, four lines {r['line_count']:.1%}, copied from training "
              f"{r['copies']:.1%}" + (f"; failures: {failures}" if failures else ""))
        for example in r["examples"]:
            print(f"  {example['text']}" + (f"   [{example['problem']}]"
                                             if example["problem"] else ""))
