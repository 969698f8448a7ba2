"""``tinylm check``: check a fill-in exercise (exercises/README.md).

Copy a stub from exercises/stubs/, write the function bodies, then

    tinylm check layernorm my_layernorm.py     run the exercise's checks on your file
    tinylm check --list                        the exercises, their chapters and functions

Each check runs on fixed float64 inputs: your forward against tinylm's, your backward
against finite differences of your forward and against tinylm's backward (the optimizer
exercise: your update step against tinylm's AdamW). The table gives each check's relative
error and tolerance; the last line says what to fix first. Exit status 0 when every check
passes, 1 when any fails, 2 for an unknown exercise. The checker is tinylm/exercises.py.
"""

from __future__ import annotations

import argparse
import sys

from tinylm.exercises import EXERCISES, check, get_exercise


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """EXERCISE FILE, or --list."""
    parser.add_argument("exercise", nargs="?", help="the exercise's name (see --list)")
    parser.add_argument("file", nargs="?", help="your copy of exercises/stubs/EXERCISE.py")
    parser.add_argument("--list", action="store_true", help="list the exercises and exit")


def list_exercises() -> str:
    lines = ["exercises (copy exercises/stubs/NAME.py, fill it in, run tinylm check NAME FILE):"]
    width = max(len(name) for name in EXERCISES) + 2
    for exercise in EXERCISES.values():
        lines.append(f"  {exercise.name:<{width}}chapter {exercise.chapter}  "
                     f"{exercise.summary}")
        lines.append(f"  {'':<{width}}writes {', '.join(exercise.functions)}")
    return "\n".join(lines)


def run(args) -> int:
    """Print the exercise's report; 0 only when every check passes."""
    if args.list:
        print(list_exercises())
        return 0
    if args.exercise is None or args.file is None:
        print("tinylm check: give an exercise and your file, e.g. tinylm check layernorm "
              f"my_layernorm.py (exercises: {', '.join(EXERCISES)}).", file=sys.stderr)
        return 2
    try:
        get_exercise(args.exercise)
    except KeyError as unknown:
        print(f"tinylm check: {unknown.args[0]}", file=sys.stderr)
        return 2
    report = check(args.exercise, args.file)
    print(report)
    return 0 if report.passed else 1
