"""SearchIndex over a real archive + annotations: ranking, every filter and facet against a brute-force DuckDB count."""

from __future__ import annotations

from collections import Counter

import duckdb
import numpy as np
import pytest

from biomedica.archive.reader import read_shard_index
from biomedica.search.filters import SearchFilters
from biomedica.search.reader import IndexMissing, SearchIndex
from biomedica.search.tokenize import tokens

TEXT = ["caption", "caption_title", "mentions", "article_title", "keywords"]


@pytest.fixture(scope="module")
def index(indexed_curation):
    return SearchIndex.open(indexed_curation.index_dir, indexed_curation.archive)


@pytest.fixture(scope="module")
def truth(indexed_curation):
    """One row per live sample: archive columns + annotation columns, joined by DuckDB (the brute force)."""
    samples = read_shard_index(indexed_curation.archive, columns=["key", *TEXT, "license_group", "year", "journal",
                                                                  "article_type"])
    ann = indexed_curation.annotations
    con = duckdb.connect()
    con.register("samples", samples)
    rows = con.sql(f"""
        SELECT s.*, p.panel_type, c.cluster, coalesce(d.canonical, TRUE) AS canonical, q.flags,
               CASE WHEN l.key IS NOT NULL THEN list_concat(l.label_global, l.label_local)
                    ELSE list_concat(CASE WHEN z.zs_global IS NULL THEN [] ELSE [z.zs_global] END,
                                     CASE WHEN z.zs_local IS NULL THEN [] ELSE [z.zs_local] END) END AS concepts
        FROM samples s
        LEFT JOIN read_parquet('{ann}/panels.parquet') p USING (key)
        LEFT JOIN read_parquet('{ann}/clusters.parquet') c USING (key)
        LEFT JOIN read_parquet('{ann}/dedup.parquet') d USING (key)
        LEFT JOIN read_parquet('{ann}/quality.parquet') q USING (key)
        LEFT JOIN read_parquet('{ann}/labels.parquet') l USING (key)
        LEFT JOIN read_parquet('{ann}/concepts.parquet') z USING (key)
    """).fetchall()
    names = [d[0] for d in con.sql("SELECT * FROM samples LIMIT 0").description] + [
        "panel_type", "cluster", "canonical", "flags", "concepts"]
    return {r[0]: dict(zip(names, r)) for r in rows}


def _keys(index, mask):
    return set(index.keys(np.flatnonzero(mask)))


def _words(row):
    text = " ".join([row["caption"] or "", row["caption_title"] or "", row["article_title"] or "",
                     *(row["mentions"] or []), *(row["keywords"] or [])])
    return set(tokens(text))


def test_a_distinctive_caption_word_finds_its_figure_first(index, truth):
    by_word = Counter(w for row in truth.values() for w in _words(row))
    tried = 0
    for key, row in sorted(truth.items()):
        unique = sorted(w for w in set(tokens(row["caption"] or "")) if by_word[w] == 1 and not w.isdigit())
        if not unique:
            continue
        hits = index.keyword(unique[0], SearchFilters(), 5)
        assert index.keys(hits.docs)[:1] == [key] and hits.total == 1, unique[0]
        tried += 1
    assert tried >= 5


def test_index_holds_every_live_sample_once(index, truth):
    assert sorted(_keys(index, index.mask(SearchFilters()))) == sorted(truth)


FILTERS = [
    (SearchFilters(license_group=["commercial"]), lambda r: r["license_group"] == "commercial"),
    (SearchFilters(license_group=["noncommercial", "other"]), lambda r: r["license_group"] != "commercial"),
    (SearchFilters(year_from=2016, year_to=2020), lambda r: r["year"] is not None and 2016 <= r["year"] <= 2020),
    (SearchFilters(year_to=2015), lambda r: r["year"] is not None and r["year"] <= 2015),
    (SearchFilters(panel_type="multiple"), lambda r: r["panel_type"] == "multiple"),
    (SearchFilters(panel_type="single"), lambda r: r["panel_type"] == "single"),
    (SearchFilters(concept=["microscopy"]), lambda r: "microscopy" in (r["concepts"] or [])),
    (SearchFilters(concept=["expert-global", "chart"]),
     lambda r: bool({"expert-global", "chart"} & set(r["concepts"] or []))),
    (SearchFilters(cluster=[1, 3]), lambda r: r["cluster"] in (1, 3)),
    (SearchFilters(canonical_only=True), lambda r: r["canonical"]),
    (SearchFilters(exclude_flags=["any"]), lambda r: not r["flags"]),
    (SearchFilters(has_mentions=True), lambda r: bool(r["mentions"])),
    (SearchFilters(has_mentions=False, canonical_only=True, license_group=["commercial"]),
     lambda r: not r["mentions"] and r["canonical"] and r["license_group"] == "commercial"),
]


