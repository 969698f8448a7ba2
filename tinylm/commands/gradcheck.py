"""``tinylm gradcheck``: the library's own gradient-check suite.

Every hand-written backward in tinylm is checked against central finite differences in
float64 (tinylm/gradcheck.py explains the method and the relative error it reports).

The suite is data. A module of one of the packages in ``CASE_PACKAGES`` that defines

    def gradcheck_cases():
        return [GradcheckCase("name[variant]", foo_forward, foo_backward,
                              lambda rng: {"x": rng.standard_normal((3, 4))}), ...]

is discovered automatically; its cases run here and in tests/test_functional_gradcheck.py.
To cover a new pair, write its ``gradcheck_cases()`` next to it; to cover a new package, add
its name to ``CASE_PACKAGES``.

    tinylm gradcheck                       every case, numba kernels where available
    tinylm gradcheck --only layernorm      one pair (all its variants); repeatable
    tinylm gradcheck --kernels reference   force the plain array-module kernels

Exit status 0 when every case passes, 1 when any fails. Chapter 03, "Checking gradients".
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time

from tinylm.backend import KERNEL_ENV_VAR

CASE_PACKAGES = ("tinylm.functional",)
KERNEL_CHOICES = ("auto", "reference")


def discover_cases(packages=CASE_PACKAGES) -> list:
    """Every ``GradcheckCase`` declared by a ``gradcheck_cases()`` in the packages' modules."""
    cases = []
    for package_name in packages:
        package = importlib.import_module(package_name)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{package_name}.{info.name}")
            if hasattr(module, "gradcheck_cases"):
                cases.extend(module.gradcheck_cases())
    return cases


def select_cases(cases: list, only) -> list:
    """Keep the cases named (exactly, or by the pair's name before any ``[variant]``)."""
    if not only:
        return cases
    chosen = [c for c in cases if c.name in only or c.base_name in only]
    unknown = sorted(set(only) - {c.name for c in cases} - {c.base_name for c in cases})
    if unknown:
        names = sorted({c.base_name for c in cases})
        raise ValueError(f"gradcheck: no case named {unknown}; known pairs: {names}.")
    return chosen


def run_cases(cases: list, kernels: str = "auto", seed: int = 0) -> list:
    """Run the cases with ``$TINYLM_KERNELS`` set to ``kernels``; returns their reports."""
    saved = os.environ.get(KERNEL_ENV_VAR)
    os.environ[KERNEL_ENV_VAR] = kernels
    try:
        return [case.run(seed) for case in cases]
    finally:
        if saved is None:
            del os.environ[KERNEL_ENV_VAR]
        else:
            os.environ[KERNEL_ENV_VAR] = saved


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--only``, ``--kernels`` and ``--seed``."""
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this pair or case (repeatable), e.g. --only layernorm")
    parser.add_argument("--kernels", choices=KERNEL_CHOICES, default="auto",
                        help="'reference' forces the plain array-module kernels")
    parser.add_argument("--seed", type=int, default=0, help="seed of inputs and upstream gradients")


def run(args) -> int:
    """Run the selected cases and print their reports; 1 when any fails."""
    try:
        cases = select_cases(discover_cases(), args.only)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    start = time.perf_counter()
    reports = run_cases(cases, args.kernels, args.seed)
    for report in reports:
        print(report, end="\n\n")
    failed = [r.title for r in reports if not r.passed]
    worst = max((r.max_rel_error for r in reports), default=0.0)
    print(f"gradcheck: {len(reports) - len(failed)}/{len(reports)} cases passed "
          f"(kernels={args.kernels}, worst relative error {worst:.1e}, "
          f"{time.perf_counter() - start:.1f} s)")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0
