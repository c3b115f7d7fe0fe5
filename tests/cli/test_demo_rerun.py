"""A demo rerun deletes nothing it did not create in that run (issue 10, item 8)."""

from __future__ import annotations

import hashlib
import sqlite3

from typer.testing import CliRunner

from biomedica.archive.inspect import inspect_archive
from biomedica.cli import app

runner = CliRunner()


def _hashes(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def _demo(out, articles: int = 4):
    return runner.invoke(app, ["demo", "--out", str(out), "--articles", str(articles), "--workers", "1"])


def test_rerunning_the_demo_keeps_annotations_labels_and_user_files(tmp_path):
    out = tmp_path / "demo-out"
    first = _demo(out)
    assert first.exit_code == 0, first.output
    before = inspect_archive(out / "archive")
    corpus_before = _hashes(out / "corpus")

    annotations = out / "archive" / "annotations"
    annotations.mkdir()
    with sqlite3.connect(annotations / "labels.sqlite") as db:  # what the annotation app keeps
        db.execute("create table votes (annotator text, cluster int, label text)")
        db.execute("insert into votes values ('ann', 3, 'microscopy')")
    (annotations / "dedup.parquet").write_bytes(b"PAR1 user table PAR1")
    (out / "corpus" / "my-notes.txt").write_text("mine")
    (out / "archive" / "README.user").write_text("mine too")
    kept = {p: p.read_bytes() for p in [annotations / "labels.sqlite", annotations / "dedup.parquet",
                                        out / "corpus" / "my-notes.txt", out / "archive" / "README.user"]}

    again = _demo(out)
    assert again.exit_code == 0, again.output
    for path, data in kept.items():
        assert path.read_bytes() == data, path
    corpus_after = _hashes(out / "corpus")
    assert {k: v for k, v in corpus_after.items() if k != "my-notes.txt"} == corpus_before  # regenerated, same bytes
    after = inspect_archive(out / "archive", verify=True)
    assert after.status == before.status == "complete" and not after.problems
    assert (after.total_articles, after.total_samples) == (before.total_articles, before.total_samples)
    assert not [p for p in out.iterdir() if p.name.startswith(".corpus-")]  # its scratch folder is gone


def test_a_demo_of_other_settings_is_refused_without_touching_the_folder(tmp_path):
    out = tmp_path / "demo-out"
    assert _demo(out).exit_code == 0
    before = _hashes(out)
    refused = _demo(out, articles=12)  # other articles_per_unit (and another corpus)
    assert refused.exit_code == 2
    errors = [line for line in refused.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "use --out elsewhere" in errors[0]
    assert _hashes(out) == before


def test_a_demo_into_an_archive_built_otherwise_is_refused(tmp_path, demo_corpus):
    out = tmp_path / "demo-out"
    built = runner.invoke(app, ["ingest", str(demo_corpus), "--out", str(out / "archive"), "--articles-per-unit", "7",
                                "--no-progress", "--limit", "3"])
    assert built.exit_code == 0, built.output
    before = _hashes(out)
    refused = _demo(out)
    assert refused.exit_code == 2 and "use --out elsewhere" in refused.output
    assert _hashes(out) == before and not (out / "corpus").exists()