@pytest.mark.parametrize("filters, keep", FILTERS, ids=[str(f.model_dump(exclude_defaults=True)) for f, _ in FILTERS])
def test_each_filter_removes_what_it_should(index, truth, filters, keep):
    expected = {k for k, r in truth.items() if keep(r)}
    assert 0 < len(expected) < len(truth) or filters.has_mentions is not None, "filter must split the test data"
    assert _keys(index, index.mask(filters)) == expected
    # the same filter on a keyword search: exact total, only allowed docs
    everything = index.keyword("figure", SearchFilters(), 10_000)
    filtered = index.keyword("figure", filters, 10_000)
    assert set(index.keys(filtered.docs)) == set(index.keys(everything.docs)) & expected
    assert filtered.total == len(filtered.docs)


def test_journal_and_flag_filters(index, truth):
    journal = min({r["journal"] for r in truth.values()})
    assert _keys(index, index.mask(SearchFilters(journal=[journal]))) == {
        k for k, r in truth.items() if r["journal"] == journal}
    flags = Counter(f for r in truth.values() for f in (r["flags"] or []))
    if flags:
        flag = flags.most_common(1)[0][0]
        assert _keys(index, index.mask(SearchFilters(exclude_flags=[flag]))) == {
            k for k, r in truth.items() if flag not in (r["flags"] or [])}


@pytest.mark.parametrize("q, filters", [(None, SearchFilters()), ("figure", SearchFilters()),
                                        ("figure", SearchFilters(license_group=["commercial"], concept=["chart"]))])
def test_facets_equal_brute_force_counts(index, truth, q, filters):
    keys = _keys(index, index.matching(q, filters))
    if q:
        assert keys == set(index.keys(index.keyword(q, filters, 10_000).docs))
    rows = [truth[k] for k in keys]
    facets = index.facets(q, filters)
    assert facets["license_group"] == dict(Counter(r["license_group"] for r in rows))
    assert facets["year"] == dict(Counter(r["year"] for r in rows if r["year"] is not None))
    assert facets["journal"] == dict(Counter(r["journal"] for r in rows if r["journal"]).most_common(20))
    assert facets["panel_type"] == dict(Counter(r["panel_type"] for r in rows if r["panel_type"]))
    concepts = Counter(c for r in rows for c in set(r["concepts"] or []))
    assert facets["concept"] == {c: n for c, n in concepts.items() if c in facets["concept"]}
    assert len(facets["concept"]) == min(30, len(concepts))


def test_rows_and_doc_of(index, truth):
    key = sorted(truth)[3]
    doc = index.doc_of(key)
    row = index.row(doc)
    assert row["key"] == key and row["doc"] == doc and row["journal"] == truth[key]["journal"]
    assert index.doc_of("PMC0_000") is None
    assert index.unindexed_units == 0


def test_missing_index_says_what_to_run(tmp_path, curation_archive):
    with pytest.raises(IndexMissing) as caught:
        SearchIndex.open(tmp_path / "nothing", curation_archive)
    assert str(caught.value) == f"{tmp_path / 'nothing'}: no search index; run `biomedica index ARCHIVE`"


def test_a_vector_folder_without_its_manifest_reads_as_not_indexed(indexed_curation, tmp_path, monkeypatch):
    """A first vector update that died before its manifest (after a re-embed cleared the folder) is "not indexed"."""
    import json
    import shutil

    from biomedica.search import vectors as vec_module
    from biomedica.serve.config import ServeConfig
    from biomedica.serve.engine import BadRequest, SearchEngine

    index_dir = tmp_path / "index"
    shutil.copytree(indexed_curation.index_dir, index_dir)
    state = json.loads((index_dir / "state.json").read_text())
    state["embeddings"] = {"tiny-random": {"meta": {"model": "tiny-random", "dim": 8},
                                           "kinds": {"image": {"parts": [], "count": 4, "mode": "exact"}}}}
    (index_dir / "state.json").write_text(json.dumps(state))
    folder = index_dir / "vectors" / "tiny-random" / "image"

    def crash(path, obj):
        raise OSError("killed")

    with monkeypatch.context() as patch:
        patch.setattr(vec_module, "write_json_atomic", crash)
        with pytest.raises(OSError):
            vec_module.update_vectors(folder, np.arange(4), np.ones((4, 8), np.float32))
    assert folder.is_dir() and not (folder / "manifest.json").exists() and list(folder.iterdir())

    index = SearchIndex.open(index_dir, indexed_curation.archive)
    assert index.vectors(None, "image") is None and index.vectors("tiny-random", "text") is None
    engine = SearchEngine(ServeConfig(archive=indexed_curation.archive, index=index_dir), index)
    with pytest.raises(BadRequest, match="biomedica index"):
        engine.search("figure", mode="semantic")
    assert engine.search("figure", mode="keyword")["total"] > 0


