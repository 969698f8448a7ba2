"""Checkpoints without pickle: arrays in ``NAME.npz`` (``allow_pickle=False``), everything
else in ``NAME.json`` beside it.

    NAME.npz   name -> host NumPy array
    NAME.json  the caller's metadata (any JSON object) plus {"format": 1, "npz_sha256": "..."}

This module only stores and verifies; what goes in is the caller's. ``tinylm train`` writes
``OUT_DIR/ckpt`` through ``tinylm.train.loop.save_run``, the one writer of run checkpoints:

    ckpt.npz   model/<param name>   the model's parameters
               optim/<key>          the optimizer's state (moments, step count, ...)
    ckpt.json  {"model": family, "model_config": {...}, "train_config": {...},
                "run": {"iteration", "train_losses", "evals", "elapsed_s"},
                "batcher": {...}, "rng": {module: generator state}, "format", "npz_sha256"}

(an n-gram, fitted by counting, has no ``optim/``, ``batcher`` or ``rng``). The tokenizer is
saved beside it as ``OUT_DIR/tokenizer.json``.

The JSON records the sha256 of the npz, so a truncated or altered array file is caught
before any tensor is used, and every tensor is read inside its own error handler so a
damaged one is reported by name.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or does not fit the model it is loaded into."""


def _paths(path) -> tuple[Path, Path]:
    base = Path(path)
    if base.suffix in (".npz", ".json"):
        base = base.with_suffix("")
    return base.with_suffix(".npz"), base.with_suffix(".json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(path, arrays: dict, meta: dict) -> Path:
    """Write ``arrays`` (name -> host array) and ``meta`` (JSON-serialisable) atomically.

    Returns the path of the ``.npz``. Both files are written to temporary names first and
    renamed, so an interrupted save never leaves a half-written checkpoint behind.
    """
    npz_path, json_path = _paths(path)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_npz = npz_path.with_name(npz_path.name + ".tmp.npz")
    numpy.savez(tmp_npz, **{k: numpy.asarray(v) for k, v in arrays.items()})
    meta = dict(meta, format=FORMAT_VERSION, npz_sha256=_sha256(tmp_npz))
    tmp_json = json_path.with_name(json_path.name + ".tmp")
    tmp_json.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp_npz, npz_path)
    os.replace(tmp_json, json_path)
    return npz_path


def load_checkpoint(path) -> tuple[dict, dict]:
    """Read a checkpoint -> (arrays: name -> NumPy array, meta: dict).

    Raises CheckpointError naming the file or tensor when anything is missing or damaged.
    """
    npz_path, json_path = _paths(path)
    for p in (npz_path, json_path):
        if not p.exists():
            raise CheckpointError(f"checkpoint file {p} not found; a checkpoint is a .npz and "
                                  "a .json with the same name, written by `tinylm train`.")
    try:
        meta = json.loads(json_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{json_path} is not valid JSON ({e}); the checkpoint is "
                              "corrupt.") from e
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{json_path}: checkpoint format {meta.get('format')!r} is not "
                              f"{FORMAT_VERSION}; it was written by another version of tinylm.")
    expected = meta.get("npz_sha256")
    if expected and _sha256(npz_path) != expected:
        raise CheckpointError(f"{npz_path} does not match the sha256 recorded in {json_path.name}: "
                              "the array file is corrupt or was replaced. Re-save the checkpoint.")
    arrays = {}
    try:
        archive = numpy.load(npz_path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(f"{npz_path} cannot be opened as an .npz archive ({e}).") from e
    with archive:
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except Exception as e:  # noqa: BLE001 - any decoding failure names the tensor
                raise CheckpointError(f"tensor {name!r} in {npz_path} is corrupt ({e}).") from e
    return arrays, meta


def split_prefix(arrays: dict, prefix: str) -> dict:
    """The entries named ``prefix/...``, with the prefix removed."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}
