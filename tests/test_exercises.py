"""The fill-in exercises (exercises/) and their checker, ``tinylm check`` (tinylm/exercises.py).

Every reference solution passes and every stub fails. The stubs are expected failures, and
each test asserts the failure it expects: exit status 1, and rows that say "not written yet".
pytest's ``xfail`` is not used, because it would also accept a failure of the wrong kind. A
crash inside the checker, for instance, would xfail just as quietly as an unwritten stub.
The other tests feed the checker broken solutions and check that the report points at the
broken part.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from cli_helpers import run_cli

from tinylm.exercises import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
STUBS, SOLUTIONS = ROOT / "exercises" / "stubs", ROOT / "exercises" / "solutions"
NAMES = list(EXERCISES)


FUNCTIONS = {function for exercise in EXERCISES.values() for function in exercise.functions}


def _rows(out: str) -> dict:
    """The report's rows: check -> result, e.g. 'layernorm_forward: y vs tinylm' -> 'PASS'."""
    rows = {}
    for line in out.splitlines():
        check, _, rest = line.strip().partition("  ")
        if line.startswith("  ") and check.split(":")[0] in FUNCTIONS:
            _rel_error, _tolerance, result = rest.split(maxsplit=2)
            rows[check] = result
    return rows


def _solution_changed(tmp_path, name: str, old: str, new: str) -> Path:
    """A copy of the solution of ``name`` with ``old`` (which must occur once) made ``new``."""
    source = (SOLUTIONS / f"{name}.py").read_text(encoding="utf-8")
    assert source.count(old) == 1, f"{old!r} must occur exactly once in solutions/{name}.py"
    path = tmp_path / f"my_{name}.py"
    path.write_text(source.replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", NAMES)
def test_every_reference_solution_passes(name, capsys):
    status, out, _ = run_cli(["check", name, str(SOLUTIONS / f"{name}.py")], capsys)
    rows = _rows(out)
    assert status == 0, out
    assert rows and set(rows.values()) == {"PASS"}, out
    assert out.strip().splitlines()[-1].startswith("PASSED:")


@pytest.mark.parametrize("name", NAMES)
def test_every_stub_fails_as_not_written_yet(name, capsys):
    status, out, err = run_cli(["check", name, str(STUBS / f"{name}.py")], capsys)
    assert status == 1, out + err
    rows = _rows(out)
    assert "not written yet" in out and "Traceback" not in out + err
    assert rows and "PASS" not in rows.values(), out
    assert out.strip().splitlines()[-1].startswith("NOT DONE: 0/")


def _functions(path: Path) -> dict:
    """name -> (parameters with defaults, docstring) of each top-level function."""
    functions = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = (ast.unparse(node.args), ast.get_docstring(node))
    return functions


@pytest.mark.parametrize("name", NAMES)
def test_stub_and_solution_agree_on_functions_signatures_and_docstrings(name):
    stub, solution = _functions(STUBS / f"{name}.py"), _functions(SOLUTIONS / f"{name}.py")
    assert stub == solution
    for function, params in EXERCISES[name].functions.items():
        assert function in stub, f"stubs/{name}.py lacks {function}"
        assert tuple(p.split("=")[0] for p in stub[function][0].split(", ")) == params


def test_every_exercise_is_in_the_readme_and_every_file_is_an_exercise():
    readme = (ROOT / "exercises" / "README.md").read_text(encoding="utf-8")
    assert all(f"| `{name}` |" in readme for name in NAMES)
    assert {p.stem for p in STUBS.glob("*.py")} == set(NAMES)
    assert {p.stem for p in SOLUTIONS.glob("*.py")} == set(NAMES)


def test_a_flipped_sign_in_a_backward_fails_on_its_own_rows(tmp_path, capsys):
    path = _solution_changed(tmp_path, "layernorm", "dbeta = dy.sum(axis=0)",
                             "dbeta = -dy.sum(axis=0)")
    status, out, _ = run_cli(["check", "layernorm", str(path)], capsys)
    rows = _rows(out)
    assert status == 1
    failing = {check for check, result in rows.items() if result == "FAIL"}
    assert failing == {"layernorm_backward: dbeta vs finite differences",
                       "layernorm_backward: dbeta vs tinylm"}, out
    assert "wrong dbeta" in out.strip().splitlines()[-1]


def test_the_classic_embedding_bug_is_caught(tmp_path, capsys):
    path = _solution_changed(tmp_path, "embedding",
                             "np.add.at(dW, ids.reshape(-1), dout.reshape(-1, D))",
                             "dW[ids.reshape(-1)] += dout.reshape(-1, D)")
    status, out, _ = run_cli(["check", "embedding", str(path)], capsys)
    rows = _rows(out)
    assert status == 1
    assert rows["embedding_forward: out vs tinylm"] == "PASS"
    assert rows["embedding_backward: dW vs finite differences"] == "FAIL", out


def test_adam_without_bias_correction_fails_on_the_weights_only(tmp_path, capsys):
    path = _solution_changed(tmp_path, "adam", "m_hat = m / (1.0 - beta1 ** t)", "m_hat = m")
    status, out, _ = run_cli(["check", "adam", str(path)], capsys)
    rows = _rows(out)
    assert status == 1 and len(rows) == 8
    assert {c for c, r in rows.items() if r == "FAIL"} == \
        {c for c in rows if c.startswith("adamw_step: param")}, out


def test_adam_with_eps_inside_the_square_root_fails(tmp_path, capsys):
    path = _solution_changed(tmp_path, "adam", "(np.sqrt(v_hat) + eps)", "np.sqrt(v_hat + eps)")
    status, out, _ = run_cli(["check", "adam", str(path)], capsys)
    assert status == 1
    assert _rows(out)["adamw_step: param after step 5 (eps=1e-3, no decay)"] == "FAIL", out


def test_a_backward_not_written_yet_is_named_and_the_forward_still_checked(tmp_path, capsys):
    source = (SOLUTIONS / "layernorm.py").read_text(encoding="utf-8")
    body = source[source.index("    xhat, rstd, gamma = cache"):]
    path = tmp_path / "half.py"
    path.write_text(source.replace(body, '    raise NotImplementedError("later")\n'))
    status, out, _ = run_cli(["check", "layernorm", str(path)], capsys)
    rows = _rows(out)
    assert status == 1
    assert rows.pop("layernorm_forward: y vs tinylm") == "PASS"
    assert set(rows.values()) == {"not written yet: layernorm_backward"}, out
    assert "write layernorm_backward next" in out.strip().splitlines()[-1]


def test_an_error_in_the_students_code_shows_its_message_and_line(tmp_path, capsys):
    path = _solution_changed(tmp_path, "attention", "    dv = p.swapaxes(-1, -2) @ dout",
                             "    dv = p @ dout[..., :1, :].T")
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if "dout[..., :1, :].T" in text)
    status, out, err = run_cli(["check", "attention", str(path)], capsys)
    assert status == 1 and "Traceback" not in out + err
    assert "error in causal_attention_backward" in out
    assert f"at {path.name}, line {line}: dv = p @ dout[..., :1, :].T" in out
    assert "causal_attention_backward raised ValueError" in out


