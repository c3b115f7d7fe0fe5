"""Crash-safe file publication: write under a temporary name, fsync, rename into place.

A reader (or a resumed run) therefore sees either the old state or the complete new
file, never half of one; `os.replace` is atomic within one directory on POSIX. Every
writer of the project goes through this module: `atomic_path` / `atomic_open` for
writers that need a path or a file (torch.save, np.save, tar streams), the
`write_*_atomic` helpers for data already in memory, and `temp_path` + `fsync_file` +
`publish` for a unit that publishes several files together.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_serial = itertools.count()  # next() is atomic: no two calls of one process get the same number
_TEMP_NAME = re.compile(r"\.(?P<final>.+)\.tmp-(?P<pid>[0-9]+)-[0-9]+-[0-9a-f]{4}")


def temp_path(final: Path) -> Path:
    """A hidden temporary name beside `final`, unique per call: `.000000.tar.tmp-<pid>-<serial>-<random>`.

    The pid tells which process left a stray temporary; the serial keeps two threads of
    one process apart, the random part two hosts that share a file system and a pid.
    """
    final = Path(final)
    return final.with_name(f".{final.name}.tmp-{os.getpid()}-{next(_serial)}-{secrets.token_hex(2)}")


def temp_writer_pid(path: Path) -> int | None:
    """The pid in a `temp_path` name (the process that wrote it); None for any other name."""
    match = _TEMP_NAME.fullmatch(Path(path).name)
    return int(match["pid"]) if match else None


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` runs on this host (one we may not signal counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the `temp_path` files directly in `folder` whose writing process is gone; return them.

    Only names `temp_path` makes are touched, and only when their pid runs no process on this
    host. Call it while holding the folder's exclusive write lock: no writer of another host
    can then be at work there (its pid would mean nothing here).
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        pid = temp_writer_pid(Path(entry.name))
        if pid is None or pid_alive(pid) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed.append(Path(entry.path))
    if removed:
        fsync_dir(Path(folder))
    return removed


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
    fsync_dir(Path(final).parent)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path to write `final` under; fsync and publish it on success, remove it on failure."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    try:
        yield tmp
        fsync_file(tmp)
        publish(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(final: Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file for writing `final` (np.save, torch.save, json.dump); published on success."""
    with atomic_path(final) as tmp, open(tmp, mode, encoding=encoding) as handle:
        yield handle


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is either absent/old or complete."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write `text` to `path` so that `path` is either absent/old or complete."""
    write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: Path, obj: Any) -> None:
    """Atomically write `obj` as indented, key-sorted UTF-8 JSON (stable diffs, readable by eye)."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_parquet_atomic(path: Path, table: Any, **options: Any) -> None:
    """Write a pyarrow Table as Parquet (`options` go to `pq.write_table`), so `path` is absent/old or complete."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **options)
