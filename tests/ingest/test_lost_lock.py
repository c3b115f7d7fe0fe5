"""A pool worker of a run that lost the archive lock publishes nothing and leaves the new owner's files alone."""


import pytest

from biomedica.exec import run_units
from biomedica.images import ImageConfig
from biomedica.ingest.pipeline import UnitContext, plan_units, run_unit
from biomedica.ingest.sources.directory import DirectorySource
from biomedica.io.lock import LOCK_NAME, ArchiveLock, LostArchiveLock
from biomedica.testing.processes import LockHolderProcess


def test_workers_whose_lock_changed_hands_do_not_publish(demo_corpus, tmp_path):
    root = tmp_path / "archive"
    holder = LockHolderProcess(root)
    stale = holder.token
    holder.release()  # that run ends; the next one takes the archive

    source = DirectorySource(demo_corpus)
    units = plan_units(source.list_items(), 4)[:2]
    with ArchiveLock(root, "biomedica ingest"):
        mine = root / "commercial" / "000000.tar"  # the new owner is publishing unit 0 (no marker yet)
        mine.parent.mkdir(parents=True)
        mine.write_bytes(b"the new owner's shard")
        context = UnitContext(source, root.resolve(), ImageConfig(), owner=stale)
        with pytest.raises(LostArchiveLock, match=f"lost the archive lock; another run owns {root.resolve()} now"):
            list(run_units(run_unit, units, workers=2, context=context))
        assert mine.read_bytes() == b"the new owner's shard"
        assert not (root / "_units").exists()
        assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
            LOCK_NAME, "commercial/000000.tar"]
