"""Checkpoints: round trip, and every kind of damage reported by name (never pickle)."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import numpy as np
import pytest

import tinylm.checkpoint as checkpoint
from tinylm.checkpoint import (CheckpointError, canonical_json, load_checkpoint, save_checkpoint,
                               split_prefix)
from tinylm.models.mlp_lm import MLPConfig, MLPLM


def _model():
    return MLPLM(MLPConfig(vocab_size=11, block_size=3, n_embd=4, n_hidden=8))


def test_round_trip_restores_every_tensor_and_the_metadata(tmp_path):
    model = _model()
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    save_checkpoint(tmp_path / "ckpt", arrays, {"note": "hello", "nested": {"a": [1, 2]}})
    loaded, meta = load_checkpoint(tmp_path / "ckpt")
    other = MLPLM(MLPConfig(vocab_size=11, block_size=3, n_embd=4, n_hidden=8, seed=5))
    other.load_state_dict(split_prefix(loaded, "model"))
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    assert meta == {"note": "hello", "nested": {"a": [1, 2]}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-" + _recorded(tmp_path)[:16]
                                                           + ".npz", "ckpt.json"]


def _recorded(folder):
    return json.loads((folder / "ckpt.json").read_text())["arrays_sha256"]


def _arrays_file(folder):
    return folder / json.loads((folder / "ckpt.json").read_text())["arrays"]


def _rewrite_json(folder, edit, fix_checksum=False):
    """Edit ckpt.json; with ``fix_checksum`` recompute meta_sha256 (a deliberate forgery
    that gets past the metadata check, to reach the checks behind it)."""
    meta = json.loads((folder / "ckpt.json").read_text())
    edit(meta)
    if fix_checksum:
        body = {k: v for k, v in meta.items() if k != "meta_sha256"}
        meta["meta_sha256"] = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    (folder / "ckpt.json").write_text(json.dumps(meta))


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing")


def test_altered_array_file_is_caught_by_its_checksum(tmp_path):
    save_checkpoint(tmp_path / "ckpt", {"w": np.arange(1000.0)}, {})
    path = _arrays_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(tmp_path / "ckpt")


def test_corrupt_tensor_is_reported_by_name(tmp_path):
    save_checkpoint(tmp_path / "ckpt", {"good": np.zeros(3), "model/bad": np.arange(4000.0)}, {})
    path = _arrays_file(tmp_path)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("model/bad.npy")
    data = bytearray(path.read_bytes())
    data[info.header_offset + 200] ^= 0xFF        # inside the stored bytes of model/bad
    path.write_bytes(bytes(data))
    digest = hashlib.sha256(bytes(data)).hexdigest()  # forge both checksums: reach the tensor
    _rewrite_json(tmp_path, lambda m: m.update(arrays_sha256=digest), fix_checksum=True)
    with pytest.raises(CheckpointError, match="model/bad"):
        load_checkpoint(tmp_path / "ckpt")


def test_invalid_json_and_wrong_format_are_reported(tmp_path):
    save_checkpoint(tmp_path / "ckpt", {"w": np.zeros(2)}, {})
    (tmp_path / "ckpt.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid strict JSON"):
        load_checkpoint(tmp_path / "ckpt")
    (tmp_path / "ckpt.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(CheckpointError, match="format"):
        load_checkpoint(tmp_path / "ckpt")
    (tmp_path / "ckpt.json").write_text(json.dumps({"format": 1}))
    with pytest.raises(CheckpointError, match="format-1 .* --overwrite"):
        load_checkpoint(tmp_path / "ckpt")


def test_shape_mismatch_names_the_tensor():
    small, big = _model(), MLPLM(MLPConfig(vocab_size=11, block_size=3, n_embd=4, n_hidden=9))
    with pytest.raises(ValueError, match="w_hidden"):
        big.load_state_dict(small.state_dict())


def test_pickled_arrays_are_refused(tmp_path):
    save_checkpoint(tmp_path / "ckpt", {"w": np.zeros(2)}, {})
    path = _arrays_file(tmp_path)
    np.savez(path, obj=np.array([{"a": 1}], dtype=object))     # numpy writes it with pickle
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _rewrite_json(tmp_path, lambda m: m.update(arrays_sha256=digest), fix_checksum=True)
    with pytest.raises(CheckpointError, match="obj"):
        load_checkpoint(tmp_path / "ckpt")


# -- the commit point: a kill at any step of a save leaves a loadable folder -------------------

def _killed_during_save(step, folder, arrays, meta):
    """Save in a forked child that dies (os._exit: no cleanup, like kill -9) at ``step``."""
    pid = os.fork()
    if pid == 0:                                              # the child
        def die_at(reached):
            if reached == step:
                os._exit(137)
        checkpoint.fault_hook = die_at
        try:
            save_checkpoint(folder / "ckpt", arrays, meta)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 137, f"the child did not reach {step!r}"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")
@pytest.mark.parametrize("step", checkpoint.SAVE_STEPS)
def test_a_kill_at_any_step_of_a_save_leaves_the_old_or_the_new_checkpoint(tmp_path, step):
    save_checkpoint(tmp_path / "ckpt", {"w": np.zeros(3)}, {"version": "old"})
    _killed_during_save(step, tmp_path, {"w": np.ones(3)}, {"version": "new"})
    arrays, meta = load_checkpoint(tmp_path / "ckpt")
    committed = checkpoint.SAVE_STEPS.index(step) >= checkpoint.SAVE_STEPS.index("committed")
    assert meta["version"] == ("new" if committed else "old")
    np.testing.assert_array_equal(arrays["w"], np.ones(3) if committed else np.zeros(3))
    save_checkpoint(tmp_path / "ckpt", {"w": np.full(3, 2.0)}, {"version": "next"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [       # leftovers are cleaned up
        "ckpt-" + _recorded(tmp_path)[:16] + ".npz", "ckpt.json"]


def test_an_edited_configuration_is_caught_by_the_metadata_checksum(tmp_path):
    save_checkpoint(tmp_path / "ckpt", {"w": np.zeros(2)}, {"model_config": {"n_head": 4}})
    _rewrite_json(tmp_path, lambda m: m["model_config"].update(n_head=2))
    with pytest.raises(CheckpointError, match="edited or damaged"):
        load_checkpoint(tmp_path / "ckpt")
    _rewrite_json(tmp_path, lambda m: m.pop("meta_sha256"))
    with pytest.raises(CheckpointError, match="edited or damaged"):
        load_checkpoint(tmp_path / "ckpt")


def test_json_is_strict_both_ways(tmp_path):
    with pytest.raises(CheckpointError, match="NaN"):
        save_checkpoint(tmp_path / "ckpt", {"w": np.zeros(2)}, {"val_loss": float("nan")})
    assert not list(tmp_path.iterdir())                 # refused before anything was written
    save_checkpoint(tmp_path / "ckpt", {"w": np.zeros(2)}, {"val_loss": 1.5})
    text = (tmp_path / "ckpt.json").read_text().replace("1.5", "NaN")
    (tmp_path / "ckpt.json").write_text(text)
    with pytest.raises(CheckpointError, match="strict JSON"):
        load_checkpoint(tmp_path / "ckpt")


def test_a_missing_array_file_is_named(tmp_path):
    save_checkpoint(tmp_path / "ckpt", {"w": np.zeros(2)}, {})
    _arrays_file(tmp_path).unlink()
    with pytest.raises(CheckpointError, match="is missing"):
        load_checkpoint(tmp_path / "ckpt")
