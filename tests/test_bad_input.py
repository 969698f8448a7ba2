"""The bad-input suite: what a careless user can do to the command line, and what must happen.

Every case runs ``tinylm`` in-process (``tinylm.cli.main``, the one error boundary) and
checks four things: a non-zero exit status (2 for a usage error caught by the parser, 1 for
every other error), no Python traceback, at most three lines on stderr, and a message that
names the problem (``expect``, a regular expression). Cases that could lose data also check
that the trained checkpoint in the folder is byte-for-byte what it was.

The cases are grouped by fault class: flags out of range, contradictory flags, a run folder
that holds a trained model, damaged or edited checkpoints (including forgeries that get past
the checksums, to reach the checks behind them), bad data, and the error boundary itself.
New commands and model families add their cases to these tables.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinylm.checkpoint import load_checkpoint, save_checkpoint
from tinylm.cli import main

TINY = {"mlp": ["--model", "n_hidden=16", "--model", "n_embd=4"],
        "lstm": ["--model", "n_hidden=8", "--model", "n_embd=8", "--block-size", "8"],
        "gru": ["--model", "n_hidden=8", "--model", "n_embd=8", "--block-size", "8"],
        "rnn": ["--model", "n_hidden=8", "--model", "n_embd=8", "--block-size", "8"],
        "gpt": ["--model", "n_layer=1", "--model", "n_embd=8", "--model", "n_head=2",
                "--model", "block_size=8"],
        "ngram": ["--model", "order=2"]}
FAST = ["--max-iters", "4", "--eval-interval", "2", "--eval-iters", "1", "--batch-size", "4",
        "--progress", "false"]


def _run(argv, capsys):
    """-> (exit status, stderr) of ``tinylm ARGV``."""
    try:
        status = main(argv)
    except SystemExit as stop:                  # argparse's usage errors
        status = stop.code
    return status, capsys.readouterr().err


def _fingerprint(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.name.startswith("ckpt")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained run per model family, trained through the command line."""
    root = tmp_path_factory.mktemp("runs")
    for family, flags in TINY.items():
        status = main(["train", family, "--out-dir", str(root / family), *FAST, *flags])
        assert status == 0, family
    return root


@pytest.fixture
def run_copy(runs, tmp_path):
    """A fresh copy of a family's run, to damage: run_copy("mlp") -> its folder."""
    def copy(family="mlp"):
        target = tmp_path / family
        shutil.copytree(runs / family, target)
        return target
    return copy


def _assert_clean_error(status, err, expect, usage=False):
    assert status == (2 if usage else 1), err
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) <= 3, err
    assert re.search(expect, err), f"{expect!r} not in:\n{err}"


# -- 1. flags out of range, refused by the parser ---------------------------------------------

USAGE_ERRORS = [
    (["train", "mlp", "--max-iters", "-5"], "max-iters.*>= 0"),
    (["train", "mlp", "--eval-interval", "0"], "eval-interval.*>= 1"),
    (["train", "mlp", "--eval-interval", "-1"], "eval-interval.*>= 1"),
    (["train", "mlp", "--batch-size", "0"], "batch-size.*>= 1"),
    (["train", "mlp", "--block-size", "0"], "block-size.*>= 1"),
    (["train", "mlp", "--lr", "nan"], "lr.*finite"),
    (["train", "mlp", "--lr", "-1"], "lr.*>= 0"),
    (["train", "mlp", "--grad-clip", "inf"], "grad-clip.*finite"),
    (["train", "mlp", "--val-fraction", "1.5"], "val-fraction.*between 0 and 1"),
    (["train", "mlp", "--momentum", "1"], "momentum.*\\[0, 1\\)"),
    (["train", "mlp", "--dtype", "float16"], "dtype.*'float32', 'float64'"),
    (["train", "mlp", "--device", "tpu"], "device.*'cpu', 'gpu'"),
    (["train", "mlp", "--optimizer", "lion"], "optimizer.*'adamw'"),
    (["train", "mlp", "--schedule", "linear"], "schedule.*'cosine'"),
    (["train", "mlp", "--max-iters", "ten"], "'ten' is not a valid int"),
    (["train", "mlp", "--progress", "maybe"], "not a boolean"),
    (["train", "mlp", "--seed", "-1"], "seed.*>= 0"),
    (["train", "mlp", "--resume", "--overwrite"], "not allowed with"),
    (["train", "transformer"], "invalid choice"),
    (["generate", "x", "--max-new-tokens", "-5"], "max-new-tokens.*>= 1"),
    (["generate", "x", "--max-new-tokens", "0"], "max-new-tokens.*>= 1"),
    (["generate", "x", "--temperature", "nan"], "temperature.*finite"),
    (["generate", "x", "--temperature", "-1"], "temperature.*>= 0"),
    (["generate", "x", "--top-k", "0"], "top-k.*>= 1"),
    (["generate", "x", "--top-p", "1.5"], "top-p.*\\(0, 1\\]"),
    (["generate", "x", "--top-p", "0"], "top-p.*\\(0, 1\\]"),
    (["generate", "x", "--seed", "-3"], "seed.*>= 0"),
    (["generate", "x", "--device", "tpu"], "invalid choice"),
    (["eval", "x", "--batch-size", "0"], "batch-size.*>= 1"),
    (["eval", "x", "--split", "train"], "invalid choice"),
]


