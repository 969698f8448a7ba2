"""Files already verified: a sha256 check that is paid once, not on every run (chapter 02).

    actual = verified_sha256(path, expected, record)   # record: a JSON file, e.g. verified.json
    if actual != expected: ...                         # what a mismatch means is the caller's

A dataset is only trustworthy if its bytes are the ones its sha256 was taken from, so every
file is checked before use. Hashing reads the whole file, though, and most runs use a file
that has not changed since the last one. The record remembers what each file looked like
when it last matched, keyed by its resolved absolute path:

    {"/home/me/data/ptb/ptb.train.txt":
        {"size": 5101618, "mtime_ns": 1733101200123456789, "sha256": "fcea919f..."}}

A file whose size and modification time (in nanoseconds) are those of its entry, and whose
entry holds the sha256 expected now, is taken as verified without being read. Writing to a
file (truncating it, appending, an interrupted copy, an editor's save) changes its size or
its mtime, so a changed file is hashed again; git's index trusts file stats in the same way.
What the record cannot see is a change that keeps the size and the mtime: one that sets the
mtime back on purpose (``touch -d``), or a same-size rewrite within one tick of a coarse
file-system clock right after the check (git calls such entries "racily clean"). It guards
against accidents, not against tampering.

The record is a shortcut, never a source of truth:

* only matches are recorded, and an entry counts only when the file's stat and the expected
  sha256 both agree with it;
* a missing, unreadable or malformed record (not strict JSON: NaN is refused both ways)
  counts as empty, and is rewritten;
* it is written atomically (a temporary file in the same folder, flushed and fsynced, then
  ``os.replace``), so a crash, or two processes writing at once, leave the old record or the
  new one, never half of one (the loser's new entry is lost: its file is hashed again);
* a folder that cannot be written does not stop anything: the file is verified anyway, and
  hashed again next time.
"""

from __future__ import annotations

import json
from pathlib import Path

from tinylm.files import sha256_of, write_text_atomically


def read_record(record: Path) -> dict:
    """The record's entries; anything but a readable, strict JSON object counts as empty."""
    try:
        entries = json.loads(record.read_text(encoding="utf-8"), parse_constant=_not_json)
    except (OSError, ValueError, RecursionError):   # missing, unreadable, not UTF-8, not
        return {}                                   # strict JSON, or nested too deep to parse
    return entries if isinstance(entries, dict) else {}


def _not_json(constant: str):
    """NaN and Infinity are Python's extensions, not JSON: a record holding one is malformed."""
    raise ValueError(f"{constant} is not JSON")


def write_record(record: Path, entries: dict) -> None:
    """Replace the record with ``entries``. A folder that cannot be written is skipped: the
    record only saves time, so failing to save it must not fail the caller."""
    text = json.dumps(entries, indent=1, sort_keys=True, allow_nan=False)
    try:
        write_text_atomically(record, text)
    except OSError:
        pass


def verified_sha256(path: Path, expected: str, record: Path) -> str:
    """The sha256 of ``path``: ``expected`` without reading the file when ``record`` holds an
    entry for it with the same size, mtime and sha256, else computed (and recorded when it
    equals ``expected``). The caller compares the result with ``expected``."""
    key = str(path.resolve())
    # stat before hashing: if the file changes while it is read, its new mtime will not
    # match what is recorded, so the next run hashes it again.
    stat = path.stat()
    seen = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected}
    entries = read_record(record)
    if entries.get(key) == seen:
        return expected
    actual = sha256_of(path)
    if actual == expected:
        write_record(record, {**entries, key: seen})
    elif key in entries:                 # a stale entry: the file changed since it matched
        write_record(record, {k: v for k, v in entries.items() if k != key})
    return actual
