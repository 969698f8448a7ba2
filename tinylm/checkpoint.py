"""Checkpoints that an interrupted save, a corrupt file or an edited configuration cannot
turn into a silently wrong model. No pickle anywhere.

A checkpoint ``NAME`` in a folder is two files:

    NAME.json              the commit point: the caller's metadata (any JSON object) plus
                           {"format": 2, "arrays": "NAME-<hash>.npz", "arrays_sha256": ...,
                            "meta_sha256": ...}
    NAME-<hash>.npz        the arrays (name -> host NumPy array), read with allow_pickle=False;
                           <hash> is the first 16 hex digits of the file's sha256

Saving (``save_checkpoint``) follows one order, and a kill at any point of it leaves a folder
whose ``NAME.json`` still describes a complete checkpoint, the old one or the new one:

    1. the arrays go to a temporary file, flushed and fsync'ed, then hashed;
    2. it is renamed to NAME-<hash>.npz (a new name: the old arrays are untouched);
    3. the metadata goes to a temporary file, flushed and fsync'ed;
    4. one rename of it over NAME.json commits the new checkpoint (the folder is fsync'ed);
    5. arrays and temporary files no longer named by NAME.json are deleted.

Until step 4 the old NAME.json names the old arrays, which still exist; after it, the new
ones. Leftovers of an interrupted save are never read and are removed by the next save.

Both files are covered by checksums: ``arrays_sha256`` catches a truncated or replaced
array file, ``meta_sha256`` (of the metadata's canonical JSON) catches an edited
configuration. The JSON is strict: NaN and infinities are refused on the way out and on
the way in. ``tinylm train`` writes ``OUT_DIR/ckpt`` through ``tinylm.train.loop.save_run``
(chapter 04 lists what goes in).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy

from tinylm.files import sha256_of

FORMAT_VERSION = 2
SAVE_STEPS = ("arrays written", "arrays renamed", "metadata written", "committed", "cleaned")

# Called with each name of SAVE_STEPS as the save passes it. None in normal use; the tests
# set it to stop the process at a chosen point and prove that the folder still loads.
fault_hook = None


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or does not fit the model it is loaded into."""


def _base(path) -> Path:
    """OUT_DIR/ckpt, OUT_DIR/ckpt.json -> OUT_DIR/ckpt."""
    base = Path(path)
    return base.with_suffix("") if base.suffix == ".json" else base


def metadata_path(path) -> Path:
    """The commit point of checkpoint ``path``: ``NAME.json``."""
    return _base(path).with_suffix(".json")


def checkpoint_exists(path) -> bool:
    """Whether a checkpoint (of any format, complete or not) has been committed at ``path``;
    format 1 wrote ``NAME.npz`` beside ``NAME.json``."""
    base = _base(path)
    return base.with_suffix(".json").exists() or base.with_suffix(".npz").exists()


