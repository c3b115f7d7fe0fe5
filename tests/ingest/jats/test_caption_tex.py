"""caption_tex end to end: ingest writes it to the sample `.json` and the shard index, and archives written
before the column existed still verify, read, select, inspect and grow."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from biomedica.archive.reader import iter_samples, read_shard_index
from biomedica.archive.verify import verify_archive
from biomedica.cli import app
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.select.query import connect
from biomedica.testing.growth import article_folders, copy_articles

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures"
runner = CliRunner()


def _ingest(src: Path, out: Path, per_unit: int = 3):
    return run_ingest(IngestConfig(input=src, output=out, articles_per_unit=per_unit, progress=False))


def _jpeg(seed: int) -> bytes:
    image = Image.new("RGB", (64, 48), (seed * 40 % 256, 90, 160))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def test_ingest_writes_caption_tex_to_json_and_index(tmp_path):
    # the real PMC13170065 XML (figure 4's caption holds MathML) with generated images for its graphics
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(FIXTURES / "pmc_nxml" / "PMC13170065.nxml", src)
    for n in range(1, 6):
        (src / f"RCM-40-e70104-g00{n}.jpg").write_bytes(_jpeg(n))
    out = tmp_path / "archive"
    _ingest(src, out)
    samples = {record["key"]: record for record, _ in iter_samples(out)}
    captions = {r["fig_label"]: r for r in samples.values()}
    figure4 = captions["FIGURE 4"]
    assert figure4["caption"].endswith("function log CV = \u22120.5 log Frequency + 2.")
    assert figure4["caption_tex"].endswith("function $\\log\\mathrm{CV}=-0.5\\log\\text{Frequency}+2$.")
    assert captions["FIGURE 1"]["caption_tex"] is None
    index = {r["key"]: r["caption_tex"] for r in read_shard_index(out, columns=["key", "caption_tex"]).to_pylist()}
    assert index == {key: record["caption_tex"] for key, record in samples.items()}


def _drop_caption_tex(root: Path) -> None:
    """Make `root` an archive as written before caption_tex existed: shard indexes without the column
    (and the unit markers' recorded sizes updated to match, as that version wrote them)."""
    for marker in sorted((root / "_units").glob("*.json")):
        stats = json.loads(marker.read_text())
        for name in list(stats["files"]):
            if name.endswith(".parquet") and name.split("/")[0] in ("commercial", "noncommercial", "other"):
                path = root / name
                table = pq.read_table(path)
                pq.write_table(table.drop_columns(["caption_tex"]), path)
                stats["files"][name] = path.stat().st_size
        marker.write_text(json.dumps(stats))


@pytest.mark.slow
def test_archive_without_caption_tex_verifies_reads_and_grows(demo_corpus, tmp_path):
    articles = article_folders(demo_corpus)
    src = copy_articles(articles[::2], tmp_path / "src")
    out = tmp_path / "archive"
    _ingest(src, out)
    _drop_caption_tex(out)
    assert all("caption_tex" not in pq.read_schema(p).names for p in out.glob("*/[0-9]*.parquet"))
    assert verify_archive(out) == []
    old = read_shard_index(out)
    assert old.column("caption_tex").null_count == old.num_rows > 0

    copy_articles(articles[1::2], src)
    grown = _ingest(src, out)  # incremental: new units are written with the column
    assert grown.growth_line == "6 new documents, 0 changed, 0 removed, 6 unchanged"
    assert verify_archive(out) == []
    files = sorted(out.glob("*/[0-9]*.parquet"))
    assert {"caption_tex" in pq.read_schema(p).names for p in files} == {True, False}  # a mixed archive
    index = read_shard_index(out)
    assert index.num_rows == old.num_rows + sum(
        pq.read_metadata(p).num_rows for p in files if "caption_tex" in pq.read_schema(p).names
    )
    assert read_shard_index(out, columns=["key", "caption_tex"]).num_rows == index.num_rows
    connection, _ = connect(out)
    assert connection.execute("SELECT count(*), count(caption_tex) FROM samples").fetchone() == (index.num_rows, 0)
    report = runner.invoke(app, ["inspect", str(out)])
    assert report.exit_code == 0, report.output
