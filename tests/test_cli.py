"""The command line end to end on real data: train, resume, evaluate, generate, gradcheck."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tinylm.cli import main


def _tinylm(*args, check=True):
    """Run `python -m tinylm ...` in a subprocess, as a user would."""
    done = subprocess.run([sys.executable, "-m", "tinylm", *args], capture_output=True, text=True,
                          timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"tinylm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    pytest.importorskip("tinylm.data")
    out = tmp_path_factory.mktemp("run")
    _tinylm("train", "mlp", "--preset", "shakespeare-char-mlp", "--out-dir", str(out),
            "--max-iters", "30", "--eval-interval", "15", "--eval-iters", "3",
            "--progress", "false", "--model", "n_hidden=64")
    return out


def test_train_writes_checkpoint_and_plot(trained_run):
    meta = json.loads((trained_run / "ckpt.json").read_text())
    for name in (meta["arrays"], "ckpt.json", "loss.png"):
        assert (trained_run / name).exists(), name
    assert meta["model"] == "mlp" and meta["model_config"]["n_hidden"] == 64
    assert meta["run"]["iteration"] == 30


def test_resume_extends_a_finished_run(trained_run):
    done = _tinylm("train", "mlp", "--resume", "--out-dir", str(trained_run), "--max-iters", "45",
                   "--progress", "false")
    assert "resumed from" in done.stdout
    assert json.loads((trained_run / "ckpt.json").read_text())["run"]["iteration"] == 45


def test_generate_is_seeded(trained_run):
    args = ("generate", str(trained_run), "--prompt", "ROMEO:", "--max-new-tokens", "40",
            "--seed", "7", "--temperature", "0.8", "--top-k", "20")
    first, second = _tinylm(*args).stdout, _tinylm(*args).stdout
    assert first == second and first.startswith("ROMEO:") and len(first) >= 40


def test_eval_reports_perplexity(trained_run):
    assert "perplexity" in _tinylm("eval", str(trained_run)).stdout


def test_unknown_command_and_bad_flags_fail_clearly(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err
    done = _tinylm("train", "mlp", "--preset", "no-such-preset", check=False)
    assert done.returncode != 0 and "unknown preset" in done.stderr


def test_missing_dataset_names_the_fix(tmp_path):
    done = _tinylm("train", "mlp", "--dataset", "no-such-dataset", "--out-dir", str(tmp_path),
                   check=False)
    assert done.returncode != 0 and "no-such-dataset" in done.stderr
