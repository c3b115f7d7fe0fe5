"""UnitWriter checks, right before it publishes, that its run still owns the archive (the lock's generation)."""

from pathlib import Path

import pytest

from biomedica.archive import UnitWriter
from biomedica.io.lock import LOCK_NAME, ArchiveLock, LostArchiveLock
from biomedica.testing.processes import LockHolderProcess

FIGURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "images" / "pmc_package_figures" / \
    "PMC10118017" / "fpls-14-1154535-g001.jpg"



def test_a_writer_whose_run_lost_the_lock_publishes_nothing(tmp_path, make_figure):
    root = tmp_path / "archive"
    holder = LockHolderProcess(root)
    token = holder.token
    writer = UnitWriter(root, 3, owner=token)  # its run owns the archive now
    writer.add_sample(make_figure("PMC10118017_000"), FIGURE.read_bytes(), "jpg")
    assert [p.name for p in (root / "commercial").iterdir() if p.name.startswith(".000003.tar.tmp-")]

    holder.release()
    with ArchiveLock(root, "biomedica ingest"):  # another run took the archive
        with pytest.raises(LostArchiveLock, match="another run owns"):
            writer.commit()
        assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [LOCK_NAME]
    writer.abort()  # nothing left to do


def test_a_writer_of_the_owning_run_publishes(tmp_path, make_figure):
    root = tmp_path / "archive"
    with ArchiveLock(root, "biomedica ingest") as lock:
        writer = UnitWriter(root, 0, owner=lock.token)
        writer.add_sample(make_figure("PMC10118017_000"), FIGURE.read_bytes(), "jpg")
        assert writer.commit().samples == {"commercial": 1}
