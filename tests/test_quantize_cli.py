"""``tinylm quantize`` on a tiny trained GPT run, ``tinylm eval`` and ``tinylm generate`` on
what it writes, and the errors a user can cause."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import run_cli
from tinylm.cli import main
from tinylm.compress.quantize import quantize_model
from tinylm.evaluate import evaluate_lm
from tinylm.train.restore import load_trained, read_run
from tinylm.train.setup import prepare_data

TINY = ["--model", "n_layer=1", "--model", "n_embd=16", "--model", "n_head=2",
        "--model", "block_size=16", "--batch-size", "4", "--eval-iters", "2",
        "--progress", "false"]


@pytest.fixture(scope="module")
def float_run(tmp_path_factory):
    pytest.importorskip("tinylm.data")
    out = tmp_path_factory.mktemp("float")
    assert main(["train", "gpt", "--preset", "shakespeare-char-cpu", *TINY, "--max-iters", "4",
                 "--eval-interval", "4", "--out-dir", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def int4_run(float_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("int4")
    assert main(["quantize", str(float_run), "--bits", "4", "--group-size", "8", "--out",
                 str(out), "--overwrite"]) == 0
    return out


def test_the_quantized_run_holds_codes_and_records_its_settings(float_run, int4_run):
    arrays, meta = read_run(int4_run)
    assert arrays["model/h.0.attn.c_attn.qweight"].dtype == np.uint8
    assert "model/wte" not in arrays and arrays["model/wte.qweight"].shape == (65, 8)
    assert not any(name.startswith("optim/") for name in arrays)
    q = meta["provenance"]["quantization"]
    assert (q["bits"], q["group_size"], q["source"]) == (4, 8, str(float_run))
    assert q["quantized_bytes"] < q["float_bytes"]
    assert json.loads((int4_run / "ckpt.json").read_text())["model"] == "gpt"


def test_eval_reads_the_quantized_run_as_saved(float_run, int4_run, capsys):
    """The saved codes are the ones quantize computed: the CLI's loss equals the loss of the
    float run quantised in memory."""
    status, out, err = run_cli(["eval", str(int4_run), "--batch-size", "256"], capsys)
    assert status == 0, err
    model, tokenizer, cfg = load_trained(float_run)
    quantize_model(model, 4, 8)
    expected = evaluate_lm(model, prepare_data(cfg, tokenizer).val, 256, cfg.block_size)
    assert f"loss {expected['loss']:.4f} nats/token" in out


def test_generate_samples_from_the_quantized_run(int4_run, capsys):
    status, out, err = run_cli(["generate", str(int4_run), "--prompt", "ROMEO:",
                                "--max-new-tokens", "12", "--greedy"], capsys)
    assert status == 0, err
    assert out.startswith("ROMEO:") and len(out.rstrip("\n")) == len("ROMEO:") + 12


def test_int8_per_channel_is_the_default_of_bits_8(float_run, tmp_path, capsys):
    status, out, err = run_cli(["quantize", str(float_run), "--bits", "8", "--out",
                                str(tmp_path / "q8")], capsys)
    assert status == 0, err
    assert "int8 (per channel) on 5 matrices" in out
    assert read_run(tmp_path / "q8")[1]["provenance"]["quantization"]["group_size"] is None


@pytest.mark.parametrize("argv, message", [
    (["--bits", "3"], "bits=3; choose 8"),
    (["--bits", "4", "--group-size", "6"], "Valid group sizes for int4 here: [2, 4, 8, 16]"),
])
def test_bad_settings_are_refused_with_the_valid_values(float_run, tmp_path, capsys, argv,
                                                        message):
    status, _, err = run_cli(["quantize", str(float_run), *argv, "--out", str(tmp_path / "q")],
                             capsys)
    assert status == 1 and message in err
    assert not (tmp_path / "q").exists()


def test_a_missing_run_an_existing_output_and_a_quantized_run_are_refused(float_run, int4_run,
                                                                         tmp_path, capsys):
    status, _, err = run_cli(["quantize", str(tmp_path / "nothing"), "--bits", "8", "--out",
                              str(tmp_path / "q")], capsys)
    assert status == 1 and "no checkpoint" in err
    status, _, err = run_cli(["quantize", str(float_run), "--bits", "8", "--out",
                              str(int4_run)], capsys)
    assert status == 1 and "already holds a checkpoint" in err
    status, _, err = run_cli(["quantize", str(int4_run), "--bits", "8", "--out",
                              str(tmp_path / "q")], capsys)
    assert status == 1 and "already quantised (int4" in err


def test_the_quantize_benchmark_runs(float_run, capsys):
    status, out, err = run_cli(["bench", "quantize", "--run", str(float_run), "--settings",
                                "float32,int4-g8", "--new-tokens", "3", "--repeat", "1",
                                "--no-eval", "--json"], capsys)
    assert status == 0, err
    result = json.loads(out)
    assert result["int4-g8_weight_bytes"] < result["float32_weight_bytes"]
    assert result["float32_tokens_per_s"] > 0 and result["int4-g8_median_tokens_per_s"] > 0


def test_a_quantized_run_is_not_exported_to_hugging_face(int4_run, tmp_path, capsys):
    status, _, err = run_cli(["export-hf", str(int4_run), str(tmp_path / "hf")], capsys)
    assert status == 1 and "quantised model" in err and "Export the run it was" in err
