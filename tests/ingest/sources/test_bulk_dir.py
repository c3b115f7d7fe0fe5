"""The `dir` source reading Europe PMC bulk files: one item per article, units cut by article, growth.

The bulk files hold the real articles of the PMC Cloud fixture corpus (tests/ingest/conftest.py)
with their real images beside the file, and classic OA nxml articles without images.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from biomedica.archive.reader import iter_samples
from biomedica.archive.unit_writer import completed_units
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.ingest.sources.directory import DirectorySource

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures"
NXML = sorted((FIXTURES / "pmc_nxml").glob("*.nxml"))


def raw_article(data: bytes) -> bytes:
    """A file's bytes from its `<article` start tag on, as Europe PMC copies them into a bulk file."""
    at = data.find(b"<article")
    while data[at + 8 : at + 9] not in (b" ", b">", b"\n", b"\t", b"\r"):
        at = data.find(b"<article", at + 1)
    return data[at:].rstrip()


def write_bulk(path: Path, bodies: list[bytes], gz: bool = False) -> Path:
    data = b"<articles>\n" + b"\n".join(bodies) + b"\n</articles>\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def _ingest(src: Path, out: Path, per_unit: int = 3, **kwargs):
    return run_ingest(IngestConfig(input=src, output=out, articles_per_unit=per_unit, progress=False, **kwargs))


def _samples(root: Path) -> dict[str, tuple[str, str]]:
    """key -> (caption, sha256 of the image) of every sample a reader gives."""
    return {r["key"]: (r["caption"], hashlib.sha256(image).hexdigest()) for r, image in iter_samples(root)}


