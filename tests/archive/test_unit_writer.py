import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from biomedica.archive import (
    UnitAlreadyComplete,
    UnitWriter,
    clean_unit,
    completed_units,
    finalize_archive,
    incomplete_units,
    is_unit_complete,
    iter_samples,
    read_shard_index,
)
from biomedica.records import ErrorRecord

HERE = Path(__file__).resolve().parent

CRASHING_WRITER = """
import os, sys
sys.path.insert(0, sys.argv[3])
from conftest import unit_inputs
import biomedica.archive.unit_writer as unit_writer
root, mode = sys.argv[1], sys.argv[2]
inputs = unit_inputs(1)
writer = unit_writer.UnitWriter(root, 1)
for n, sample in enumerate(inputs.samples):
    writer.add_sample(sample.record, sample.image, sample.ext)
    if mode == "mid-samples" and n == 1:
        os._exit(3)  # the worker dies: no abort, no cleanup
for article in inputs.articles:
    writer.add_article(article)
if mode == "before-marker":
    unit_writer.write_json_atomic = lambda path, obj: os._exit(3)  # dies after publishing, before the marker
writer.commit()
"""


def _crash_writing_unit_1(root: Path, mode: str) -> None:
    result = subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(root), mode, str(HERE)], capture_output=True)
    assert result.returncode == 3, result.stderr.decode()


def _unit_files(root: Path, unit_id: int) -> dict[str, bytes]:
    stats = completed_units(root)[unit_id]
    return {name: (root / name).read_bytes() for name in stats.files}


def test_commit_publishes_files_then_marker(tmp_path, write_unit):
    root = tmp_path / "archive"
    stats = write_unit(root, 0)
    assert (stats.unit_id, stats.articles, stats.errors) == (0, 2, 0)
    assert stats.samples == {"commercial": 3, "other": 2}
    assert set(stats.files) == {
        "commercial/000000.tar", "commercial/000000.parquet", "other/000000.tar", "other/000000.parquet",
        "articles/part-000000.parquet", "errors/part-000000.parquet",
    }
    assert stats.bytes == sum((root / name).stat().st_size for name in stats.files)
    assert stats.shards["other"].samples == 2 and stats.shards["other"].name == "000000.tar"
    assert stats.extra == {"articles_listed": 2}
    marker = json.loads((root / "_units" / "000000.json").read_text())
    assert marker["samples"] == {"commercial": 3, "other": 2} and marker["schema_version"] == "1.0"
    assert not (root / "noncommercial").exists()
    assert [p.name for p in root.rglob(".*")] == []  # no temporaries left
    assert is_unit_complete(root, 0) and not is_unit_complete(root, 1)


def test_articles_and_errors_parts_are_always_written(tmp_path, write_unit, make_figure):
    root = tmp_path / "archive"
    write_unit(root, 1)
    articles = pq.read_table(root / "articles" / "part-000001.parquet").to_pylist()
    assert [a["article_id"] for a in articles] == ["PMC1175969", "PMC2000001"]
    assert articles[0]["journal"] == "Genome Biol" and articles[0]["authors"] == []
    errors = pq.read_table(root / "errors" / "part-000001.parquet").to_pylist()
    assert errors == [{"id": "PMC2000001_001", "stage": "ingest", "kind": "image-missing",
                       "message": "graphic g2 not found in the package", "source": "PMC2000001.tar.gz"}]
    empty = UnitWriter(root, 2).commit()
    assert (empty.articles, empty.samples, empty.errors, empty.shards) == (0, {}, 0, {})
    assert pq.read_table(root / "errors" / "part-000002.parquet").num_rows == 0
    assert pq.read_table(root / "articles" / "part-000002.parquet").schema.names[0] == "article_id"


def test_duplicate_and_bad_keys_become_error_rows(tmp_path, make_figure):
    root = tmp_path / "archive"
    writer = UnitWriter(root, 0)
    writer.add_sample(make_figure("PMC1_000"), b"\xff\xd8a", "jpg")
    writer.add_sample(make_figure("PMC1_000", caption="second"), b"\xff\xd8b", "jpg")
    writer.add_sample(make_figure("10.7554/eLife.1_000"), b"\xff\xd8c", "jpg")
    writer.add_error(ErrorRecord(id="PMC1", stage="ingest", kind="xml-syntax", message="m"))
    stats = writer.commit()
    assert stats.samples == {"commercial": 1} and stats.errors == 3
    kinds = pq.read_table(root / "errors" / "part-000000.parquet").column("kind").to_pylist()
    assert kinds == ["duplicate-key", "bad-key", "xml-syntax"]
    assert [r["caption"] for r, _ in iter_samples(root)] == ["Caption of PMC1_000."]


