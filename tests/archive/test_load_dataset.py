"""Hugging Face `datasets` loads the archive as it is, thanks to the card finalize writes at its root.

Offline: a local folder never touches the hub; the Arrow cache goes to tmp_path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import Features, load_dataset
from datasets.exceptions import DatasetGenerationError

from biomedica.archive.card import CARD_NAME, read_card_yaml
from biomedica.archive.manifest import Manifest
from biomedica.records import FIGURE_SCHEMA


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def _load(root: Path, name: str | None, streaming: bool, cache: Path):
    return load_dataset(str(root), name, split="train", streaming=streaming, cache_dir=str(cache))


def _card_features(root: Path, name: str) -> Features:
    meta = read_card_yaml((root / CARD_NAME).read_text(encoding="utf-8"))
    return Features._from_yaml_list(next(i["features"] for i in meta["dataset_info"] if i["config_name"] == name))


def _index_records(root: Path, group: str) -> dict[tuple[str, str], dict]:
    """(shard file name, key) -> the figure record as the shard's Parquet index holds it."""
    records = {}
    for index in sorted((root / group).glob("[0-9]*.parquet")):
        for row in pq.read_table(index, columns=FIGURE_SCHEMA.names).to_pylist():
            records[(index.with_suffix(".tar").name, row["key"])] = row
    return records


def test_without_the_card_datasets_fails_as_the_issue_says(demo_archive, tmp_path):
    """Type inference from the first samples: a field null there and a string later cannot be cast."""
    tars = sorted(str(p) for p in (demo_archive / "noncommercial").glob("*.tar"))
    with pytest.raises(DatasetGenerationError) as failure:
        load_dataset("webdataset", data_files={"train": tars}, split="train", cache_dir=str(tmp_path / "cache"))
    assert "Couldn't cast array of type string to null" in f"{failure.value} {failure.value.__cause__}"
    ds = _load(demo_archive, "noncommercial", False, tmp_path / "cache-card")
    assert ds.num_rows == sum(json.loads((demo_archive / "noncommercial" / "sizes.json").read_text()).values())


@pytest.mark.parametrize("streaming", [False, True], ids=["arrow", "streaming"])
@pytest.mark.parametrize("group", ["commercial", "noncommercial", "other"])
def test_every_licence_group_loads_with_the_card_features_and_the_records_values(demo_archive, tmp_path, group,
                                                                                  streaming):
    ds = _load(demo_archive, group, streaming, tmp_path / "cache")
    assert ds.features == _card_features(demo_archive, group)
    rows = list(ds)
    sizes = json.loads((demo_archive / group / "sizes.json").read_text())
    assert len(rows) == sum(sizes.values())
    records = _index_records(demo_archive, group)
    seen = set()
    for row in rows:
        shard = Path(row["__url__"]).name
        seen.add((shard, row["__key__"]))
        record = records[(shard, row["__key__"])]
        assert row["json"] == record  # nulls come back None exactly where the record is null
        image = row[record["image_format"]]
        other = row["png" if record["image_format"] == "jpg" else "jpg"]
        assert other is None and image.size == (record["width"], record["height"])
        assert row["txt"] == record["caption"]
    assert seen == set(records)
    assert any(v is None for row in rows for v in row["json"].values())


@pytest.mark.parametrize("streaming", [False, True], ids=["arrow", "streaming"])
def test_a_png_and_a_jpeg_sample_decode(demo_archive, tmp_path, streaming):
    found = {}
    for group in Manifest.read(demo_archive).groups:
        for row in _load(demo_archive, group, streaming, tmp_path / "cache"):
            fmt = row["json"]["image_format"]
            if fmt not in found:
                image = row[fmt]
                image.load()  # the pixels, not only the header
                found[fmt] = (image.format, image.size)
        if len(found) == 2:
            break
    assert {fmt: f for fmt, (f, _) in found.items()} == {"jpg": "JPEG", "png": "PNG"}


def test_no_config_name_loads_the_default_group_and_nothing_else(demo_archive, tmp_path):
    first = next(iter(Manifest.read(demo_archive).groups))
    ds = load_dataset(str(demo_archive), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == Manifest.read(demo_archive).groups[first].samples
    assert {Path(u).parent.name for u in ds["__url__"]} == {first}


def test_a_copied_archive_loads_without_biomedica(demo_archive, tmp_path):
    """The card names files relative to itself: a copy elsewhere (a download of the hub repo) loads the same."""
    copy = tmp_path / "copy"
    shutil.copytree(demo_archive, copy, ignore=shutil.ignore_patterns("_units", "articles", "errors", "builds"))
    ds = _load(copy, "other", False, tmp_path / "cache")
    assert ds.num_rows == Manifest.read(demo_archive).groups["other"].samples
