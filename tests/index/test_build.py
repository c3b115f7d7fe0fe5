"""`biomedica index`: incremental by unit, equal to a fresh build, crash-safe, superseded copies gone, one writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from biomedica.cli import app
from biomedica.index.build import NothingToIndex, build_index
from biomedica.index.config import IndexConfig
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.search.filters import SearchFilters
from biomedica.search.reader import SearchIndex
from biomedica.testing.growth import article_folders, copy_articles

runner = CliRunner()
QUERIES = ["MRI", "IL-6", "weighted", "survival curve", '"whole-body"', "microscopy of cells", "figure"]




def _ingest(src: Path, out: Path, per_unit: int = 3) -> None:
    run_ingest(IngestConfig(input=src, output=out, articles_per_unit=per_unit, progress=False))


def _index(archive: Path, index_dir: Path, **kwargs):
    return build_index(IndexConfig(archive=archive, index_dir=index_dir, annotations=archive / "no-annotations",
                                   **kwargs))


def _results(index: SearchIndex) -> dict[str, list[tuple[str, float]]]:
    found = {}
    for q in QUERIES:
        hits = index.keyword(q, SearchFilters(), 1000)
        found[q] = list(zip(index.keys(hits.docs), hits.scores.tolist()))
    return found


def _same_results(a: SearchIndex, b: SearchIndex) -> None:
    ra, rb = _results(a), _results(b)
    for q in QUERIES:
        assert [k for k, _ in ra[q]] == [k for k, _ in rb[q]], q
        assert np.allclose([s for _, s in ra[q]], [s for _, s in rb[q]], atol=1e-5), q
    assert sum(len(r) for r in ra.values()) > 10


@pytest.fixture
def growing(demo_corpus, tmp_path):
    """An archive of half the demo articles and its source folder (the other half is added by the test)."""
    articles = article_folders(demo_corpus)
    src = copy_articles(articles[::2], tmp_path / "src")
    archive = tmp_path / "archive"
    _ingest(src, archive)
    return articles, src, archive


def test_new_units_only_and_equal_to_a_fresh_build(growing, tmp_path):
    articles, src, archive = growing
    index_dir = tmp_path / "index"
    first = _index(archive, index_dir)
    assert (first.units_new, first.units_skipped, first.docs_added) == (2, 0, first.docs_total)
    assert first.notes and "curate embed" in first.notes[0]

    copy_articles(articles[1::2], src)
    _ingest(src, archive)
    assert SearchIndex.open(index_dir, archive).unindexed_units == 2
    second = _index(archive, index_dir)
    assert (second.units_new, second.units_skipped, second.docs_removed, second.docs_repaired) == (2, 2, 0, 0)
    assert second.docs_added == second.docs_total - first.docs_total > 0
    third = _index(archive, index_dir)  # nothing new: nothing indexed
    assert (third.units_new, third.docs_added, third.filters_refreshed) == (0, 0, False)

    fresh_dir = tmp_path / "fresh"
    _index(archive, fresh_dir)
    grown, fresh = SearchIndex.open(index_dir, archive), SearchIndex.open(fresh_dir, archive)
    assert grown.unindexed_units == 0
    assert grown.docs.column("key").to_pylist() == fresh.docs.column("key").to_pylist()
    _same_results(grown, fresh)
    assert grown.facets("MRI", SearchFilters()) == fresh.facets("MRI", SearchFilters())


def test_a_run_killed_before_state_json_is_repaired_by_the_rerun(growing, tmp_path, monkeypatch):
    articles, src, archive = growing
    index_dir = tmp_path / "index"
    _index(archive, index_dir)
    copy_articles(articles[1::2], src)
    _ingest(src, archive)

    from biomedica.index import build

    def die(path, obj):  # the process dies after the docs part and the tantivy commit, before state.json
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(build, "write_json_atomic", die)
        with pytest.raises(KeyboardInterrupt):
            _index(archive, index_dir)
    assert len(list((index_dir / "docs").glob("*.arrow"))) == 2
    half = SearchIndex.open(index_dir, archive)  # a reader meanwhile sees the last complete run only
    assert half.size == half.state["docs"] and all(d < half.size for d in half.keyword("figure", SearchFilters(), 999).docs)
    from biomedica.search.docs import read_docs
    from biomedica.search.layout import IndexLayout

    every_key = read_docs(IndexLayout(index_dir)).column("key").to_pylist()  # the dead run's part too
    assert len(np.load(index_dir / "key_order.npy")) == len(every_key) > half.size  # its key order covers them
    old_keys = set(every_key[: half.size])
    assert all(half.doc_of(k) < half.size for k in old_keys)
    assert {half.doc_of(k) for k in set(every_key) - old_keys} == {None}

    rerun = _index(archive, index_dir)
    assert rerun.docs_repaired == rerun.docs_added > 0 and rerun.units_new == 2
    fresh_dir = tmp_path / "fresh"
    _index(archive, fresh_dir)
    _same_results(SearchIndex.open(index_dir, archive), SearchIndex.open(fresh_dir, archive))


def test_superseded_copies_are_never_returned(demo_corpus, tmp_path):
    src = copy_articles(article_folders(demo_corpus)[:6], tmp_path / "src")
    archive = tmp_path / "archive"
    _ingest(src, archive, per_unit=2)
    index_dir = tmp_path / "index"
    _index(archive, index_dir)
    before = SearchIndex.open(index_dir, archive)
    mine = [k for k in before.docs.column("key").to_pylist() if k.startswith("PMC9000001_")]
    old_docs = [before.doc_of(k) for k in mine]
    caption = before.row(old_docs[0])["caption"]

    xml = src / "PMC9000001" / "PMC9000001.nxml"
    xml.write_bytes(xml.read_bytes() + b"\n<!-- corrected -->\n")
    _ingest(src, archive, per_unit=2)
    from biomedica.curate.run import run_curate

    run_curate(archive)  # dedup: canonical_only below goes through the annotation mask
    result = build_index(IndexConfig(archive=archive, index_dir=index_dir), None)
    assert result.docs_removed == len(mine) and result.docs_live == result.docs_total - len(mine)

    after = SearchIndex.open(index_dir, archive)
    new_docs = [after.doc_of(k) for k in mine]
    assert set(new_docs).isdisjoint(old_docs) and not after.mask(SearchFilters())[old_docs].any()
    for q in [caption, *QUERIES]:
        for filters in (SearchFilters(), SearchFilters(canonical_only=True)):
            hits = after.keyword(q, filters, 1000)
            assert not set(hits.docs.tolist()) & set(old_docs), q
    hits = after.keyword(caption, SearchFilters(), 5)
    assert hits.docs[0] in new_docs
    assert sum(after.facets(None, SearchFilters())["license_group"].values()) == result.docs_live
    fresh_dir = tmp_path / "fresh"
    _index(archive, fresh_dir)
    fresh = SearchIndex.open(fresh_dir, archive)
    assert sorted(after.keys(np.flatnonzero(after.mask(SearchFilters())))) == sorted(
        fresh.keys(np.flatnonzero(fresh.mask(SearchFilters()))))


def test_a_second_index_run_gets_the_lock_line(demo_archive, tmp_path):
    from biomedica.testing.processes import LockHolderProcess

    index_dir = tmp_path / "index"
    holder = LockHolderProcess(index_dir)
    try:
        result = runner.invoke(app, ["index", str(demo_archive), "--index", str(index_dir), "--no-progress"])
    finally:
        holder.release()
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.output
    assert "lock" in lines[0].lower() or "holds" in lines[0].lower() or "running" in lines[0].lower()


def test_empty_or_missing_archive_says_to_ingest(tmp_path):
    (tmp_path / "empty" / "_units").mkdir(parents=True)
    for folder in (tmp_path / "empty", tmp_path / "nothing"):
        with pytest.raises(NothingToIndex, match="run `biomedica ingest"):
            _index(folder, tmp_path / "index")
        result = runner.invoke(app, ["index", str(folder), "--no-progress"])
        assert result.exit_code == 2 and result.output.count("\n") == 1 and "biomedica ingest" in result.output


def test_cli_summary(demo_archive, tmp_path):
    result = runner.invoke(app, ["index", str(demo_archive), "--index", str(tmp_path / "ix"), "--no-progress"])
    assert result.exit_code == 0, result.output
    for word in ("units new / skipped", "docs added", "docs/s", "curate embed"):
        assert word in result.output


def test_annotation_filters_refresh_when_the_tables_change(demo_archive, tmp_path):
    import pyarrow as pa

    from biomedica.archive.annotations import AnnotationStore
    from biomedica.curate.run import run_curate

    annotations = tmp_path / "ann"
    run_curate(demo_archive, annotations, steps=("panels",))
    config = IndexConfig(archive=demo_archive, index_dir=tmp_path / "index", annotations=annotations)
    build_index(config)
    index = SearchIndex.open(config.index_folder(), demo_archive)
    assert not index.mask(SearchFilters(panel_type="multiple")).any() and not index.annotations_changed
    assert build_index(config).filters_refreshed is False

    store = AnnotationStore(annotations)
    panels = store.read("panels")
    first = panels.column("key")[0].as_py()
    kinds = ["multiple" if i == 0 else k for i, k in enumerate(panels.column("panel_type").to_pylist())]
    store.write("panels", panels.set_column(panels.schema.get_field_index("panel_type"), "panel_type",
                                            pa.array(kinds, pa.string())))
    assert SearchIndex.open(config.index_folder(), demo_archive).annotations_changed  # serve warns until reindexed
    result = build_index(config)
    assert result.filters_refreshed and result.docs_added == 0
    index = SearchIndex.open(config.index_folder(), demo_archive)
    assert index.keys(np.flatnonzero(index.mask(SearchFilters(panel_type="multiple")))) == [first]
    assert not index.annotations_changed
