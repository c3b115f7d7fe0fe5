import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from biomedica.io import atomic
from biomedica.io.atomic import (
    atomic_open,
    atomic_path,
    temp_path,
    write_bytes_atomic,
    write_json_atomic,
    write_parquet_atomic,
    write_text_atomic,
)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def test_temp_names_are_unique_across_threads(tmp_path):
    final = tmp_path / "000000.tar"
    names: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        mine = [temp_path(final).name for _ in range(2000)]
        with lock:
            names.extend(mine)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == len(names) == 16000
    assert all(n.startswith(f".000000.tar.tmp-{os.getpid()}-") for n in names)  # stray temporaries name their pid


def test_threads_writing_one_file_never_share_a_temporary(tmp_path):
    final = tmp_path / "table.bin"
    payloads = [bytes([i]) * 200_000 for i in range(12)]
    failures: list[BaseException] = []

    def write(payload: bytes) -> None:
        try:
            for _ in range(10):
                write_bytes_atomic(final, payload)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert final.read_bytes() in payloads  # one writer's complete bytes, never a mix
    assert _leftovers(tmp_path) == []


def test_processes_writing_one_file_never_share_a_temporary(tmp_path):
    final = tmp_path / "settings.json"
    code = (
        "import sys; from biomedica.io.atomic import write_json_atomic\n"
        "for i in range(200): write_json_atomic(sys.argv[1], {'writer': sys.argv[2], 'i': i, 'pad': 'x' * 5000})\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(final), str(n)]) for n in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert final.read_text(encoding="utf-8").count('"writer"') == 1
    assert _leftovers(tmp_path) == []


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    final = tmp_path / "sub" / "weights.bin"
    write_bytes_atomic(final, b"old")
    with pytest.raises(RuntimeError, match="killed mid-write"):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"half of the new")
            raise RuntimeError("killed mid-write")
    assert final.read_bytes() == b"old"
    assert _leftovers(final.parent) == []
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(tmp_path / "new.npy") as handle:
            np.save(handle, np.zeros(3))
            raise KeyboardInterrupt
    assert not (tmp_path / "new.npy").exists() and _leftovers(tmp_path) == []


def test_data_is_fsynced_before_the_rename_and_the_rename_is_made_durable(tmp_path, monkeypatch):
    events: list[tuple[str, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    final = tmp_path / "part-000000.parquet"
    write_parquet_atomic(final, pa.table({"key": ["a", "b"]}), compression="zstd")
    (replaced,) = [e for e in events if e[0] == "replace"]
    tmp = replaced[1]
    assert replaced[2] == str(final) and Path(tmp).name.startswith(".part-000000.parquet.tmp-")
    assert events.index(("fsync", tmp)) < events.index(replaced) < events.index(("fsync", str(tmp_path)))
    assert pq.read_table(final).column("key").to_pylist() == ["a", "b"]
    assert pq.ParquetFile(final).metadata.row_group(0).column(0).compression == "ZSTD"


def test_helpers_write_what_they_say(tmp_path):
    write_text_atomic(tmp_path / "keys.txt", "a\nb\n")
    assert (tmp_path / "keys.txt").read_text(encoding="utf-8") == "a\nb\n"
    write_json_atomic(tmp_path / "m.json", {"b": 1, "a": "é"})
    assert (tmp_path / "m.json").read_text(encoding="utf-8") == '{\n  "a": "é",\n  "b": 1\n}\n'
    with atomic_open(tmp_path / "v.npy") as handle:  # np.save on a handle: no ".npy" added to the temporary
        np.save(handle, np.arange(4))
    assert np.load(tmp_path / "v.npy").tolist() == [0, 1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.txt", "m.json", "v.npy"]


def test_old_import_path_is_the_same_module():
    import biomedica.archive.atomic_files as old

    assert old is atomic