def test_unknown_license_group_is_refused(tmp_path, make_figure):
    with UnitWriter(tmp_path, 0) as writer:
        with pytest.raises(ValueError, match="license_group 'CC BY' is not one of"):
            writer.add_sample(make_figure("PMC1_000", license_group="CC BY"), b"x", "jpg")


def test_exception_inside_with_block_leaves_nothing(tmp_path, make_figure):
    root = tmp_path / "archive"
    with pytest.raises(RuntimeError, match="boom"):
        with UnitWriter(root, 5) as writer:
            writer.add_sample(make_figure("PMC1_000"), b"\xff\xd8a", "jpg")
            assert any(p.name.startswith(".000005.tar.tmp-") for p in (root / "commercial").iterdir())
            raise RuntimeError("boom")
    assert [p for p in root.rglob("*") if p.is_file()] == []
    with pytest.raises(RuntimeError, match="aborted"):
        writer.add_article(None)


def test_completed_unit_is_never_rewritten(two_unit_archive, write_unit):
    root = two_unit_archive
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and p.parent.name != root.name}
    shard_files = [p for p in before if p.suffix == ".tar"]
    assert len(shard_files) == 4
    with pytest.raises(UnitAlreadyComplete, match="skip it"):
        UnitWriter(root, 0)
    with pytest.raises(UnitAlreadyComplete, match="Delete that marker first"):
        clean_unit(root, 1)
    finalize_archive(root, {}, {})  # re-finalizing rewrites only sizes.json / manifest.json
    after = {p: p.stat().st_mtime_ns for p in before}
    assert {p: after[p] for p in before if p.name != "sizes.json"} == {
        p: t for p, t in before.items() if p.name != "sizes.json"
    }


def test_worker_dying_mid_unit_is_cleaned_and_redone_identically(tmp_path, two_unit_archive, write_unit):
    crashed = tmp_path / "crashed"
    write_unit(crashed, 0)
    _crash_writing_unit_1(crashed, "mid-samples")
    leftovers = sorted(p.name for p in (crashed / "commercial").iterdir())
    assert "000001.tar" not in leftovers and any(n.startswith(".000001.tar.tmp-") for n in leftovers)
    assert not is_unit_complete(crashed, 1) and incomplete_units(crashed) == [1]
    assert [r["key"] for r, _ in iter_samples(crashed)][-1] == "PMC1064083_001"  # only unit 0 is read

    stats = write_unit(crashed, 1)  # UnitWriter cleans the partial attempt first
    assert stats.samples == {"commercial": 2, "noncommercial": 1}
    assert incomplete_units(crashed) == []
    assert [p.name for p in crashed.rglob(".*")] == []
    assert _unit_files(crashed, 1) == _unit_files(two_unit_archive, 1)  # byte-identical tars and Parquet


def test_death_after_publishing_before_marker_is_cleaned(tmp_path, two_unit_archive, write_unit):
    crashed = tmp_path / "crashed"
    write_unit(crashed, 0)
    _crash_writing_unit_1(crashed, "before-marker")
    assert (crashed / "commercial" / "000001.tar").is_file()
    assert not is_unit_complete(crashed, 1) and incomplete_units(crashed) == [1]
    assert set(read_shard_index(crashed).column("key").to_pylist()).isdisjoint({"PMC1175969_000"})
    removed = clean_unit(crashed, 1)
    assert {p.relative_to(crashed).as_posix() for p in removed} == {
        "commercial/000001.tar", "commercial/000001.parquet", "noncommercial/000001.tar",
        "noncommercial/000001.parquet", "articles/part-000001.parquet", "errors/part-000001.parquet",
    }
    write_unit(crashed, 1)
    assert _unit_files(crashed, 1) == _unit_files(two_unit_archive, 1)
    with tarfile.open(crashed / "noncommercial" / "000001.tar") as tar:
        assert tar.getnames() == ["PMC2000001_000.png", "PMC2000001_000.txt", "PMC2000001_000.json"]


def test_image_bytes_go_to_disk_as_they_arrive(tmp_path, all_samples):
    sample = all_samples["PMC10118017_001"]
    writer = UnitWriter(tmp_path, 0)
    writer.add_sample(sample.record, sample.image, "jpg")
    (temporary,) = (tmp_path / "commercial").glob(".000000.tar.tmp-*")
    assert temporary.stat().st_size >= len(sample.image) == 84576  # streamed, not buffered until commit
    writer.abort()
    assert list((tmp_path / "commercial").iterdir()) == []