def canonical_json(value) -> str:
    """The one serialisation that ``meta_sha256`` is computed over (keys sorted, no spaces,
    no NaN)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _reached(step: str) -> None:
    if fault_hook is not None:
        fault_hook(step)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, write) -> None:
    """Create ``path`` with ``write(file)``, then flush it to the disk."""
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _strict_metadata(meta: dict) -> str:
    try:
        return canonical_json(meta)
    except ValueError as e:
        raise CheckpointError(f"the checkpoint metadata holds a NaN or infinite number ({e}); "
                              "strict JSON cannot store it. A diverged run must not be "
                              "saved.") from e
    except TypeError as e:
        raise CheckpointError(f"the checkpoint metadata is not JSON-serialisable ({e}).") from e


def save_checkpoint(path, arrays: dict, meta: dict) -> Path:
    """Commit ``arrays`` (name -> host array) and ``meta`` (a JSON object) as checkpoint
    ``path`` (e.g. OUT_DIR/ckpt), in the order of the module docstring. Returns NAME.json."""
    base = _base(path)
    folder, name = base.parent, base.name
    folder.mkdir(parents=True, exist_ok=True)
    meta = {k: v for k, v in meta.items() if k not in ("arrays", "arrays_sha256", "meta_sha256")}
    _strict_metadata(meta)                       # refuse NaN before anything is written
    tmp_arrays = folder / f".{name}.npz.tmp-{os.getpid()}"
    _write_durably(tmp_arrays, lambda f: numpy.savez(
        f, **{k: numpy.asarray(v) for k, v in arrays.items()}))
    digest = sha256_of(tmp_arrays)
    _reached("arrays written")
    arrays_name = f"{name}-{digest[:16]}.npz"
    os.replace(tmp_arrays, folder / arrays_name)
    _fsync_dir(folder)
    _reached("arrays renamed")
    meta = dict(meta, format=FORMAT_VERSION, arrays=arrays_name, arrays_sha256=digest)
    meta["meta_sha256"] = hashlib.sha256(_strict_metadata(meta).encode()).hexdigest()
    tmp_meta = folder / f".{name}.json.tmp-{os.getpid()}"
    text = json.dumps(meta, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False)
    _write_durably(tmp_meta, lambda f: f.write(text.encode("utf-8")))
    _reached("metadata written")
    os.replace(tmp_meta, base.with_suffix(".json"))
    _fsync_dir(folder)
    _reached("committed")
    _remove_leftovers(folder, name, keep=arrays_name)
    _reached("cleaned")
    return base.with_suffix(".json")


def _remove_leftovers(folder: Path, name: str, keep: str) -> None:
    """Array files of earlier checkpoints and temporary files of interrupted saves."""
    for stale in [*folder.glob(f"{name}-*.npz"), *folder.glob(f".{name}.*.tmp-*"),
                  folder / f"{name}.npz"]:                    # format 1's array file
        if stale.name != keep and stale.exists():
            stale.unlink()


def _refuse_constant(text: str):
    raise ValueError(f"{text} is not a JSON number (strict JSON has no NaN or Infinity)")


def _read_metadata(json_path: Path) -> dict:
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{json_path} is not valid strict JSON ({e}); the checkpoint is "
                              "corrupt. Retrain, or restore the file from a copy.") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{json_path} holds a JSON {type(meta).__name__}, not an object; "
                              "it is not a tinylm checkpoint.")
    return meta


def _check_metadata(meta: dict, json_path: Path) -> None:
    version = meta.get("format")
    if version == 1:
        raise CheckpointError(f"{json_path} is a format-1 checkpoint, written by an older tinylm "
                              "without a checksum of its configuration; it cannot be verified. "
                              "Retrain it (tinylm train ... --overwrite).")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{json_path}: checkpoint format {version!r} is not "
                              f"{FORMAT_VERSION}; it was written by another version of tinylm.")
    recorded = meta.get("meta_sha256")
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    if recorded != hashlib.sha256(canonical_json(body).encode()).hexdigest():
        raise CheckpointError(f"{json_path} was edited or damaged after it was saved: its "
                              "contents do not match the meta_sha256 recorded in it. Restore "
                              "the original file, or retrain; change a run's settings with "
                              "flags (tinylm train ... --resume --max-iters N), not by editing.")
    if not isinstance(meta.get("arrays"), str) or "/" in meta["arrays"]:
        raise CheckpointError(f"{json_path} does not name its array file.")


_BOOKKEEPING = ("format", "arrays", "arrays_sha256", "meta_sha256")


def _verified_metadata(json_path: Path) -> dict:
    if not json_path.exists():
        raise CheckpointError(f"no checkpoint at {json_path}; a checkpoint is written by "
                              "`tinylm train` (OUT_DIR/ckpt.json and the array file it names).")
    meta = _read_metadata(json_path)
    _check_metadata(meta, json_path)
    return meta


def load_metadata(path) -> dict:
    """The metadata of checkpoint ``path``, checked against its own checksum, without reading
    the array file (what a command needs to decide what it is looking at)."""
    meta = _verified_metadata(metadata_path(path))
    return {k: v for k, v in meta.items() if k not in _BOOKKEEPING}


def load_checkpoint(path) -> tuple[dict, dict]:
    """Read checkpoint ``path`` -> (arrays: name -> NumPy array, meta: dict).

    Raises CheckpointError naming the file or tensor when anything is missing, damaged or
    edited, and saying how to recover.
    """
    json_path = metadata_path(path)
    meta = _verified_metadata(json_path)
    npz_path = json_path.parent / meta["arrays"]
    if not npz_path.exists():
        raise CheckpointError(f"{npz_path}, the array file named by {json_path.name}, is "
                              "missing; it was deleted or moved. Restore it, or retrain.")
    if sha256_of(npz_path) != meta.get("arrays_sha256"):
        raise CheckpointError(f"{npz_path} does not match the sha256 recorded in "
                              f"{json_path.name}: the array file is corrupt or was replaced. "
                              "Restore it, or retrain.")
    return _read_arrays(npz_path), {k: v for k, v in meta.items() if k not in _BOOKKEEPING}


def _read_arrays(npz_path: Path) -> dict:
    try:
        archive = numpy.load(npz_path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(f"{npz_path} cannot be opened as an .npz archive ({e}).") from e
    arrays = {}
    with archive:
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except Exception as e:  # noqa: BLE001 - any decoding failure names the tensor
                raise CheckpointError(f"tensor {name!r} in {npz_path} is corrupt ({e}).") from e
    return arrays


def split_prefix(arrays: dict, prefix: str) -> dict:
    """The entries named ``prefix/...``, with the prefix removed."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}