def _shard_files(root: Path) -> dict[str, bytes]:
    files = [p for g in ("commercial", "noncommercial", "other") for p in sorted((root / g).glob("[0-9]*.*"))]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def _errors(root: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return [row for p in sorted((root / "errors").glob("part-*.parquet")) for row in pq.read_table(p).to_pylist()]


@pytest.fixture(scope="module")
def seven() -> list[bytes]:
    return [raw_article(p.read_bytes()) for p in NXML[:7]]


def test_a_bulk_file_lists_one_item_per_article_and_is_cut_into_units(tmp_path, seven):
    write_bulk(tmp_path / "in" / "PMC1_PMC9.xml", seven)
    write_bulk(tmp_path / "in" / "gz" / "PMC10_PMC19.xml.gz", seven[:2], gz=True)
    (tmp_path / "in" / "single.nxml").write_bytes(NXML[8].read_bytes())
    source = DirectorySource(tmp_path / "in")
    items = source.list_items()
    assert items == [f"PMC1_PMC9.xml#{i:06d}" for i in range(7)] + [
        "gz/PMC10_PMC19.xml.gz#000000", "gz/PMC10_PMC19.xml.gz#000001", "single.nxml"
    ]
    signatures = source.signatures(items)
    assert signatures["PMC1_PMC9.xml#000000"] == signatures["gz/PMC10_PMC19.xml.gz#000000"]  # the article's own bytes
    assert len(set(signatures.values())) == 8
    assert source.describe()["bulk_articles"] == 9
    # items open in any order (a thread reads on from where it stopped, or starts the file again)
    for item_id in ("PMC1_PMC9.xml#000005", "PMC1_PMC9.xml#000002", "gz/PMC10_PMC19.xml.gz#000001", "PMC1_PMC9.xml#000006"):
        index = int(item_id[-6:])
        stem = NXML[index].stem if item_id.startswith("PMC1_") else NXML[1].stem
        assert source.open_item(item_id).parse().articles[0].article.article_id == stem

    out = tmp_path / "archive"
    summary = _ingest(tmp_path / "in", out, per_unit=3)
    assert summary.units_total == 4 and summary.articles == 10  # 10 items by 3: a file of 7 is not one unit
    units = completed_units(out)
    assert [units[u].extra["items"] for u in sorted(units)] == [3, 3, 3, 1]
    # no images were supplied: one image-missing error per figure graphic, nothing else
    assert {e["kind"] for e in _errors(out)} == {"image-missing"}


@pytest.fixture(scope="module")
def bulk_dir(pmc_cloud_corpus, tmp_path_factory) -> Path:
    """The fixture corpus as one bulk file with every article's images beside it."""
    bulk = tmp_path_factory.mktemp("bulkdir")
    write_bulk(bulk / "PMC2329613_PMC13173394.xml", [raw_article(a.xml) for a in pmc_cloud_corpus])
    for article in pmc_cloud_corpus:
        for name, data in article.media.items():
            if not name.endswith(".pdf"):
                (bulk / name).write_bytes(data)
    return bulk


@pytest.mark.slow
def test_bulk_samples_equal_single_files_and_any_worker_count(pmc_cloud_folder, bulk_dir, tmp_path):
    bulk = bulk_dir
    _ingest(pmc_cloud_folder, tmp_path / "single", per_unit=2)
    one = _ingest(bulk, tmp_path / "w1", per_unit=2, workers=1)
    _ingest(bulk, tmp_path / "w2", per_unit=2, workers=2)
    assert one.units_total == 3 and one.articles == 5
    samples = _samples(tmp_path / "w1")
    assert len(samples) > 10 and samples == _samples(tmp_path / "single")
    assert _shard_files(tmp_path / "w1") == _shard_files(tmp_path / "w2")


def test_growth_appends_a_new_bulk_file_and_only_changed_articles(tmp_path, seven):
    src = tmp_path / "in"
    write_bulk(src / "PMC1_PMC5.xml.gz", seven[:5], gz=True)
    out = tmp_path / "archive"
    first = _ingest(src, out, per_unit=2)
    assert (first.documents_new, first.units_total) == (5, 3)

    write_bulk(src / "PMC6_PMC7.xml.gz", seven[5:], gz=True)
    grown = _ingest(src, out, per_unit=2)
    assert grown.growth_line == "2 new documents, 0 changed, 0 removed, 5 unchanged"
    assert grown.units_run == 1 and sorted(completed_units(out)) == [0, 1, 2, 3]

    # a refreshed file: one article edited, the others the same bytes -> only that one is ingested again
    edited = seven[1].replace(b"</article-title>", b" (corrected)</article-title>", 1)
    write_bulk(src / "PMC1_PMC5.xml.gz", [seven[0], edited, *seven[2:5]], gz=True)
    again = _ingest(src, out, per_unit=2)
    assert again.growth_line == "0 new documents, 1 changed, 0 removed, 6 unchanged"
    assert again.units_run == 1

    # a file that shrank: its last articles are removed from the listing (their samples stay)
    write_bulk(src / "PMC1_PMC5.xml.gz", [seven[0], edited, *seven[2:4]], gz=True)
    shrunk = _ingest(src, out, per_unit=2)
    assert shrunk.documents_removed == 1 and shrunk.removed_items == ["PMC1_PMC5.xml.gz#000004"]


def test_a_truncated_bulk_gzip_keeps_the_articles_before_the_break(tmp_path, seven):
    src = tmp_path / "in"
    data = gzip.compress(b"<articles>\n" + b"\n".join(seven[:5]) + b"\n</articles>\n", mtime=0)
    src.mkdir()
    (src / "PMC1_PMC5.xml.gz").write_bytes(data[: len(data) * 3 // 5])
    out = tmp_path / "archive"
    summary = _ingest(src, out, per_unit=2)
    errors = [e for e in _errors(out) if e["kind"] != "image-missing"]
    assert [e["kind"] for e in errors] == ["bulk-truncated"]
    assert "PMC1_PMC5.xml.gz" in errors[0]["message"] and "re-download" in errors[0]["message"]
    assert 0 < summary.articles < 5


def test_a_malformed_article_in_the_middle_of_a_bulk_file_is_one_error(tmp_path, seven):
    src = tmp_path / "in"
    write_bulk(src / "PMC1_PMC3.xml", [seven[0], seven[1].replace(b"</front>", b"</frnt>", 1), seven[2]])
    out = tmp_path / "archive"
    summary = _ingest(src, out, per_unit=5)
    errors = [e for e in _errors(out) if e["kind"] != "image-missing"]
    assert summary.articles == 2
    assert [(e["kind"], e["id"]) for e in errors] == [("xml-syntax", NXML[1].stem)]
    assert "article 1" in errors[0]["message"] and "PMC1_PMC3.xml" in errors[0]["message"]


def test_an_empty_bulk_file_is_reported_not_ignored(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "PMC1_PMC2.xml.gz").write_bytes(gzip.compress(b"<articles>\n</articles>\n"))
    out = tmp_path / "archive"
    _ingest(src, out)
    assert [e["kind"] for e in _errors(out)] == ["no-article"]


def test_a_gzipped_single_article_is_read_like_its_xml(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "PMC1.nxml.gz").write_bytes(gzip.compress(NXML[0].read_bytes()))
    (src / "PMC2.nxml.gz").write_bytes(b"not gzip at all")
    source = DirectorySource(src)
    assert source.list_items() == ["PMC1.nxml.gz", "PMC2.nxml.gz"]
    assert source.open_item("PMC1.nxml.gz").xml == NXML[0].read_bytes()
    out = tmp_path / "archive"
    summary = _ingest(src, out)
    assert summary.articles == 1
    assert "source-unreadable" in {e["kind"] for e in _errors(out)}
