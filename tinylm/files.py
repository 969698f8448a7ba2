"""Files that are read with a checksum or written so that a crash never leaves half of one
(layer 1): the helpers the data, checkpoint and word-vector modules share.

    digest = sha256_of(path)               # hex sha256, read in 1 MiB chunks
    write_text_atomically(path, text)      # temporary file, fsync, one os.replace
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def sha256_of(path) -> str:
    """The file's sha256 as hex, read in 1 MiB chunks so a large file never sits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_text_atomically(path, text: str) -> None:
    """Write ``text`` (UTF-8, "\\n" line ends) to a temporary file beside ``path``, force it
    to disk, rename it over ``path``: a reader sees the old file or the new one, never a
    partial one. The temporary file is removed if anything fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
