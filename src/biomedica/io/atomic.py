"""Crash-safe file publication: write under a temporary name, fsync, rename into place.

A reader (or a resumed run) therefore sees either the old state or the complete new
file, never half of one; `os.replace` is atomic within one directory on POSIX.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any



def temp_path(final: Path) -> Path:
    """A hidden temporary name beside `final`, unique per process: `.000000.tar.tmp-<pid>`."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


def fsync_file(path: Path) -> None:
    """Flush a closed file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make renames inside `directory` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish(temporary: Path, final: Path) -> None:
    """Rename an fsync'd temporary over `final` and make the rename durable."""
    os.replace(temporary, final)
    fsync_dir(final.parent)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is either absent/old or complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Atomically write `obj` as indented, key-sorted UTF-8 JSON (stable diffs, readable by eye)."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def write_parquet_atomic(path: Path, table: Any) -> None:
    """Write a pyarrow Table as Parquet so that `path` is either absent/old or complete."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        pq.write_table(table, tmp)
        fsync_file(tmp)
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
