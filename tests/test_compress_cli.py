"""``tinylm prune`` and ``tinylm distill`` on a tiny trained GPT run, and ``tinylm eval`` and
``tinylm generate`` on what they write; the errors a user can cause."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinylm.cli import main
from tinylm.train.restore import read_run

from cli_helpers import run_cli

TINY = ["--model", "n_layer=1", "--model", "n_embd=16", "--model", "n_head=2",
        "--model", "block_size=16", "--batch-size", "4", "--eval-iters", "2",
        "--progress", "false"]


def _student_preset(**model):
    return {"model": "gpt",
            "model_config": {"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 8,
                             "dropout": 0.0, **model},
            "train": {"dataset": "tinyshakespeare", "tokenizer": "char", "batch_size": 4,
                      "max_iters": 3, "eval_interval": 3, "eval_iters": 2, "lr": 1e-3,
                      "grad_clip": 1.0, "out_dir": "unused"}}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    pytest.importorskip("tinylm.data")
    out = tmp_path_factory.mktemp("teacher")
    assert main(["train", "gpt", "--preset", "shakespeare-char-student", *TINY,
                 "--max-iters", "4", "--eval-interval", "4", "--out-dir", str(out)]) == 0
    return out


def _usable(run, capsys):
    """``tinylm eval`` and ``tinylm generate`` work on ``run``."""
    status, out, err = run_cli(["eval", str(run), "--batch-size", "4096"], capsys)
    assert status == 0 and "perplexity" in out, err
    status, out, err = run_cli(["generate", str(run), "--prompt", "KING:",
                                "--max-new-tokens", "12"], capsys)
    assert status == 0 and out.startswith("KING:") and len(out) >= 17, err


@pytest.mark.parametrize("structure", [[], ["--structured", "heads"],
                                       ["--structured", "neurons"]])
def test_prune_writes_a_run_that_eval_and_generate_read(structure, teacher, tmp_path, capsys):
    out = tmp_path / "pruned"
    status, text, err = run_cli(["prune", str(teacher), "--sparsity", "0.5", *structure,
                                 "--finetune", "3", "--out", str(out)], capsys)
    assert status == 0, err
    assert "after 3 recovery steps" in text
    arrays, meta = read_run(out)
    record = meta["provenance"]["pruning"]
    assert record["kind"] == (structure[1] if structure else "magnitude")
    zero_share = {"magnitude": 0.5, "heads": 4 / 24, "neurons": 8 / 24}   # of 12 D^2 per block
    assert record["weight_sparsity"] == pytest.approx(zero_share[record["kind"]])
    assert [e["iter"] for e in meta["run"]["evals"]] == [0, 3]
    if structure == ["--structured", "heads"]:                 # 1 of 2 heads, still zero
        w_out = arrays["model/h.0.attn.c_proj.weight"]
        assert (np.abs(w_out).sum(axis=1) == 0).sum() == 8
    _usable(out, capsys)


def test_prune_without_finetuning_and_the_refusal_to_overwrite(teacher, tmp_path, capsys):
    out = tmp_path / "pruned"
    argv = ["prune", str(teacher), "--sparsity", "0.2", "--out", str(out)]
    assert run_cli(argv, capsys)[0] == 0
    record = read_run(out)[1]["provenance"]["pruning"]
    assert record["val_loss_finetuned"] is None
    assert record["weight_sparsity"] == pytest.approx(0.2, abs=1e-3)
    status, _, err = run_cli(argv, capsys)
    assert status == 1 and "already holds a checkpoint" in err


@pytest.mark.parametrize("argv, message", [
    (["--sparsity", "1"], "sparsity"),
    (["--sparsity", "-0.5"], "sparsity"),
    (["--sparsity", "0.5", "--structured", "layers"], "invalid choice"),
])
def test_prune_refuses_bad_flags(argv, message, teacher, tmp_path, capsys):
    status, _, err = run_cli(["prune", str(teacher), *argv, "--out", str(tmp_path / "p")],
                             capsys)
    assert status == 2 and message in err


def test_distill_writes_a_student_run_that_eval_and_generate_read(teacher, tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.setattr("tinylm.commands.distill.get_preset", lambda name: _student_preset())
    out = tmp_path / "student"
    status, text, err = run_cli(["distill", str(teacher), "--preset", "tiny-student",
                                 "--out-dir", str(out), "--temperature", "2"], capsys)
    assert status == 0, err
    meta = json.loads((out / "ckpt.json").read_text())
    assert meta["model"] == "gpt" and meta["model_config"]["n_embd"] == 8
    assert meta["provenance"]["distillation"] == {"teacher": str(teacher), "temperature": 2.0,
                                                  "alpha": 0.5}
    assert meta["run"]["iteration"] == 3 and "val loss" in text
    _usable(out, capsys)


@pytest.mark.parametrize("preset, message", [
    (_student_preset(block_size=32), "teacher reads at most 16"),
    ({**_student_preset(), "train": {**_student_preset()["train"], "tokenizer": "word"}},
     "teacher's tokenizer"),
])
def test_distill_refuses_a_teacher_that_does_not_fit_the_student(preset, message, teacher,
                                                                 tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("tinylm.commands.distill.get_preset", lambda name: preset)
    status, _, err = run_cli(["distill", str(teacher), "--preset", "x",
                              "--out-dir", str(tmp_path / "s")], capsys)
    assert status == 1 and message in err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("flag", [["--temperature", "0"], ["--temperature", "-2"],
                                  ["--alpha", "1.5"]])
def test_distill_refuses_a_bad_temperature_or_alpha(flag, teacher, tmp_path, capsys):
    status, _, err = run_cli(["distill", str(teacher), "--preset", "shakespeare-char-student",
                              *flag, "--out-dir", str(tmp_path / "s")], capsys)
    assert status == 2 and flag[0].lstrip("-") in err
