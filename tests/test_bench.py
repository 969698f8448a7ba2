"""Every ``tinylm bench`` end to end at toy sizes, and the harness they share."""

from __future__ import annotations

import argparse
import json

import pytest

from tinylm.bench import harness
from tinylm.cli import main


def test_summary_follows_the_result_schema():
    result = harness.summarize({"tinylm": [0.2, 0.1, 0.3], "torch": [0.4, 0.2]}, tokens_per_step=10)
    assert result["tinylm_ms_per_step"] == 100.0 and result["tinylm_median_ms_per_step"] == 200.0
    assert result["tinylm_tokens_per_s"] == 100.0 and result["torch_tokens_per_s"] == 50.0
    assert result["ratio"] == 2.0
    alone = harness.summarize({"tinylm": [0.1]}, tokens_per_step=10)
    assert alone["torch_tokens_per_s"] is None and alone["ratio"] is None


def test_timed_steps_excludes_the_warm_up_steps():
    calls = []
    harness.timed_steps(lambda: calls.append(1), steps=3, warmup=2)
    assert len(calls) == 5


def test_tinylm_bench_kernels_runs_in_quick_mode():
    from tinylm.bench import kernels as bench

    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    bench.add_arguments(parser)
    result = bench.run(parser.parse_args(["--quick", "--no-torch", "--repeat", "1", "--json"]))
    rows = {k: v for k, v in result.items() if isinstance(v, dict) and "numba_ms" in v}
    assert len(rows) == len(bench.CASES)
    assert all(r["reference_ms"] > 0 and r["numba_ms"] > 0 for r in rows.values())


def test_bench_lstm_reports_both_throughputs(capsys):
    assert main(["bench", "lstm", "--vocab", "11", "--embd", "4", "--hidden", "8", "--block",
                 "5", "--batch", "3", "--steps", "1", "--repeat", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tinylm_tokens_per_s"] > 0
    assert {"torch_tokens_per_s", "ratio"} <= set(result)


@pytest.mark.slow            # two worker processes import numba and torch: ~10-30 s
def test_bench_gpt_times_both_sides_in_worker_processes(torch):
    from tinylm.bench import gpt as bench
    args = argparse.Namespace(layers=1, heads=2, embd=16, block=8, batch=2, vocab=11, steps=1,
                              repeat=2, dtype="float32", threads=1, no_torch=False,
                              profile=True, generate=5, train=None, train_iters=None)
    result = bench.run(args)
    assert result["tinylm_tokens_per_s"] > 0 and result["torch_tokens_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["tinylm_tokens_per_s"]
                                            / result["torch_tokens_per_s"], rel=1e-2)
    assert result["generate_tokens_per_s_kv_cache"] > 0
    assert set(result["tinylm_phases"]) == {"forward", "backward", "optimizer"}


def test_bench_bert_times_an_mlm_step_on_both_sides(capsys, torch):
    assert main(["bench", "bert", "--layers", "1", "--heads", "2", "--embd", "16", "--block",
                 "12", "--batch", "4", "--vocab", "50", "--steps", "1", "--repeat", "2",
                 "--threads", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tinylm_tokens_per_s"] > 0 and result["torch_tokens_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["tinylm_tokens_per_s"]
                                            / result["torch_tokens_per_s"], rel=1e-2)


@pytest.mark.slow            # two worker processes import numba and torch: ~10-30 s
def test_bench_seq2seq_times_a_training_step_and_beam_search(capsys, torch):
    assert main(["bench", "seq2seq", "--embd", "16", "--heads", "2", "--enc-layers", "1",
                 "--dec-layers", "1", "--max-len", "8", "--src-vocab", "13", "--tgt-vocab",
                 "11", "--batch", "3", "--src-len", "6", "--tgt-len", "5", "--steps", "1",
                 "--repeat", "1", "--threads", "1", "--beam-sentences", "2", "--beam-width",
                 "2", "--profile", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tinylm_tokens_per_s"] > 0 and result["torch_tokens_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["tinylm_tokens_per_s"]
                                            / result["torch_tokens_per_s"], rel=1e-2)
    assert result["tinylm_beam_sentences_per_s"] > 0 and result["beam_sentences"] == 2
    assert set(result["tinylm_phases"]) == {"forward", "backward", "optimizer"}