def test_an_index_of_an_older_format_says_delete_and_rerun(indexed_curation, tmp_path):
    import json
    import shutil

    from typer.testing import CliRunner

    from biomedica.cli import app

    index_dir = tmp_path / "index"
    shutil.copytree(indexed_curation.index_dir, index_dir)
    state = json.loads((index_dir / "state.json").read_text())
    (index_dir / "state.json").write_text(json.dumps({**state, "schema_version": 1}))  # docs without txt offsets
    with pytest.raises(IndexMissing) as caught:
        SearchIndex.open(index_dir, indexed_curation.archive)
    message = str(caught.value)
    assert "delete the folder" in message and "biomedica index" in message and "\n" not in message
    result = CliRunner().invoke(app, ["index", str(indexed_curation.archive), "--index", str(index_dir),
                                      "--no-progress"])
    assert result.exit_code == 2 and "delete the folder" in result.output and "Traceback" not in result.output


def test_opening_maps_the_index_and_reads_nothing_into_memory(indexed_curation):
    """Docs and filter columns are memory-mapped (Arrow IPC): an open allocates nothing per doc; the key order is lazy."""
    import pyarrow as pa

    before = pa.total_allocated_bytes()
    index = SearchIndex.open(indexed_curation.index_dir, indexed_curation.archive)
    grown = pa.total_allocated_bytes() - before
    assert index.docs.nbytes > 10_000 and grown < index.docs.nbytes // 20, (grown, index.docs.nbytes)
    columns = index.columns
    for array in (columns.live, columns.year, columns.cluster, columns.canonical, columns.has_mentions,
                  columns.dup_group, columns.journal.codes, columns.concepts.offsets, columns.concepts.codes):
        assert not array.flags.owndata and not array.flags.writeable  # a view of the mapped file, not a copy
    assert index._key_order is None  # sorted on the first doc_of, not at open
    key = index.row(7)["key"]
    assert index.doc_of(key) == 7 and index._key_order is not None


def test_filter_columns_round_trip_through_the_mapped_file(indexed_curation, tmp_path):
    """FilterColumns written by the index run and mapped back equal the ones computed in memory, cut to `size`."""
    from biomedica.archive.annotations import AnnotationStore
    from biomedica.search.docs import read_docs
    from biomedica.search.filters import FilterColumns, build_filter_table, write_filter_columns
    from biomedica.search.layout import IndexLayout

    docs = read_docs(IndexLayout(indexed_curation.index_dir))
    live = np.ones(docs.num_rows, bool)
    live[::5] = False
    filters = build_filter_table(docs, live, AnnotationStore(indexed_curation.annotations))
    write_filter_columns(tmp_path / "f.arrow", docs, filters)
    memory = FilterColumns.load(docs, filters)
    for size in (docs.num_rows, 9, 0):
        mapped = FilterColumns.open(tmp_path / "f.arrow", size)
        assert mapped.size == size
        for name in ("live", "year", "has_mentions", "cluster", "canonical", "dup_group"):
            assert np.array_equal(getattr(mapped, name), getattr(memory, name)[:size]), name
        for name in ("license_group", "journal", "article_type", "panel_type"):
            assert getattr(mapped, name).names == getattr(memory, name).names
            assert np.array_equal(getattr(mapped, name).codes, getattr(memory, name).codes[:size]), name
        for name in ("concepts", "flags"):
            m, full = getattr(mapped, name), getattr(memory, name)
            assert m.names == full.names and np.array_equal(m.offsets, full.offsets[: size + 1])
            assert np.array_equal(m.codes, full.codes[: full.offsets[size]])
            assert m.counts(np.ones(size, bool)) == full.counts(np.arange(docs.num_rows) < size)
    with pytest.raises(ValueError, match="holds"):
        FilterColumns.open(tmp_path / "f.arrow", docs.num_rows + 1)


def test_doc_of_reads_the_key_order_the_run_wrote_and_sorts_only_without_it(indexed_curation, tmp_path):
    import shutil

    index_dir = tmp_path / "index"
    shutil.copytree(indexed_curation.index_dir, index_dir)
    mapped = SearchIndex.open(index_dir, indexed_curation.archive)
    keys = sorted(set(mapped.keys(np.arange(mapped.size))))
    found = [mapped.doc_of(k) for k in keys]
    assert not mapped._key_order.flags.owndata  # the mapped key_order.npy
    assert found == mapped.docs_of(keys).tolist() and None not in found
    (index_dir / "key_order.npy").unlink()
    sorted_here = SearchIndex.open(index_dir, indexed_curation.archive)
    assert [sorted_here.doc_of(k) for k in keys] == found and sorted_here._key_order.flags.owndata
