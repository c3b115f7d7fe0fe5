"""publish --to DIR: the folder layout, the card, reruns, refusals; the folder loads with `datasets`."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from biomedica.archive.card import read_card_yaml
from biomedica.archive.manifest import Manifest
from biomedica.publish.config import PublishConfig, parse_target
from biomedica.publish.layout import MARKER_NAME, PublishError
from biomedica.publish.run import run_publish


def _publish(archive, to, **options):
    return run_publish(PublishConfig(archive=archive, to=str(to), **options))


def test_target_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_target("org/name").repo_id == "org/name"
    assert parse_target("hf://datasets/org/name").repo_id == "org/name"
    for folder in ("./org/name", "/abs/out", "out", "a/b/c", "~/pub"):
        assert parse_target(folder).path is not None, folder
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert parse_target("org/name").path is not None  # an existing folder is never a repository
    with pytest.raises(ValueError, match="dataset repositories"):
        parse_target("hf://models/org/name")


@pytest.fixture(scope="module")
def published(demo_archive, publish_annotations, tmp_path_factory):
    out = tmp_path_factory.mktemp("published") / "pub"
    result = _publish(demo_archive, out, annotations_dir=publish_annotations, embeddings=("tiny",))
    return out, result


def test_folder_holds_byte_copies_and_a_card_listing_every_shard(demo_archive, published):
    out, result = published
    manifest = Manifest.read(demo_archive)
    groups = [g for g in ("commercial", "noncommercial") if g in manifest.groups]
    assert result.layout.groups == groups and not (out / "other").exists()  # `other` only when named
    assert any("other" in note for note in result.layout.notes) == ("other" in manifest.groups)
    for shard in manifest.shards(groups):
        copy, original = out / shard.path, demo_archive / shard.path
        assert copy.read_bytes() == original.read_bytes()
        assert copy.stat().st_ino == original.stat().st_ino  # hard link on one filesystem: no copy
        assert (out / shard.group / shard.name.replace(".tar", ".parquet")).is_file()
    for group in groups:
        assert json.loads((out / group / "sizes.json").read_text()) == json.loads((demo_archive / group / "sizes.json").read_text())
    # the folder's manifest lists exactly the shards it holds
    copied = Manifest.read(out)
    assert sorted(copied.groups) == groups
    assert [s.path for s in copied.shards(groups)] == [s.path for s in manifest.shards(groups)]
    if set(manifest.groups) - set(groups):
        published_info = json.loads((out / "manifest.json").read_text())["published"]
        assert published_info["groups"] == sorted(groups)
        assert published_info["samples"] == sum(manifest.groups[g].samples for g in groups)

    text = (out / "README.md").read_text()
    meta = read_card_yaml(text)
    assert [c["config_name"] for c in meta["configs"]] == groups
    assert [c.get("default", False) for c in meta["configs"]] == [True] + [False] * (len(groups) - 1)
    for info in meta["dataset_info"]:
        assert info["splits"][0]["num_examples"] == manifest.groups[info["config_name"]].samples
    for shard in manifest.shards(groups):  # the shard list people ask for
        assert f"`{shard.path}` | {shard.samples:,} | {shard.bytes:,} | `{shard.sha256}`" in text
    assert "other/" not in text.split("## Tables")[0].split("## Shards")[1]
    assert "## Tables (Parquet)" in text and "`annotations-quality`" in text and "`embeddings-tiny`" in text


def test_tables_keep_only_published_samples(demo_archive, publish_annotations, published):
    out, result = published
    keys = set()
    for group in result.layout.groups:
        for index in (out / group).glob("[0-9]*.parquet"):
            keys.update(pq.read_table(index, columns=["key"]).column("key").to_pylist())
    quality = pq.read_table(out / "annotations" / "quality.parquet")
    assert set(quality.column("key").to_pylist()) == keys
    assert pq.read_table(publish_annotations / "quality.parquet").num_rows > quality.num_rows or not (
        demo_archive / "other").is_dir()
    parts = sorted((out / "embeddings" / "tiny").glob("*.parquet"))
    assert {p.name.split("-")[0] for p in parts} == set(result.layout.groups)
    table = pq.read_table(parts[0])
    assert str(table.schema.field("image").type) == "fixed_size_list<element: halffloat>[8]"
    tables = {t.name: t for t in result.layout.tables}
    assert tables["annotations-quality"].rows == quality.num_rows
    assert tables["embeddings-tiny"].rows == len(keys)


def test_rerun_places_nothing_and_a_foreign_folder_is_refused(demo_archive, publish_annotations, published, tmp_path):
    out, first = published
    same = _publish(demo_archive, out, annotations_dir=publish_annotations, embeddings=("tiny",))
    assert same.layout.placed == [] and same.layout.unchanged == len(first.layout.files)
    again = _publish(demo_archive, out, annotations=False)
    assert again.layout.placed == ["README.md"]  # shards, indexes, sizes unchanged; the card lost its tables
    assert (out / "annotations" / "quality.parquet").is_file()  # never deletes what an earlier run wrote
    marker = json.loads((out / MARKER_NAME).read_text())
    assert marker["complete"] and "annotations/quality.parquet" in marker["files"]

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(PublishError, match="holds files publish did not write"):
        _publish(demo_archive, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_dry_run_writes_nothing_and_unknown_groups_are_refused(demo_archive, tmp_path):
    result = _publish(demo_archive, tmp_path / "dry", dry_run=True)
    assert not (tmp_path / "dry").exists() and result.layout.files
    with pytest.raises(ValueError, match="unknown licence group"):
        PublishConfig(archive=demo_archive, to=str(tmp_path / "y"), license_groups=("public",))
    with pytest.raises(PublishError, match="no manifest.json"):
        _publish(tmp_path, tmp_path / "z")


@pytest.mark.slow
@pytest.mark.parametrize("streaming", [False, True])
def test_published_folder_loads_with_datasets(published, demo_archive, tmp_path, monkeypatch, streaming):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out, result = published
    meta = read_card_yaml((out / "README.md").read_text())
    cache = str(tmp_path / "hf-cache")
    formats = set()
    for info in meta["dataset_info"]:
        name = info["config_name"]
        ds = datasets.load_dataset(str(out), name, split="train", streaming=streaming, cache_dir=cache)
        expected = datasets.Features._from_yaml_list(info["features"])
        rows = list(ds)
        assert len(rows) == sum(json.loads((out / name / "sizes.json").read_text()).values())
        assert ds.features == expected
        for row in rows:
            fmt = "jpg" if row["jpg"] is not None else "png"
            assert row[fmt].size == (row["json"]["width"], row["json"]["height"])  # decoded
            formats.add(fmt)
        assert any(row["json"][field] is None for row in rows for field in ("pmid", "figure_license", "doi"))
    assert formats == {"jpg", "png"}
    for table in result.layout.tables:
        argument = {table.load.split("=")[0]: table.load.split("=", 1)[1].strip('"')}
        ds = datasets.load_dataset(str(out), split="train", streaming=streaming, cache_dir=cache, **argument)
        assert sum(1 for _ in ds) == table.rows
        assert ds.features == datasets.Features._from_yaml_list(table.features)
