"""The dataset card finalize writes: exact features from the records' schemas, every shard listed, kept current."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from datasets import Features

from biomedica.archive.card import (
    CARD_NAME,
    WEBDATASET_FEATURES,
    archive_configs,
    hub_license_id,
    index_config,
    read_card_yaml,
    render_card,
    schema_features,
    write_card,
)
from biomedica.archive.manifest import Manifest, finalize_archive
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.records import FIGURE_SCHEMA, SHARD_SCHEMA
from biomedica.testing.growth import article_folders, copy_articles


def _card(root: Path) -> tuple[str, dict]:
    text = (root / CARD_NAME).read_text(encoding="utf-8")
    return text, read_card_yaml(text)


@pytest.mark.parametrize("schema", [FIGURE_SCHEMA, SHARD_SCHEMA], ids=["figure", "shard-index"])
def test_card_features_are_the_records_arrow_schema_exactly(schema):
    assert Features._from_yaml_list(schema_features(schema)).arrow_schema == schema


def test_webdataset_features_hold_the_figure_record_with_its_types():
    features = Features._from_yaml_list(WEBDATASET_FEATURES)
    assert list(features) == ["__key__", "__url__", "jpg", "png", "txt", "json"]
    assert features.arrow_schema.field("json").type == pa.struct(list(FIGURE_SCHEMA))
    assert type(features["jpg"]).__name__ == type(features["png"]).__name__ == "Image"


def test_finalize_writes_a_card_whose_yaml_parses_and_lists_every_shard(demo_archive):
    manifest = Manifest.read(demo_archive)
    text, meta = _card(demo_archive)
    assert [c["config_name"] for c in meta["configs"]] == list(manifest.groups)
    assert [c.get("default", False) for c in meta["configs"]] == [True] + [False] * (len(manifest.groups) - 1)
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    for name, group in manifest.groups.items():
        sizes = json.loads((demo_archive / name / "sizes.json").read_text())
        assert infos[name]["features"] == WEBDATASET_FEATURES
        assert infos[name]["splits"] == [{"name": "train", "num_bytes": group.bytes, "num_examples": sum(sizes.values())}]
        data_files = next(c["data_files"] for c in meta["configs"] if c["config_name"] == name)
        assert data_files == [{"split": "train", "path": [f"{name}/*.tar"]}]
        assert sorted(p.relative_to(demo_archive).as_posix() for p in demo_archive.glob(f"{name}/*.tar")) == sorted(
            s.path for s in group.shards)
        for shard in group.shards:  # the shard list people ask for: file, samples, bytes, sha256
            assert f"| `{shard.path}` | {shard.samples:,} | {shard.bytes:,} | `{shard.sha256}` |" in text
    assert meta["license"] == sorted(meta["license"]) and "cc-by-4.0" in meta["license"]
    if "other" in meta["license"]:  # the hub asks a name and a link for `other`; the link is PMC's licence page
        assert meta["license_name"] == "per-sample" and meta["license_link"].startswith("https://pmc.ncbi.nlm.nih.gov/")
    for heading in ("## Load it", "## Superseded samples", "## How it was built", "## Licence and attribution",
                    "## Citation"):
        assert heading in text
    assert manifest.finalized_at in text and f"schema {manifest.schema_version}" in text


def test_each_config_names_only_its_licence_group_files(demo_archive):
    """articles/, errors/ and the Parquet indexes are never data of a config: every data_files is explicit."""
    _, meta = _card(demo_archive)
    for config in meta["configs"]:
        paths = [p for entry in config["data_files"] for p in entry["path"]]
        assert paths and all(p.startswith(config["config_name"] + "/") and p.endswith(".tar") for p in paths)


def test_the_card_is_deterministic_except_the_finalize_time(demo_archive, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(demo_archive, root)
    configs = archive_configs(root)
    assert render_card(root, configs, title="t") == render_card(root, archive_configs(root), title="t")
    before = (root / CARD_NAME).read_text().splitlines()
    manifest = json.loads((root / "manifest.json").read_text())
    finalize_archive(root, manifest["build_config"], {k: v for k, v in manifest["source"].items() if k != "builds"})
    after = (root / CARD_NAME).read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and all("finalized at" in a for a, _ in changed)


def test_finalize_never_replaces_a_readme_it_did_not_write(demo_archive, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(demo_archive, root)
    (root / CARD_NAME).write_text("# my notes\n")
    manifest = json.loads((root / "manifest.json").read_text())
    with pytest.warns(UserWarning, match=r"README\.md biomedica did not write; move it away"):
        finalize_archive(root, manifest["build_config"], manifest["source"])
    assert (root / CARD_NAME).read_text() == "# my notes\n"
    with pytest.raises(FileExistsError):
        write_card(root)


def test_a_tar_without_a_unit_marker_is_left_out_by_listing_the_shards(demo_archive, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(demo_archive, root)
    (root / "commercial" / "000099.tar").write_bytes(b"")  # e.g. a unit killed between rename and marker
    write_card(root)
    _, meta = _card(root)
    paths = next(c["data_files"] for c in meta["configs"] if c["config_name"] == "commercial")[0]["path"]
    assert paths == [s.path for s in Manifest.read(root).groups["commercial"].shards]


def test_markers_count_licences_as_written_and_older_markers_fall_back_to_the_indexes(demo_archive, tmp_path):
    """Finalize reads no shard to list the licences: each unit marker counts them; a marker without the
    count (written before biomedica kept it) gets its shard's index read, with the same result."""
    import pyarrow.parquet as pq

    from biomedica.archive.units import completed_units

    root = tmp_path / "archive"
    shutil.copytree(demo_archive, root)
    for stats in completed_units(root).values():
        assert set(stats.licenses) == set(stats.shards)
        for group, shard in stats.shards.items():
            column = pq.read_table(root / group / shard.name.replace(".tar", ".parquet"), columns=["license"])
            expected = Counter(v or "unknown" for v in column.column("license").to_pylist())
            assert stats.licenses[group] == dict(expected) and sum(expected.values()) == shard.samples
    recorded = {c.name: c.licenses for c in archive_configs(root)}
    assert any("unknown" in counts for counts in recorded.values())
    for marker in (root / "_units").glob("*.json"):
        data = json.loads(marker.read_text())
        del data["licenses"]
        marker.write_text(json.dumps(data))
    assert all(stats.licenses == {} for stats in completed_units(root).values())
    assert {c.name: c.licenses for c in archive_configs(root)} == recorded


