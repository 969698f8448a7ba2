"""A Hugging Face checkpoint directory on disk: ``config.json`` + safetensors (interop).

    config, tensors = read_hf_dir(folder)         # dict, {name: NumPy array}
    write_hf_dir(folder, config, tensors)         # atomically, config.json last

What ``save_pretrained`` writes and ``from_pretrained`` reads:

    folder/config.json                  the architecture: model_type, architectures, sizes
    folder/model.safetensors            the tensors, one file ...
    folder/model.safetensors.index.json ... or an index {"weight_map": {name: shard file}}
    folder/model-00001-of-0000N.safetensors   and its shards (large models)

safetensors is a JSON header (name -> dtype, shape, byte offsets) followed by the raw
little-endian bytes: no pickle, nothing executed on load. The tensors are read with the
``safetensors`` library's NumPy API (no torch). NumPy has no bfloat16, so a BF16 tensor
(common on the Hub) is read from the file's bytes here and widened to float32 exactly:
a bfloat16 is the top 16 bits of a float32. A folder holding only ``pytorch_model.bin``
(a pickle) is refused with the fix: re-save it with ``safe_serialization=True``.

Writing follows tinylm/checkpoint.py: each file goes to a temporary name beside its place,
is flushed to disk, then renamed over it; the tensors first, ``config.json`` last, so a
folder with a new config.json always has its tensors.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path

import numpy
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from tinylm.files import write_text_atomically

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
PICKLED_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
HF_METADATA = {"format": "pt"}      # what transformers checks a safetensors file says


class HFFormatError(ValueError):
    """A Hugging Face checkpoint tinylm cannot read or does not support; the message names
    the file, field or tensor and the fix."""


# -- reading ------------------------------------------------------------------------------
def read_config(folder) -> dict:
    """folder/config.json as a dict."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise HFFormatError(f"{path} does not exist; a Hugging Face checkpoint directory holds "
                            "config.json and model.safetensors (what save_pretrained writes).")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise HFFormatError(f"{path} is not valid JSON ({e}).") from e
    if not isinstance(config, dict):
        raise HFFormatError(f"{path} holds a JSON {type(config).__name__}, not an object.")
    return config


def weight_files(folder) -> list[Path]:
    """The safetensors file(s) of ``folder``: model.safetensors, or the shards its index
    names."""
    folder = Path(folder)
    if (folder / WEIGHTS_FILE).is_file():
        return [folder / WEIGHTS_FILE]
    if (folder / INDEX_FILE).is_file():
        return _shards(folder / INDEX_FILE)
    pickled = [name for name in PICKLED_FILES if (folder / name).exists()]
    fix = (f" It has {pickled[0]}, a pickle, which tinylm never loads: re-save it with "
           "model.save_pretrained(dir, safe_serialization=True)." if pickled else "")
    raise HFFormatError(f"{folder} has neither {WEIGHTS_FILE} nor {INDEX_FILE}.{fix}")


def _shards(index_path: Path) -> list[Path]:
    try:
        weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise HFFormatError(f"{index_path} is not a safetensors index (a JSON object with a "
                            f"'weight_map' of tensor name -> file): {e!r}.") from e
    bad = [n for n in names if not isinstance(n, str) or "/" in n or "\\" in n]
    if bad:
        raise HFFormatError(f"{index_path} names shard files outside its folder: {bad[:3]}.")
    missing = [n for n in names if not (index_path.parent / n).is_file()]
    if missing:
        raise HFFormatError(f"{index_path} names shards that are missing: {missing[:3]}; "
                            "download the whole checkpoint.")
    return [index_path.parent / n for n in names]


def read_tensors(path) -> dict:
    """One safetensors file -> {name: NumPy array} (BF16 widened to float32)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="np") as f:
            dtypes = {name: f.get_slice(name).get_dtype() for name in f.keys()}
        if "BF16" not in dtypes.values():
            return dict(load_file(str(path)))
        return _read_with_bfloat16(path)
    except HFFormatError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoding failure names the file
        raise HFFormatError(f"{path} cannot be read as safetensors ({type(e).__name__}: "
                            f"{e}); the file is truncated or not a safetensors file.") from e


def _read_with_bfloat16(path: Path) -> dict:
    """The tensors of a file holding BF16 ones: its header read here, every tensor sliced
    from the bytes after it; BF16 [..] -> float32 by putting its 16 bits on top."""
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    body = memoryview(data)[8 + header_len:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        raw = numpy.frombuffer(body[start:end], dtype=_NUMPY_DTYPES[entry["dtype"]])
        if entry["dtype"] == "BF16":
            raw = (raw.astype(numpy.uint32) << 16).view(numpy.float32)
        tensors[name] = raw.reshape(entry["shape"]).copy()
    return tensors


_NUMPY_DTYPES = {"BF16": "<u2", "F16": "<f2", "F32": "<f4", "F64": "<f8", "I64": "<i8",
                 "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_hf_dir(folder) -> tuple[dict, dict]:
    """(config, {tensor name: array}) of a Hugging Face checkpoint directory."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HFFormatError(f"{folder} is not a directory; give the folder that "
                            "save_pretrained wrote (config.json + model.safetensors).")
    config = read_config(folder)
    tensors = {}
    for path in weight_files(folder):
        for name, value in read_tensors(path).items():
            if name in tensors:
                raise HFFormatError(f"tensor {name!r} appears in two shards of {folder}.")
            tensors[name] = value
    return config, tensors


# -- writing ------------------------------------------------------------------------------
def write_tensors(path, tensors: dict) -> None:
    """{name: array} -> one safetensors file at ``path``, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: numpy.ascontiguousarray(v) for k, v in tensors.items()}, tmp,
                  metadata=HF_METADATA)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_hf_dir(folder, config: dict, tensors: dict) -> Path:
    """Write ``config`` and ``tensors`` as folder/config.json + folder/model.safetensors
    (tensors first, config.json last, each atomically) -> the folder. An index of shards
    left by an earlier save would shadow nothing (model.safetensors is read first), but it is
    removed so the folder holds one checkpoint."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise HFFormatError(f"{folder} exists and is not a directory.")
    write_tensors(folder / WEIGHTS_FILE, tensors)
    (folder / INDEX_FILE).unlink(missing_ok=True)
    write_text_atomically(folder / CONFIG_FILE,
                          json.dumps(config, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return folder
