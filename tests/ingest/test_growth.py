"""Growing an archive: reruns append new and changed documents, supersede old copies, never trust a marker blindly."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from biomedica.archive.reader import iter_samples, read_shard_index
from biomedica.cli import app
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.select.query import connect
from biomedica.testing.growth import article_folders, copy_articles

runner = CliRunner()




def _ingest(src: Path, out: Path, per_unit: int = 3, **kwargs):
    return run_ingest(IngestConfig(input=src, output=out, articles_per_unit=per_unit, progress=False, **kwargs))


def _content(root: Path) -> dict[str, str]:
    """key -> sha256 of the image, over the samples a biomedica reader gives (each key once)."""
    found: dict[str, str] = {}
    for record, image in iter_samples(root):
        assert record["key"] not in found, f"{record['key']} read twice"
        found[record["key"]] = hashlib.sha256(image).hexdigest()
    return found


def _shard_files(root: Path) -> dict[str, bytes]:
    """Every shard and shard index, by path: equal dicts = the same tars in the same units."""
    files = [p for g in ("commercial", "noncommercial", "other") for p in sorted((root / g).glob("[0-9]*.*"))]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_added_documents_are_appended_after_the_last_unit_and_equal_a_clean_build(demo_corpus, tmp_path):
    articles = article_folders(demo_corpus)
    src = copy_articles(articles[::2], tmp_path / "src")  # the added ones sort between these
    out = tmp_path / "archive"
    first = _ingest(src, out)
    assert (first.documents_new, first.units_total) == (6, 2)
    before = _shard_files(out)

    copy_articles(articles[1::2], src)
    grown = _ingest(src, out)
    assert grown.growth_line == "6 new documents, 0 changed, 0 removed, 6 unchanged"
    assert grown.units_run == 2 and grown.samples_superseded == 0
    after = _shard_files(out)
    assert {k: after[k] for k in before} == before  # old shards byte-identical
    assert {Path(k).stem for k in set(after) - set(before)} == {"000002", "000003"}
    builds = sorted((out / "builds").glob("*.json"))
    assert [json.loads(p.read_text())["first_unit_id"] for p in builds] == [0, 2]

    clean = tmp_path / "clean"
    _ingest(demo_corpus, clean)
    assert _content(out) == _content(clean)
    again = _ingest(src, out)  # nothing new: nothing written, said so
    assert again.growth_line == "0 new documents, 0 changed, 0 removed, 12 unchanged" and again.units_run == 0
    assert len(list((out / "builds").glob("*.json"))) == 2


def test_a_changed_document_supersedes_its_old_samples(demo_corpus, tmp_path):
    from biomedica.archive.superseded import read_superseded

    src = copy_articles(article_folders(demo_corpus)[:6], tmp_path / "src")
    out = tmp_path / "archive"
    _ingest(src, out, per_unit=2)
    xml = src / "PMC9000001" / "PMC9000001.nxml"
    xml.write_bytes(xml.read_bytes() + b"\n<!-- corrected -->\n")
    old_keys = set(read_shard_index(out, columns=["key"]).column("key").to_pylist())
    mine = sorted(k for k in old_keys if k.startswith("PMC9000001_"))
    assert mine

    grown = _ingest(src, out, per_unit=2)
    assert grown.growth_line == "0 new documents, 1 changed, 0 removed, 5 unchanged"
    listing = read_superseded(out).to_pylist()
    assert sorted(r["key"] for r in listing) == mine
    assert {(r["reason"], r["unit_id"], r["kept_unit"]) for r in listing} == {("changed", 0, 3)}
    assert grown.samples_superseded == len(mine) and grown.samples_live == grown.samples_total - len(mine)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["totals"]["samples_superseded"] == len(mine)
    # sizes.json still counts every tar sample (the tars hold them)
    sizes = sum(sum(json.loads(p.read_text()).values()) for p in out.glob("*/sizes.json"))
    assert sizes == manifest["totals"]["samples"] == grown.samples_total

    index = read_shard_index(out, columns=["key", "shard"]).to_pylist()
    assert sorted(r["key"] for r in index) == sorted(old_keys)  # each key once
    assert {r["shard"] for r in index if r["key"] in mine} == {"000003.tar"}  # the new copy
    assert set(_content(out)) == old_keys
    connection, _ = connect(out)
    keys = [row[0] for row in connection.execute("SELECT key FROM samples").fetchall()]
    assert sorted(keys) == sorted(old_keys)
    report = runner.invoke(app, ["inspect", str(out)])
    assert report.exit_code == 0 and "superseded" in report.output

    from biomedica.train.config import SourceConfig
    from biomedica.train.sources import resolve_source

    for fraction in (0, 0.3):  # the superseded copies left out, with and without the eval split
        resolved = resolve_source(SourceConfig(name="a", archive=str(out), held_out_fraction=fraction))
        streamed = [k for shard in resolved.shards for k in (shard.keys or ())]
        assert len(streamed) == len(set(streamed))
        if fraction == 0:
            assert resolved.samples == len(old_keys)
            assert not set(mine) & {k for s in resolved.shards if s.url.endswith("000000.tar") for k in s.keys or ()}


def test_one_article_in_two_files_of_different_units_is_kept_once(demo_corpus, tmp_path):
    from biomedica.archive.superseded import read_superseded

    src = copy_articles(article_folders(demo_corpus)[:4], tmp_path / "src")
    shutil.copytree(src / "PMC9000001", src / "zz-copy")  # sorts last: another unit
    out = tmp_path / "archive"
    summary = _ingest(src, out, per_unit=2)
    listing = read_superseded(out).to_pylist()
    assert listing and {(r["article_id"], r["reason"], r["unit_id"], r["kept_unit"]) for r in listing} == {
        ("PMC9000001", "duplicate", 2, 0)
    }
    keys = list(_content(out))
    assert len(keys) == len(set(keys)) == summary.samples_live
    errors = pq.read_table(out / "errors" / "finalize-duplicates.parquet").to_pylist()
    assert [(e["id"], e["kind"], e["stage"]) for e in errors] == [("PMC9000001", "duplicate-article", "finalize")]
    _ingest(src, out, per_unit=2)  # rewritten, not appended
    assert len(pq.read_table(out / "errors" / "finalize-duplicates.parquet")) == 1


def test_frozen_refuses_a_changed_input_with_one_line(demo_corpus, tmp_path):
    articles = article_folders(demo_corpus)
    src = copy_articles(articles[:4], tmp_path / "src")
    out = tmp_path / "archive"
    _ingest(src, out)
    copy_articles(articles[4:5], src)
    units = sorted(p.name for p in (out / "_units").iterdir())
    result = runner.invoke(app, ["ingest", str(src), "--out", str(out), "--articles-per-unit", "3",
                                 "--no-progress", "--frozen"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "1 new document, 0 changed, 0 removed" in message and "drop --frozen" in message
    assert "Traceback" not in result.output
    assert sorted(p.name for p in (out / "_units").iterdir()) == units
    result = runner.invoke(app, ["ingest", str(src), "--out", str(out), "--articles-per-unit", "3", "--no-progress"])
    assert result.exit_code == 0
    shown = " ".join(result.output.replace("│", " ").split())
    assert "1 new document" in shown and "4 unchanged" in shown


def test_a_marker_whose_shard_is_gone_is_named_by_verify_and_redone(demo_corpus, tmp_path):
    out, clean = tmp_path / "archive", tmp_path / "clean"
    _ingest(demo_corpus, out)
    _ingest(demo_corpus, clean)
    marker = json.loads((out / "_units" / "000001.json").read_text())
    victim = next(name for name in marker["files"] if name.endswith(".tar"))
    (out / victim).unlink()

    result = runner.invoke(app, ["inspect", str(out), "--verify"])
    assert result.exit_code != 0
    assert victim in result.output.replace("\n", "")

    summary = _ingest(demo_corpus, out)
    assert list(summary.broken_units) == [1] and summary.units_run == 1
    assert (out / "_units" / ".broken-000001.json").is_file()
    assert _shard_files(out) == _shard_files(clean)
    assert runner.invoke(app, ["inspect", str(out), "--verify"]).exit_code == 0


def test_an_archive_without_build_records_is_adopted_or_refused(demo_corpus, tmp_path):
    articles = article_folders(demo_corpus)
    src = copy_articles(articles[:6], tmp_path / "src")
    out = tmp_path / "archive"
    _ingest(src, out)
    shutil.rmtree(out / "builds")  # as written before growth tracking
    legacy = _shard_files(out)

    adopted = _ingest(src, out)
    assert adopted.adopted and adopted.units_run == 0
    assert json.loads((out / "builds" / "0000.json").read_text())["adopted"] is True
    copy_articles(articles[6:8], src)
    grown = _ingest(src, out)
    assert grown.documents_new == 2 and {k: v for k, v in _shard_files(out).items() if k in legacy} == legacy

    shutil.rmtree(out / "builds")
    copy_articles(articles[8:9], src)  # now the input plans other units than the archive holds
    result = runner.invoke(app, ["ingest", str(src), "--out", str(out), "--articles-per-unit", "3", "--no-progress"])
    assert result.exit_code == 2
    assert "predates growth tracking" in " ".join(result.output.split())


@pytest.mark.slow
def test_a_killed_growth_build_resumes_the_same_units(demo_corpus, tmp_path):
    articles = article_folders(demo_corpus)
    cli = [sys.executable, "-m", "biomedica.cli", "ingest", "--articles-per-unit", "1", "--no-progress"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    for name in ("ref-src", "src"):
        copy_articles(articles[:4], tmp_path / name)
    subprocess.run([*cli, str(tmp_path / "ref-src"), "--out", str(reference)], check=True, capture_output=True)
    subprocess.run([*cli, str(tmp_path / "src"), "--out", str(killed)], check=True, capture_output=True)
    copy_articles(articles[4:], tmp_path / "ref-src")
    copy_articles(articles[4:], tmp_path / "src")
    subprocess.run([*cli, str(tmp_path / "ref-src"), "--out", str(reference)], check=True, capture_output=True)

    proc = subprocess.Popen([*cli, str(tmp_path / "src"), "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((killed / "_units").glob("*.json"))) < 6:
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed; the test needs a slower input"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    record = json.loads((killed / "builds" / "0001.json").read_text())
    assert record["status"] == "running" and (record["first_unit_id"], record["next_unit_id"]) == (4, 12)

    subprocess.run([*cli, str(tmp_path / "src"), "--out", str(killed)], check=True, capture_output=True)
    resumed = json.loads((killed / "builds" / "0001.json").read_text())
    assert resumed["status"] == "complete" and resumed["items"] == record["items"]
    assert sorted((killed / "builds").glob("*.json")) == [killed / "builds" / f"000{n}.json" for n in (0, 1)]
    assert _shard_files(killed) == _shard_files(reference)


def test_a_source_that_cannot_sign_an_item_is_refused_not_read_as_unchanged(demo_corpus, tmp_path):
    """Without a signature a changed document would compare equal to its old copy: refuse before writing."""
    from biomedica.ingest.sources.directory import DirectorySource

    class Unsigned(DirectorySource):
        def signatures(self, item_ids):
            return {item: sig for item, sig in super().signatures(item_ids).items() if item != item_ids[0]}

    source = Unsigned(demo_corpus)
    out = tmp_path / "out"
    config = IngestConfig(input=demo_corpus, output=out, articles_per_unit=3, progress=False)
    with pytest.raises(ValueError, match=f"no signature for 1 listed item.*first: {source.list_items()[0]}"):
        run_ingest(config, source=source)
    assert not (out / "_units").exists() and not (out / "builds").exists()
