"""The GPU check (tinylm/bench/gpu_check.py, ``make gpu-check``): without a GPU it says so
and exits 2; on the fake device every check runs and passes (the figures themselves need
the real device). And ``make gpu-test``: it installs the pinned CuPy and fails on a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tinylm.bench import gpu_check
from tinylm.commands import gradcheck as gradcheck_command
from tinylm.models.gpt import GPT, GPTConfig


def test_without_a_gpu_the_check_says_why_and_exits_2(capsys):
    assert gpu_check.main([]) == gpu_check.NO_GPU_EXIT
    assert "gpu_check: no GPU to check: CuPy does not import" in capsys.readouterr().err


def test_every_check_runs_and_passes_on_the_fake_device(fake_gpu, monkeypatch, tmp_path,
                                                        capsys):
    """A GPT of the preset's shape takes a minute on the CPU: a small one stands in; and
    three gradient-check cases (tests/test_fake_device.py runs them all on the device)."""
    monkeypatch.setitem(sys.modules, "cupy", fake_gpu)
    every_case = gradcheck_command.discover_cases
    monkeypatch.setattr(gradcheck_command, "discover_cases", lambda: every_case()[:3])
    timed = gpu_check.gpt_throughput
    monkeypatch.setattr(gpu_check, "gpt_throughput", lambda: timed(steps=1, warmup=0))
    monkeypatch.setattr(gpu_check, "_shakespeare_gpt", lambda dtype, dropout=None: GPT(
        GPTConfig(vocab_size=65, block_size=32, n_layer=1, n_head=2, n_embd=16,
                  dropout=0.1 if dropout is None else dropout)).to(dtype, "gpu"))
    assert gpu_check.main(["--skip-tests", "--json", str(tmp_path / "gpu.json")]) == 0
    report = (tmp_path / "gpu.json").read_text()
    for key in ("families", "gradcheck", "gpt_throughput", "kv_cache", "determinism"):
        assert f'"{key}"' in report
    assert '"passed": false' not in report, capsys.readouterr().out


def test_make_gpu_test_installs_cupy_and_fails_when_the_gpu_tests_skip():
    """B4: the target used to run the gpu tests without CuPy, so they all skipped and it
    passed. Here (no GPU) the same pytest command must fail, naming the reason."""
    root = Path(__file__).resolve().parents[1]
    makefile = (root / "Makefile").read_text()
    recipe = makefile.split("\ngpu-test:", 1)[1].split("\n\n", 1)[0]
    assert "gpu-install" in recipe and "TINYLM_REQUIRE_GPU=1" in recipe and "-m gpu" in recipe
    assert "-r requirements-gpu.txt" in makefile.split("\ngpu-install:", 1)[1].split("\n\n")[0]
    pins = [line for line in (root / "requirements-gpu.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert pins == ["cupy-cuda12x==14.2.0"]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-m", "gpu",
                             "tests/test_gpu.py"], cwd=root, capture_output=True, text=True,
                            env=dict(os.environ, TINYLM_REQUIRE_GPU="1"))
    assert result.returncode != 0
    assert "skipped although $TINYLM_REQUIRE_GPU is set: CuPy does not import" in result.stdout