def test_a_card_refuses_configs_of_two_builders(demo_archive):
    with pytest.raises(ValueError, match="mix builders"):
        render_card(demo_archive, archive_configs(demo_archive) + [index_config(demo_archive)], title="t")
    meta = read_card_yaml(render_card(demo_archive, [index_config(demo_archive)], title="index"))
    assert meta["dataset_info"][0]["features"] == schema_features(SHARD_SCHEMA)


@pytest.mark.parametrize(("code", "hub_id"), [("CC BY 4.0", "cc-by-4.0"), ("CC BY-NC-SA 3.0", "cc-by-nc-sa-3.0"),
                                              ("CC0 1.0", "cc0-1.0"), (None, "other"), ("unknown terms", "other"),
                                              ("PDM 1.0", "other"), ("CC BY", "cc"), ("CC BY-ND 3.0", "cc"),
                                              ("CC BY-NC-ND 2.5", "cc")])
def test_hub_licence_ids(code, hub_id):
    assert hub_license_id(code) == hub_id


# The hub's own list (huggingface.co/docs/hub/repositories-licenses), the ids of it a PMC licence can be.
HUB_LICENCES = {"cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
                "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0",
                "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "other"}


@pytest.mark.parametrize("written", [
    "https://creativecommons.org/licenses/by/4.0/", "http://creativecommons.org/licenses/by-nc-nd/2.5/",
    "https://creativecommons.org/licenses/by-nd/3.0/", "https://creativecommons.org/licenses/by-sa/2.0/",
    "http://creativecommons.org/licenses/by/3.0/igo/", "https://creativecommons.org/publicdomain/zero/1.0/",
    "https://creativecommons.org/publicdomain/mark/1.0/", "CC BY", "CC BY-NC", "cc-by-nc-sa", "NO-CC CODE", None,
])
def test_every_pmc_licence_becomes_an_id_the_hub_accepts(written):
    """The hub refuses a card whose `license` is not on its list: every normalised licence maps onto it."""
    from biomedica.licenses import normalize_license

    code = normalize_license(url=written).code if written and "://" in written else normalize_license(text=written).code
    assert hub_license_id(code) in HUB_LICENCES


@pytest.mark.slow
def test_an_incremental_ingest_keeps_the_card_current(demo_corpus, tmp_path):
    articles = article_folders(demo_corpus)
    src = copy_articles(articles[:6], tmp_path / "src")
    out = tmp_path / "archive"
    run_ingest(IngestConfig(input=src, output=out, articles_per_unit=3, progress=False))
    shards_before = sum(len(c["shards"]) for c in _shard_lists(out))
    copy_articles(articles[6:], src)
    run_ingest(IngestConfig(input=src, output=out, articles_per_unit=3, progress=False))
    manifest = Manifest.read(out)
    text, meta = _card(out)
    assert len(manifest.shards()) > shards_before
    assert {i["config_name"]: i["splits"][0]["num_examples"] for i in meta["dataset_info"]} == {
        name: g.samples for name, g in manifest.groups.items()}
    assert all(f"`{s.path}`" in text for s in manifest.shards())


def _shard_lists(root: Path) -> list[dict]:
    return [{"name": c.name, "shards": c.shards} for c in archive_configs(root)]
