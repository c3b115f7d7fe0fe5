"""Removing temporaries whose writer is gone: only biomedica's own temp names, only of dead processes."""

import os
import subprocess
import sys

from biomedica.archive.leftovers import WRITTEN_DIRS, remove_leftovers
from biomedica.io.atomic import atomic_path, remove_stale_temporaries, temp_path, temp_writer_pid


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout)


def test_temp_names_carry_the_writers_pid(tmp_path):
    assert temp_writer_pid(temp_path(tmp_path / "000001.tar")) == os.getpid()
    for name in (".000001.tar.tmp-12", ".000001.tar.tmp-1-2-xyz1", "000001.tar.tmp-1-2-abcd", ".x.tmp-a-1-abcd",
                 ".000001.tar", "sizes.json"):
        assert temp_writer_pid(tmp_path / name) is None, name


def test_only_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = _dead_pid()
    stale = [tmp_path / f".sizes.json.tmp-{dead}-0-abcd", tmp_path / f".000002.tar.tmp-{dead}-17-0f0f"]
    kept = [tmp_path / f".manifest.json.tmp-{os.getpid()}-3-abcd",  # its writer runs
            tmp_path / ".000002.tar.tmp-x", tmp_path / "notes.txt", tmp_path / f"sizes.json.tmp-{dead}-0-abcd"]
    for path in stale + kept:
        path.write_bytes(b"x")
    (tmp_path / f".dir.tmp-{dead}-0-abcd").mkdir()  # not a file: kept
    (tmp_path / f".link.tmp-{dead}-0-abcd").symlink_to(tmp_path / "notes.txt")  # not a plain file: kept
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in kept)
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_remove_leftovers_looks_in_the_archive_folders_only(tmp_path):
    dead = _dead_pid()
    inside = [tmp_path / f".manifest.json.tmp-{dead}-0-abcd"]
    inside += [tmp_path / name / f".x.tmp-{dead}-0-abcd" for name in WRITTEN_DIRS]
    elsewhere = tmp_path / "my-subset" / f".000000.tar.tmp-{dead}-0-abcd"  # another tool's folder
    deeper = tmp_path / "annotations" / "models" / f".m.npz.tmp-{dead}-0-abcd"
    for path in inside + [elsewhere, deeper]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert sorted(remove_leftovers(tmp_path)) == sorted(inside)
    assert elsewhere.exists() and deeper.exists()


def test_sync_folders_are_in_the_swept_list():
    from biomedica.ingest.sync import BUILDS_DIR, RETRACTIONS_DIR

    assert {BUILDS_DIR, RETRACTIONS_DIR} <= set(WRITTEN_DIRS)


def test_a_failed_atomic_write_removes_its_temporary(tmp_path):
    try:
        with atomic_path(tmp_path / "a.json") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []
