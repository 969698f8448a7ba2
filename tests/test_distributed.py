"""Data parallelism over MPI (tinylm/distributed, chapter 11): two ranks give the losses of
one process, with and without ZeRO-1; an interrupted job resumes exactly; a killed rank ends
the job; bad starts are refused with the fix.

The two-rank runs are real MPI jobs, ``mpiexec -n 2 python tests/distributed_run.py``, whose
rank 0 writes its losses to a JSON file; the one-process runs are the same functions called
here. mpi4py and MPICH are test requirements (requirements-dev.txt), so these tests run
wherever the suite does; they skip, saying why, only where mpi4py is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import distributed_run
from tinylm.distributed.sharding import nearest_divisors, nearest_multiples, rows_of_rank
from tinylm.distributed.world import World, init_world, launched_size

SCRIPT = Path(__file__).with_name("distributed_run.py")
FAMILIES = ("gpt", "lstm", "mlp")
# float64: measured max relative difference 5e-16 over 20 steps of each family (one
# process vs two ranks: the same sums, added in another order)
RTOL = 1e-12
ONE_THREAD = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _mpiexec() -> str:
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install "
                                         "'tinylm[mpi]'; requirements-dev.txt has it)")
    beside = Path(sys.executable).with_name("mpiexec")
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("mpi4py is installed but no mpiexec was found beside Python or on PATH")
    return found


def _job(*args, ranks=2, timeout=120, mpmd_tail=()):
    """Run ``distributed_run.py args`` as an MPI job -> CompletedProcess (text)."""
    command = [_mpiexec(), "-n", str(ranks), sys.executable, str(SCRIPT), *args]
    if mpmd_tail:
        command += [":", "-n", "1", sys.executable, str(SCRIPT), *mpmd_tail]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **ONE_THREAD})


def _losses(folder: Path) -> dict:
    return json.loads((folder / "losses.json").read_text())


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Every family with and without ZeRO-1, and GPT on the fake device, as one job."""
    folder = tmp_path_factory.mktemp("two-ranks")
    done = _job(str(folder), "--families", *FAMILIES, "--zero", "0", "1", "--fake-gpu", "gpt")
    assert done.returncode == 0, done.stderr
    return _losses(folder)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one-process")
    return {family: distributed_run.run(family, folder / family) for family in FAMILIES}


def _relative_difference(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b) / np.abs(b)))


@pytest.mark.parametrize("zero", [0, 1])
@pytest.mark.parametrize("family", FAMILIES)
def test_two_ranks_give_the_losses_of_one_process(two_ranks, one_process, family, zero):
    train, val = one_process[family]
    run = two_ranks[f"{family}-zero{zero}"]
    assert len(run["train"]) == distributed_run.STEPS >= 20
    assert _relative_difference(run["train"], train) <= RTOL
    assert _relative_difference(run["val"], val) <= RTOL


def test_on_a_device_the_buckets_go_through_host_memory_and_give_the_same_losses(
        two_ranks, fake_gpu, tmp_path):
    """The fake device (tests/fake_cupy) draws other dropout masks than the host, so its
    one-process run is the reference; its buffers cannot be handed to MPI directly."""
    train, val = distributed_run.run("gpt", tmp_path, device="gpu")
    for zero in (0, 1):
        run = two_ranks[f"gpt-zero{zero}-fakegpu"]
        assert _relative_difference(run["train"], train) <= RTOL
        assert _relative_difference(run["val"], val) <= RTOL


def test_zero_1_holds_half_the_optimizer_state_per_rank(two_ranks):
    for family in FAMILIES:
        plain = two_ranks[f"{family}-zero0"]["memory"]
        sharded = two_ranks[f"{family}-zero1"]["memory"]
        assert plain["optimizer_state"] == plain["optimizer_state_unsharded"]
        assert abs(sharded["optimizer_state"] - plain["optimizer_state"] / 2) <= 64


@pytest.fixture(scope="module")
def killed_job(tmp_path_factory):
    """A ZeRO-1 job whose rank 1 is killed (SIGKILL) during step 13: the last checkpoint
    is step 10's."""
    folder = tmp_path_factory.mktemp("killed")
    done = _job(str(folder), "--zero", "1", "--stop-at", "13", "--signal", "KILL", timeout=60)
    return folder, done


def test_a_killed_rank_ends_the_job(killed_job):
    folder, done = killed_job                       # within the timeout: no hang
    assert done.returncode != 0
    assert "signal 9" in done.stderr + done.stdout  # the launcher names the lost process
    assert not (folder / "losses.json").exists()
    saved = json.loads((folder / "gpt-zero1" / "ckpt.json").read_text())
    assert saved["run"]["iteration"] == 10


def test_the_killed_job_resumes_into_the_uninterrupted_losses(killed_job, two_ranks):
    folder, _ = killed_job
    done = _job(str(folder), "--zero", "1", "--resume")
    assert done.returncode == 0, done.stderr
    resumed = _losses(folder)["gpt-zero1"]
    assert resumed["train"] == two_ranks["gpt-zero1"]["train"]
    assert resumed["val"] == two_ranks["gpt-zero1"]["val"]


def test_a_terminated_rank_names_the_checkpoint_and_stops_every_rank(tmp_path):
    done = _job(str(tmp_path), "--stop-at", "13", "--signal", "TERM", timeout=60)
    assert done.returncode != 0
    assert "(rank 1 of 2): interrupted at step 13" in done.stderr
    assert "the checkpoint of step 10" in done.stderr and "--resume" in done.stderr


def test_ranks_started_with_different_settings_refuse_to_start(tmp_path):
    done = _job(str(tmp_path), ranks=1, timeout=60, mpmd_tail=(str(tmp_path), "--lr", "0.01"))
    assert done.returncode != 0
    assert "disagree on settings (rank 0:" in done.stderr
    assert "Start every rank with the same command line" in done.stderr
    assert not (tmp_path / "gpt-zero0" / "ckpt.json").exists()


def test_a_batch_that_the_ranks_cannot_share_names_the_sizes_that_work():
    assert rows_of_rank(12, World(1, 3)) == slice(4, 8)
    with pytest.raises(ValueError, match=r"batch_size=12 cannot be shared by 5 ranks.*"
                                         r"--batch-size 10 or 15, or run with 4 or 6 ranks"):
        rows_of_rank(12, World(0, 5))
    assert nearest_multiples(3, 4) == [4] and nearest_divisors(7, 3) == [1, 7]


def test_mpiexec_without_mpi4py_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)          # import mpi4py fails
    with pytest.raises(RuntimeError, match=r"one of 2 started by mpiexec, but mpi4py cannot "
                                           r"be imported .*pip install 'tinylm\[mpi\]'"):
        init_world()


def test_one_process_needs_no_mpi(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    assert launched_size() == 1 and init_world() == World()


def test_an_mpi4py_of_another_mpi_than_the_launcher_is_refused():
    """A launcher says 2 processes, but MPI starts this one alone (a world of one), as when
    mpi4py is linked to another MPI library than the mpiexec used."""
    pytest.importorskip("mpi4py", reason="mpi4py is not installed")
    code = "from tinylm.distributed import init_world; init_world()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PMI_SIZE": "2"})
    assert done.returncode != 0
    assert "mpiexec started 2 processes but MPI sees a world of 1" in done.stderr
