import json

import pyarrow.parquet as pq
import pytest
import webdataset as wds
from pydantic import ValidationError

from biomedica.archive.reader import iter_shard, read_shard_index
from biomedica.select import SelectConfig, SelectionExists, manifest_key_filter, read_manifest_keys, run_select
from biomedica.select.query import connect, fetch_arrow


def _select(curated, tmp_path, **options):
    archive, annotations = curated
    return run_select(SelectConfig(archive=archive, annotations=annotations, out=tmp_path / "out", **options))


def _concepts(curated) -> dict[str, str]:
    table = pq.read_table(curated[1] / "concepts.parquet", columns=["key", "zs_global"])
    return dict(zip(table.column("key").to_pylist(), table.column("zs_global").to_pylist()))


def test_views_join_every_annotation_on_key(curated):
    connection, present = connect(*curated)
    assert present == ["dedup", "quality", "panels", "concepts"]
    counts = fetch_arrow(connection, 'SELECT "group", count(*) AS n FROM annotated GROUP BY 1 ORDER BY 1').to_pylist()
    assert counts == [{"group": "commercial", "n": 24}, {"group": "noncommercial", "n": 15}, {"group": "other", "n": 12}]
    row = fetch_arrow(connection, "SELECT canonical, quality_ok, panel_type, zs_global FROM annotated "
                                  "WHERE key = 'PMC9000100_000'").to_pylist()[0]
    assert row == {"canonical": False, "quality_ok": True, "panel_type": "single", "zs_global": "clinical_imaging"}


def test_metadata_filters(curated, tmp_path):
    result = _select(curated, tmp_path, license_groups=["commercial"], min_year=2018, max_year=2019)
    manifest = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()
    index = {r["key"]: r for r in read_shard_index(curated[0], columns=["key", "year", "license_group"]).to_pylist()}
    assert result.selected == len(manifest) > 0
    assert all(index[r["key"]]["license_group"] == "commercial" and 2018 <= index[r["key"]]["year"] <= 2019 for r in manifest)
    expected = sum(1 for r in index.values() if r["license_group"] == "commercial" and 2018 <= r["year"] <= 2019)
    assert result.selected == expected


def test_canonical_only_and_quality_flags(curated, tmp_path):
    result = _select(curated, tmp_path, canonical_only=True, drop_flags=["tiny-image"])
    keys = {r["key"] for r in pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()}
    assert "PMC9000100_000" not in keys and "PMC9000004_000" in keys  # exact copy dropped, original kept
    assert "PMC9000001_001" not in keys  # tiny
    dedup = pq.read_table(curated[1] / "dedup.parquet").to_pylist()
    assert result.selected == sum(1 for r in dedup if r["canonical"]) - 2


def test_concept_filtered_drops_plots(curated, tmp_path):
    result = _select(curated, tmp_path, strategy="concept-filtered", exclude_concepts=["plots_and_charts"])
    concepts = _concepts(curated)
    assert result.selected == sum(1 for c in concepts.values() if c != "plots_and_charts")
    assert "plots_and_charts" not in result.per_concept


def test_concept_balanced_caps_each_concept_deterministically(curated, tmp_path):
    first = _select(curated, tmp_path, strategy="concept-balanced", cap_per_concept=4, seed=1)
    totals = {}
    for concept in _concepts(curated).values():
        totals[concept] = totals.get(concept, 0) + 1
    assert first.per_concept == {c: min(4, n) for c, n in totals.items()}
    keys_first = pq.read_table(tmp_path / "out" / "manifest.parquet").column("key").to_pylist()
    again = _select(curated, tmp_path, strategy="concept-balanced", cap_per_concept=4, seed=1, overwrite=True)
    assert pq.read_table(tmp_path / "out" / "manifest.parquet").column("key").to_pylist() == keys_first
    assert again.selected == first.selected


def test_overwrite_deletes_only_what_the_previous_selection_wrote(curated, tmp_path):
    out = tmp_path / "out"
    first = _select(curated, tmp_path, license_groups=["noncommercial"], output="shards", samples_per_shard=5)
    assert sorted(first.sizes) == ["000000.tar", "000001.tar", "000002.tar"]
    mine = {"notes.parquet": b"PAR1 mine", "backup.tar": b"mine", "000007.tar": b"mine too", "readme.txt": b"x"}
    for name, data in mine.items():
        (out / name).write_bytes(data)
    _select(curated, tmp_path, license_groups=["noncommercial"], overwrite=True)  # now a manifest
    assert sorted(p.name for p in out.iterdir() if p.name not in mine) == ["manifest.parquet", "selection.json"]
    assert {name: (out / name).read_bytes() for name in mine} == mine
    _select(curated, tmp_path, license_groups=["other"], output="shards", samples_per_shard=50, overwrite=True)
    assert sorted(p.name for p in out.iterdir() if p.name not in mine) == [
        "000000.parquet", "000000.tar", "select-plan.json", "selection.json", "sizes.json"]
    assert {name: (out / name).read_bytes() for name in mine} == mine
    (out / "selection.json").write_text("{broken")
    with pytest.raises(SelectionExists, match="cannot tell which files it wrote"):
        _select(curated, tmp_path, overwrite=True)
    assert (out / "000000.tar").is_file()


