"""Every functional backward against float64 central finite differences, on both kernel paths.

The inputs of each check are the ``gradcheck_cases()`` its module declares (the same cases
``tinylm gradcheck`` runs), so the suite and the command line can never drift apart.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import tinylm.functional as F
from tinylm.cli import main
from tinylm.commands.gradcheck import discover_cases
from tinylm.functional import (cross_entropy_backward, dropout_backward, embedding_backward,
                               gelu_backward, gru_recurrence_backward, layernorm_backward,
                               linear_backward, log_softmax_backward, lstm_recurrence_backward,
                               mse_backward, relu_backward, rnn_recurrence_backward,
                               sigmoid_backward, softmax_backward, tanh_backward)
from tinylm.gradcheck import GradcheckCase, check_gradients

CASES = discover_cases()
TOLERANCE = 1e-7

# Each backward, named, with the variants its cases must include.
REQUIRED_VARIANTS = {
    linear_backward: {"linear", "linear[no bias]", "linear[3-D input]"},
    sigmoid_backward: {"sigmoid"},
    tanh_backward: {"tanh"},
    relu_backward: {"relu"},
    gelu_backward: {"gelu[tanh]", "gelu[none]"},
    softmax_backward: {"softmax"},
    log_softmax_backward: {"log_softmax"},
    cross_entropy_backward: {"cross_entropy", "cross_entropy[ignore_index, 3-D]"},
    mse_backward: {"mse"},
    embedding_backward: {"embedding[repeated ids]"},
    layernorm_backward: {"layernorm"},
    dropout_backward: {"dropout"},
    # the time loops alone, from a given input projection (used by tinylm/nn/recurrent.py
    # when layer 0 reads an embedding table), with the initial states' gradients
    rnn_recurrence_backward: {"rnn_recurrence"},
    lstm_recurrence_backward: {"lstm_recurrence"},
    gru_recurrence_backward: {"gru_recurrence"},
}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_backward_matches_finite_differences(case, kernels):
    report = case.run(seed=0)
    assert report.tolerance <= TOLERANCE
    assert report.passed, f"kernels={kernels}\n{report}"
    assert {t.name for t in report.tensors}, "a case must check at least one tensor"


@pytest.mark.parametrize("backward", list(REQUIRED_VARIANTS), ids=lambda f: f.__name__)
def test_each_backward_is_checked_in_every_required_variant(backward):
    names = {c.name for c in CASES if c.backward is backward}
    missing = REQUIRED_VARIANTS[backward] - names
    assert not missing, f"{backward.__name__}: no case for {sorted(missing)}"


def test_every_backward_defined_in_tinylm_functional_has_a_case():
    defined = set()
    for info in pkgutil.iter_modules(F.__path__):
        module = importlib.import_module(f"tinylm.functional.{info.name}")
        defined |= {obj for name, obj in vars(module).items()
                    if name.endswith("_backward") and inspect.isfunction(obj)
                    and obj.__module__ == module.__name__}
    covered = {c.backward for c in CASES}
    missing = sorted(f"{f.__module__}.{f.__name__}" for f in defined - covered)
    assert not missing, f"add a GradcheckCase to the module's gradcheck_cases(): {missing}"


def test_a_wrong_backward_is_caught():
    def sigmoid_backward_missing_a_factor(dout, s):
        return dout * s                                 # forgot (1 - s)

    report = check_gradients(F.sigmoid_forward, sigmoid_backward_missing_a_factor,
                             {"x": np.linspace(-2, 2, 7)})
    assert not report.passed and report.max_rel_error > 0.1


def test_gradcheck_never_touches_the_callers_arrays_and_handles_any_memory_order(rng):
    W = np.asfortranarray(rng.standard_normal((3, 5)))      # not C-contiguous
    x = rng.standard_normal((4, 3))
    before = (W.copy(), x.copy())
    report = check_gradients(F.linear_forward, linear_backward, {"x": x, "W": W, "b": None},
                             tolerance=TOLERANCE)
    assert report.passed, str(report)
    np.testing.assert_array_equal(W, before[0])
    np.testing.assert_array_equal(x, before[1])


def test_report_is_a_readable_table():
    text = str(CASES[0].run())
    assert "rel err" in text and "yes" in text


@pytest.mark.parametrize("mode", ["auto", "reference"])
def test_tinylm_gradcheck_command_passes(mode, capsys):
    # Every case already ran above; the command is exercised on the kernel-backed pairs.
    only = ["--only", "cross_entropy", "--only", "embedding", "--only", "layernorm"]
    assert main(["gradcheck", "--kernels", mode, *only]) == 0
    out = capsys.readouterr().out
    assert "5/5 cases passed" in out and f"kernels={mode}" in out


def test_tinylm_gradcheck_only_selects_a_pair_and_all_its_variants(capsys):
    assert main(["gradcheck", "--only", "gelu"]) == 0
    assert "2/2 cases passed" in capsys.readouterr().out


def test_tinylm_gradcheck_rejects_an_unknown_name(capsys):
    assert main(["gradcheck", "--only", "no_such_pair"]) == 2
    assert "no_such_pair" in capsys.readouterr().err


def test_tinylm_gradcheck_exits_1_when_a_case_fails(monkeypatch, capsys):
    broken = GradcheckCase("sigmoid[broken]", F.sigmoid_forward, lambda dout, s: dout * s,
                           lambda rng: {"x": rng.standard_normal(5)})
    monkeypatch.setattr("tinylm.commands.gradcheck.discover_cases", lambda: [broken])
    assert main(["gradcheck"]) == 1
    assert "FAILED: sigmoid[broken]" in capsys.readouterr().out
