"""compare_archives: equal archives give no difference; each kind of damage is named with its keys."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.testing.archive_compare import compare_archives, diff_archives, read_archive, samples_lost
from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A 6-article demo corpus ingested twice: 2 articles per unit and 3 per unit."""
    root = tmp_path_factory.mktemp("compare")
    corpus = root / "corpus"
    write_demo_corpus(corpus, DemoCorpusConfig(n_articles=6, seed=3, image_size=64))
    archives = []
    for per_unit in (2, 3):
        out = root / f"archive-{per_unit}"
        run_ingest(IngestConfig(input=corpus, output=out, articles_per_unit=per_unit, progress=False))
        archives.append(out)
    return corpus, archives[0], archives[1]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_equal_archives_and_other_unit_layouts(built, tmp_path):
    _, by2, by3 = built
    assert compare_archives(by2, _copy(by2, tmp_path / "copy"), same_units=True) == []
    assert compare_archives(by2, by3) == []  # same content, other units
    (placement,) = diff_archives(by2, by3, same_units=True)
    assert placement.what.startswith("shard files that differ") and not placement.loss
    assert samples_lost([placement]) == 0


def test_a_unit_without_its_marker_is_missing(built, tmp_path):
    _, by2, _ = built
    copy = _copy(by2, tmp_path / "copy")
    keys = {k for k, s in read_archive(by2).samples.items() if s.unit_id == 1}
    (copy / "_units" / "000001.json").unlink()
    differences = diff_archives(by2, copy)
    assert [d.what for d in differences] == ["samples missing", "articles missing"]
    assert set(differences[0].keys) == keys and samples_lost(differences) == len(keys) > 0
    assert compare_archives(by2, copy)[0].startswith(f"samples missing: {len(keys)} (")


def test_a_changed_image_and_a_changed_article_row(built, tmp_path):
    _, by2, _ = built
    copy = _copy(by2, tmp_path / "copy")
    tar_path = next(p for p in sorted(copy.glob("*/000000.tar")))
    with tarfile.open(tar_path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    changed_key = None
    with tarfile.open(tar_path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in members:
            if changed_key is None and info.name.endswith((".jpg", ".png")):
                changed_key, data = info.name.rsplit(".", 1)[0], data[:-1] + bytes([data[-1] ^ 1])
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    part = copy / "articles" / "part-000002.parquet"
    table = pq.read_table(part)
    rows = table.to_pylist()
    rows[0]["title"] = "another title"
    rows[1]["source"] = "/somewhere/else.nxml"  # where the XML was read: ignored by default
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), part)

    lines = compare_archives(by2, copy)
    assert lines == [
        f"samples with a different image sha256: 1 ({changed_key})",
        f"samples whose index sha256 is not their image's: 1 ({changed_key})",
        f"articles with a different row: 1 ({rows[0]['article_id']})",
    ]
    assert len(compare_archives(by2, copy, ignore_fields=frozenset())) == 3
    assert "articles with a different row: 2" in compare_archives(by2, copy, ignore_fields=frozenset())[-1]


def test_a_unit_published_twice_gives_duplicate_keys(built, tmp_path):
    _, by2, _ = built
    copy = _copy(by2, tmp_path / "copy")
    marker = json.loads((copy / "_units" / "000000.json").read_text())
    for group in marker["shards"]:
        for ext in ("tar", "parquet"):
            shutil.copy(copy / group / f"000000.{ext}", copy / group / f"000009.{ext}")
        marker["shards"][group]["name"] = "000009.tar"
    shutil.copy(copy / "articles" / "part-000000.parquet", copy / "articles" / "part-000009.parquet")
    marker["unit_id"] = 9
    (copy / "_units" / "000009.json").write_text(json.dumps(marker))
    differences = diff_archives(by2, copy)
    assert [d.what for d in differences] == ["duplicate sample keys", "duplicate article rows"]
    assert samples_lost(differences) == sum(marker["samples"].values())


def test_an_unreadable_archive_is_one_line(built, tmp_path):
    _, by2, _ = built
    copy = _copy(by2, tmp_path / "copy")
    (copy / "_units" / "000000.json").write_text("{not json")
    (line,) = compare_archives(by2, copy)
    assert line.startswith("archive unreadable (") and "000000.json" in line