@pytest.mark.parametrize("argv, expect", USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_flags_out_of_range_are_usage_errors(argv, expect, capsys):
    _assert_clean_error(*_run(argv, capsys), expect, usage=True)


# -- 2. settings that are wrong together, or wrong for the model --------------------------------

SETTING_ERRORS = [
    (["train", "mlp", "--model", "vocab_size=10"], "vocab_size cannot be set"),
    (["train", "mlp", "--model", "n_hidden=abc"], "n_hidden must be int, got 'abc'"),
    (["train", "mlp", "--model", "n_hidden"], "expects KEY=VALUE"),
    (["train", "mlp", "--model", "width=64"], "unknown configuration keys \\['width'\\]"),
    (["train", "mlp", "--model", "hidden=64"], "renamed \\('hidden' -> 'n_hidden'\\)"),
    (["train", "mlp", "--model", "dropout=1.5"], "dropout=1.5 must lie in \\[0, 1\\)"),
    (["train", "mlp", "--model", "dropout=nan"], "dropout must be float, got 'nan'"),
    (["train", "mlp", "--model", "dropout=1e999"], "dropout must be a finite number"),
    (["train", "gpt", "--model", "n_head=3", "--model", "n_embd=8"], "n_head"),
    (["train", "gpt", "--block-size", "1000"], "longer than the model's block_size"),
    (["train", "lstm"], "no fixed context.*--block-size"),
    (["train", "mlp", "--epochs", "2"], "sequential"),
    (["train", "lstm", "--preset", "ptb-small", "--max-iters", "5"],
     "--max-iters has no effect.*epochs=13"),
    (["train", "lstm", "--preset", "shakespeare-char-mlp"], "is for model 'mlp'"),
    (["train", "mlp", "--preset", "no-such-preset"], "unknown preset"),
    (["train", "mlp", "--dataset", "no-such-dataset"], "unknown dataset 'no-such-dataset'"),
    (["train", "mlp", "--betas", "0.9"], "betas.*two numbers"),
    (["train", "mlp", "--resume"], "--resume needs --out-dir"),
    (["generate", "x", "--greedy", "--temperature", "0.5"], "--greedy .* --temperature"),
    (["generate", "x", "--greedy", "--top-k", "5"], "--greedy .* --top-k"),
    (["generate", "x", "--greedy", "--top-p", "0.9"], "--greedy .* --top-p"),
]


@pytest.mark.parametrize("argv, expect", SETTING_ERRORS,
                         ids=[" ".join(a) for a, _ in SETTING_ERRORS])
def test_wrong_settings_are_one_line_errors(argv, expect, capsys, tmp_path):
    if argv[0] == "train" and "--resume" not in argv:
        argv = [*argv, "--out-dir", str(tmp_path / "new"), *FAST]
    _assert_clean_error(*_run(argv, capsys), expect)
    assert not (tmp_path / "new").exists()       # nothing is written before validation


# -- 3. a folder that holds a trained model: never lost --------------------------------------

@pytest.mark.parametrize("family", sorted(TINY))
def test_rerunning_into_a_trained_folder_refuses_and_keeps_the_model(family, run_copy, capsys):
    folder = run_copy(family)
    before = _fingerprint(folder)
    status, err = _run(["train", family, "--out-dir", str(folder), *FAST, *TINY[family]], capsys)
    _assert_clean_error(status, err, "already holds a checkpoint.*--resume.*--overwrite")
    assert _fingerprint(folder) == before


FAILED_RUNS_INTO_A_TRAINED_FOLDER = [
    (["--overwrite", "--dataset", "timemachine", "--model", "nosuch=1"], "unknown configuration"),
    (["--overwrite", "--dataset", "no-such-dataset"], "unknown dataset"),
    (["--overwrite", "--model", "n_embd=0"], "n_embd=0 must be an integer >= 1"),
    (["--resume", "--batch-size", "5"], "batcher state was saved for different"),
    (["--resume", "--dataset", "timemachine"], "trained on 'tinyshakespeare'"),
    (["--resume", "--model", "n_hidden=32"], "--model cannot change the model of a resumed"),
]


@pytest.mark.parametrize("flags, expect", FAILED_RUNS_INTO_A_TRAINED_FOLDER,
                         ids=[" ".join(f) for f, _ in FAILED_RUNS_INTO_A_TRAINED_FOLDER])
def test_a_failing_command_leaves_the_trained_folder_as_it_was(flags, expect, run_copy, capsys):
    folder = run_copy("mlp")
    before = _fingerprint(folder)
    status, err = _run(["train", "mlp", "--out-dir", str(folder), *FAST, *flags], capsys)
    _assert_clean_error(status, err, expect)
    assert _fingerprint(folder) == before


def test_resuming_another_family_or_an_empty_folder_is_refused(run_copy, capsys, tmp_path):
    folder = run_copy("mlp")
    _assert_clean_error(*_run(["train", "gpt", "--resume", "--out-dir", str(folder)], capsys),
                        "holds a 'mlp' run, not 'gpt'")
    _assert_clean_error(*_run(["train", "mlp", "--resume", "--out-dir", str(tmp_path / "e")],
                              capsys), "holds no checkpoint to continue")


def test_resume_stays_in_the_folder_it_was_given(run_copy, capsys, tmp_path):
    """A checkpoint moved from elsewhere names another out_dir in its JSON: resuming it
    writes where it now is, not there."""
    folder = run_copy("mlp")
    elsewhere = tmp_path / "elsewhere"
    _forge(folder, lambda meta, arrays: meta["train_config"].update(out_dir=str(elsewhere)))
    assert main(["train", "mlp", "--resume", "--out-dir", str(folder), "--max-iters", "6"]) == 0
    assert not elsewhere.exists()
    assert load_checkpoint(folder / "ckpt")[1]["run"]["iteration"] == 6


def test_a_diverging_run_stops_with_one_line_and_saves_nothing_bad(tmp_path, capsys):
    folder = tmp_path / "diverged"
    status, err = _run(["train", "mlp", "--out-dir", str(folder), *FAST, "--max-iters", "20",
                        "--eval-interval", "5", "--lr", "1e12", *TINY["mlp"]], capsys)
    _assert_clean_error(status, err, "diverged")
    meta = load_checkpoint(folder / "ckpt")[1]          # the last good one still loads
    assert all(np.isfinite(e["val_loss"]) for e in meta["run"]["evals"])


# -- 4. damaged, edited and forged checkpoints ------------------------------------------------

def _forge(folder: Path, edit) -> None:
    """Rewrite the checkpoint with ``edit(meta, arrays)`` applied and valid checksums: what an
    edit by a program that knows the format looks like, to reach the checks behind them."""
    arrays, meta = load_checkpoint(folder / "ckpt")
    edit(meta, arrays)
    save_checkpoint(folder / "ckpt", arrays, meta)


def _edit_json(folder: Path, edit) -> None:
    path = folder / "ckpt.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _arrays_path(folder: Path) -> Path:
    return folder / json.loads((folder / "ckpt.json").read_text())["arrays"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


DAMAGE = {
    "no ckpt.json": (lambda f: (f / "ckpt.json").unlink(), "no checkpoint in"),
    "ckpt.json not JSON": (lambda f: (f / "ckpt.json").write_text("{oops"), "strict JSON"),
    "ckpt.json empty": (lambda f: (f / "ckpt.json").write_text(""), "strict JSON"),
    "ckpt.json a list": (lambda f: (f / "ckpt.json").write_text("[1]"), "not an object"),
    "bare NaN in ckpt.json": (
        lambda f: (f / "ckpt.json").write_text((f / "ckpt.json").read_text().replace(
            '"elapsed_s": ', '"elapsed_s": NaN, "x": ', 1)), "strict JSON"),
    "edited n_hidden": (lambda f: _edit_json(f, lambda m: m["model_config"].update(n_hidden=8)),
                        "edited or damaged"),
    "meta_sha256 deleted": (lambda f: _edit_json(f, lambda m: m.pop("meta_sha256")),
                            "edited or damaged"),
    "arrays_sha256 deleted": (lambda f: _edit_json(f, lambda m: m.pop("arrays_sha256")),
                              "edited or damaged"),
    "edited vocabulary": (lambda f: _edit_json(
        f, lambda m: m["provenance"]["tokenizer"]["chars"].pop()), "edited or damaged"),
    "array file truncated": (lambda f: _truncate(_arrays_path(f)), "sha256"),
    "array file deleted": (lambda f: _arrays_path(f).unlink(), "is missing"),
    "array file replaced": (lambda f: np.savez(_arrays_path(f), x=np.zeros(2)), "sha256"),
    "format 1 layout": (lambda f: _edit_json(f, lambda m: m.update(format=1)), "format-1"),
    "forged: field 'model' missing": (lambda f: _forge(f, lambda m, a: m.pop("model")),
                                      "field 'model' is missing"),
    "forged: model_config a list": (lambda f: _forge(f, lambda m, a: m.update(model_config=[])),
                                    "'model_config' must be a JSON object"),
    "forged: unknown family": (lambda f: _forge(f, lambda m, a: m.update(model="tcn")),
                               "family 'tcn' is unknown"),
    "forged: n_hidden a string": (
        lambda f: _forge(f, lambda m, a: m["model_config"].update(n_hidden="16")),
        "n_hidden must be int, got '16'"),
    "forged: train setting mistyped": (
        lambda f: _forge(f, lambda m, a: m["train_config"].update(batch_size=[4])),
        "batch_size must be int"),
    "forged: no tokenizer": (lambda f: _forge(f, lambda m, a: m["provenance"].pop("tokenizer")),
                             "records no tokenizer"),
    "forged: tokenizer of another size": (
        lambda f: _forge(f, lambda m, a: m["provenance"]["tokenizer"]["chars"].pop()),
        "65 output classes but its tokenizer 64"),
    "forged: NaN weights": (
        lambda f: _forge(f, lambda m, a: a["model/w_out"].fill(np.nan)), "NaN or infinite"),
    "forged: tensor of another shape": (
        lambda f: _forge(f, lambda m, a: a.update({"model/w_out": np.zeros((3, 3))})),
        "w_out"),
    "forged: tensor missing": (lambda f: _forge(f, lambda m, a: a.pop("model/b_out")), "b_out"),
    "forged: integer tensor": (
        lambda f: _forge(f, lambda m, a: a.update({"model/b_out": a["model/b_out"].astype(int)})),
        "b_out"),
}


@pytest.mark.parametrize("command", ["generate", "eval"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_checkpoint_is_refused_with_the_reason(damage, command, run_copy, capsys):
    folder = run_copy("mlp")
    do_damage, expect = DAMAGE[damage]
    do_damage(folder)
    args = [command, str(folder)] + (["--max-new-tokens", "5"] if command == "generate" else [])
    _assert_clean_error(*_run(args, capsys), expect)


RESUME_DAMAGE = {
    "optimizer buffer of another shape": (
        lambda m, a: a.update({"optim/exp_avg.0": np.zeros(7, dtype=a["optim/exp_avg.0"].dtype)}),
        "exp_avg.0"),
    "optimizer step count negative": (lambda m, a: a.update({"optim/step": np.array(-1)}),
                                      "step"),
    "batcher state missing": (lambda m, a: m.pop("batcher"), "batcher"),
    "batcher position mistyped": (lambda m, a: m["batcher"].update(bit_generator="x"),
                                  "bit_generator|generator"),
    "generator states of another model": (lambda m, a: m.update(rng={"dropout9": None}),
                                          "generator states"),
    "run history malformed": (lambda m, a: m["run"].pop("iteration"), "run history"),
}


@pytest.mark.parametrize("damage", sorted(RESUME_DAMAGE))
def test_resuming_forged_state_is_refused_before_any_step(damage, run_copy, capsys):
    folder = run_copy("mlp")
    edit, expect = RESUME_DAMAGE[damage]
    _forge(folder, edit)
    before = _fingerprint(folder)
    _assert_clean_error(*_run(["train", "mlp", "--resume", "--out-dir", str(folder),
                               "--max-iters", "6"], capsys), expect)
    assert _fingerprint(folder) == before


def _first_config_field(meta, arrays):
    key = sorted(k for k, v in meta["model_config"].items() if isinstance(v, int)
                 and not isinstance(v, bool) and k != "vocab_size")[0]
    meta["model_config"][key] += 1


def _poison_first_float_tensor(meta, arrays):
    name = sorted(k for k, v in arrays.items() if k.startswith("model/") and v.dtype.kind == "f")[0]
    arrays[name] = np.full_like(arrays[name], np.nan)


@pytest.mark.parametrize("family", sorted(TINY))
def test_every_family_refuses_an_edited_configuration(family, run_copy, capsys):
    folder = run_copy(family)
    _edit_json(folder, lambda m: _first_config_field(m, None))
    _assert_clean_error(*_run(["generate", str(folder), "--max-new-tokens", "3"], capsys),
                        "edited or damaged")


@pytest.mark.parametrize("family", sorted(set(TINY) - {"ngram"}))     # n-gram counts: integers
def test_every_family_refuses_nan_weights(family, run_copy, capsys):
    folder = run_copy(family)
    _forge(folder, _poison_first_float_tensor)
    _assert_clean_error(*_run(["eval", str(folder)], capsys), "NaN or infinite")


def test_a_checkpoint_path_that_is_not_a_checkpoint(runs, tmp_path, capsys):
    _assert_clean_error(*_run(["generate", str(tmp_path / "nothing")], capsys), "no checkpoint")
    _assert_clean_error(*_run(["eval", str(runs / "mlp" / "loss.png")], capsys), "no checkpoint")


# -- 5. bad prompts and splits ------------------------------------------------------------------

def test_prompts_the_tokenizer_cannot_encode(runs, capsys):
    _assert_clean_error(*_run(["generate", str(runs / "mlp"), "--prompt", "€"], capsys),
                        "'€' .* not in the vocabulary")
    _assert_clean_error(*_run(["generate", str(runs / "mlp"), "--prompt", ""], capsys),
                        "encodes to no tokens")


def test_a_split_the_dataset_does_not_have(runs, capsys):
    _assert_clean_error(*_run(["eval", str(runs / "mlp"), "--split", "test"], capsys),
                        "no test split")


# -- 6. bad data -------------------------------------------------------------------------------

def test_a_missing_data_folder_is_an_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TINYLM_DATA_DIR", str(tmp_path / "no-such-folder"))
    _assert_clean_error(*_run(["train", "mlp", "--out-dir", str(tmp_path / "r"), *FAST],
                              capsys), "TINYLM_DATA_DIR=.* not an existing folder")


def test_a_corrupt_local_dataset_is_refused(monkeypatch, tmp_path, capsys):
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_text("First Citizen:\nBefore we")
    monkeypatch.setenv("TINYLM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "cache"))
    _assert_clean_error(*_run(["train", "mlp", "--out-dir", str(tmp_path / "r"), *FAST],
                              capsys), "has sha256 .* expected 86c4e6aa")
    assert not (tmp_path / "r").exists()


# -- 7. the boundary itself --------------------------------------------------------------------

def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="unknown preset"):
        main(["train", "mlp", "--preset", "nope", "--debug"])


def test_a_bug_is_reported_as_one(monkeypatch, capsys):
    import tinylm.commands.eval as eval_command

    def broken(args):
        return 1 // 0
    monkeypatch.setattr(eval_command, "run", broken)
    status, err = _run(["eval", "x"], capsys)
    assert status == 1 and "internal error (ZeroDivisionError" in err and "--debug" in err
    assert "Traceback" not in err


def test_ctrl_c_is_one_line(monkeypatch, capsys):
    import tinylm.commands.eval as eval_command

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(eval_command, "run", interrupted)
    status, err = _run(["eval", "x"], capsys)
    assert status == 130 and err.strip() == "tinylm eval: interrupted"