def test_missing_functions_and_wrong_signatures_are_named(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text("def layernorm_forward(x, gamma):\n    return x, None\n")
    status, _, err = run_cli(["check", "layernorm", str(path)], capsys)
    assert status == 1
    assert "missing function layernorm_backward(dy, cache)" in err
    assert "cannot be called as layernorm_forward(x, gamma, beta, eps)" in err


def test_a_file_that_does_not_load_says_why(tmp_path, capsys):
    path = tmp_path / "broken.py"
    path.write_text("import numpy as np\n\ndef linear_forward(x, W, b)\n")
    status, _, err = run_cli(["check", "linear", str(path)], capsys)
    assert status == 1 and "broken.py, line 3" in err and "syntax" in err


def test_an_unknown_exercise_lists_the_known_ones(capsys):
    status, _, err = run_cli(["check", "no_such_exercise", "mine.py"], capsys)
    assert status == 2
    assert "no_such_exercise" in err and all(name in err for name in NAMES)


def test_list_shows_every_exercise_with_its_chapter(capsys):
    status, out, _ = run_cli(["check", "--list"], capsys)
    assert status == 0
    for exercise in EXERCISES.values():
        assert exercise.name in out and f"chapter {exercise.chapter}" in out


def test_the_check_leaves_the_kernel_setting_as_it_found_it(monkeypatch, capsys):
    monkeypatch.setenv("TINYLM_KERNELS", "auto")
    run_cli(["check", "linear", str(SOLUTIONS / "linear.py")], capsys)
    assert os.environ["TINYLM_KERNELS"] == "auto"