def test_min_concept_score_makes_weak_labels_unlabelled(curated, tmp_path):
    result = _select(curated, tmp_path, strategy="concept-balanced", cap_per_concept=100, concept_level="local",
                     min_concept_score=0.5)
    assert result.per_concept["<unlabelled>"] == sum(1 for k in _concepts(curated) if not k.endswith("0"))


def test_manifest_streams_with_webdataset_key_filter(curated, tmp_path):
    result = _select(curated, tmp_path, where="caption ILIKE '%ultrasound%'")
    urls = sorted(read_manifest_keys(tmp_path / "out"))
    dataset = wds.WebDataset(urls, shardshuffle=False).select(manifest_key_filter(tmp_path / "out"))
    streamed = sorted(sample["__key__"] for sample in dataset)
    assert len(streamed) == result.selected > 0
    assert all(b"ultrasound" in sample["txt"].lower() for sample in wds.WebDataset(urls, shardshuffle=False).select(manifest_key_filter(tmp_path / "out")))
    summary = json.loads((tmp_path / "out" / "selection.json").read_text())
    assert summary["selected"] == result.selected and summary["total"] == 51
    assert "where caption ILIKE '%ultrasound%'" in summary["filters"]


def test_shards_output_is_a_readable_archive_subset(curated, tmp_path):
    result = _select(curated, tmp_path, license_groups=["noncommercial"], output="shards", samples_per_shard=5)
    out = tmp_path / "out"
    sizes = json.loads((out / "sizes.json").read_text())
    assert sum(sizes.values()) == result.selected == 15 and list(sizes)[:2] == ["000000.tar", "000001.tar"]
    assert result.shard_pattern == f"{out}/{{000000..000002}}.tar"
    original = {r["key"]: r for r in read_shard_index(curated[0], columns=["key", "sha256", "caption"]).to_pylist()}
    import hashlib

    seen = []
    for name in sizes:
        for record, image in iter_shard(out / name):
            assert hashlib.sha256(image).hexdigest() == original[record["key"]]["sha256"]  # bytes copied, not re-encoded
            assert record["caption"] == original[record["key"]]["caption"]
            seen.append(record["key"])
        index = pq.read_table(out / name.replace(".tar", ".parquet"))
        assert index.num_rows == sizes[name]
    assert seen == sorted(seen) and len(seen) == 15
    assert sum(1 for _ in wds.WebDataset(result.shard_pattern, shardshuffle=False)) == 15


def test_refusals_are_clear(curated, tmp_path):
    with pytest.raises(ValidationError, match="cap_per_concept"):
        SelectConfig(archive=curated[0], out=tmp_path, strategy="concept-balanced")
    with pytest.raises(ValidationError, match="exclude_concepts or include_concepts"):
        SelectConfig(archive=curated[0], out=tmp_path, strategy="concept-filtered")
    _select(curated, tmp_path)
    with pytest.raises(SelectionExists, match="--overwrite"):
        _select(curated, tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(SelectionExists, match="not empty"):
        run_select(SelectConfig(archive=curated[0], out=tmp_path / "other"))
    with pytest.raises(ValueError, match="check --where"):
        _select(curated, tmp_path, where="no_such_column > 1", overwrite=True)
    empty_annotations = tmp_path / "none"
    with pytest.raises(ValueError, match="curate dedup"):
        run_select(SelectConfig(archive=curated[0], annotations=empty_annotations, out=tmp_path / "o2", canonical_only=True))
    with pytest.raises(ValueError, match="concept strategies need"):
        run_select(SelectConfig(archive=curated[0], annotations=empty_annotations, out=tmp_path / "o3",
                                strategy="concept-balanced", cap_per_concept=2))


def test_expert_labels_come_before_zero_shot(curated, tmp_path):
    import shutil

    import pyarrow as pa

    from biomedica.archive.labels import LABELS_SCHEMA

    archive, annotations = curated
    mine = tmp_path / "annotations"
    shutil.copytree(annotations, mine)
    # experts say the two PMC9000004 images are microscopy; zero-shot says clinical imaging
    rows = [{"key": k, "label_cluster": 7, "label_status": "labelled", "label_global": ["microscopy"],
             "label_local": ["light_microscopy"], "label_panel_type": "single", "label_annotators": 2,
             "label_agreement": 1.0, "label_taxonomy": "biomedica 1.0.0"} for k in ("PMC9000004_000", "PMC9000004_001")]
    pq.write_table(pa.Table.from_pylist(rows, schema=LABELS_SCHEMA), mine / "labels.parquet")
    auto = run_select(SelectConfig(archive=archive, annotations=mine, out=tmp_path / "a",
                                   strategy="concept-filtered", include_concepts=["microscopy"]))
    assert auto.selected == 2 and auto.per_concept == {"microscopy": 2}
    experts_only = run_select(SelectConfig(archive=archive, annotations=mine, out=tmp_path / "b",
                                           strategy="concept-balanced", cap_per_concept=100, concept_source="labels"))
    assert experts_only.per_concept == {"<unlabelled>": 49, "microscopy": 2}
    zero_shot = run_select(SelectConfig(archive=archive, annotations=mine, out=tmp_path / "c",
                                        strategy="concept-filtered", include_concepts=["microscopy"],
                                        concept_source="zeroshot"))
    assert zero_shot.selected == 0
