import json

from biomedica.archive import finalize_archive, read_manifest
from biomedica.archive.manifest import brace_pattern


def test_sizes_json_counts_each_shard(two_unit_archive):
    sizes = {g: json.loads((two_unit_archive / g / "sizes.json").read_text())
             for g in ("commercial", "noncommercial", "other")}
    assert sizes == {
        "commercial": {"000000.tar": 3, "000001.tar": 2},
        "noncommercial": {"000001.tar": 1},
        "other": {"000000.tar": 2},
    }


def test_manifest_totals_and_groups(two_unit_archive):
    manifest = read_manifest(two_unit_archive)
    assert manifest["format"] == "biomedica-archive" and manifest["schema_version"] == "1.0"
    assert manifest["totals"]["units"] == 2
    assert manifest["totals"]["articles"] == 4
    assert manifest["totals"]["samples"] == 8
    assert manifest["totals"]["errors"] == 1
    assert manifest["units"] == [0, 1] and manifest["incomplete_units"] == []
    assert manifest["build_config"] == {"unit_size": 2, "image_policy": "original"}
    assert manifest["source"] == {"reader": "dir", "location": "fixtures"}
    commercial = manifest["groups"]["commercial"]
    assert commercial["samples"] == 5
    assert commercial["shard_pattern"] == "commercial/{000000..000001}.tar"
    assert [(s["name"], s["unit"], s["samples"]) for s in commercial["shards"]] == [
        ("000000.tar", 0, 3), ("000001.tar", 1, 2)]
    assert commercial["bytes"] == sum((two_unit_archive / "commercial" / s["name"]).stat().st_size
                                      for s in commercial["shards"])
    assert manifest["groups"]["noncommercial"]["shard_pattern"] == "noncommercial/000001.tar"


def test_finalize_lists_incomplete_units(two_unit_archive):
    (two_unit_archive / "other" / ".000002.tar.tmp-99").write_bytes(b"partial")
    manifest = finalize_archive(two_unit_archive, {}, {})
    assert manifest["incomplete_units"] == [2]
    assert manifest["totals"]["samples"] == 8


def test_brace_pattern_for_gaps():
    assert brace_pattern("other", ["000000.tar", "000002.tar"]) == "other/{000000,000002}.tar"
    assert brace_pattern("other", []) is None


def test_shard_pattern_and_sizes_give_openclip_the_dataset_length(two_unit_archive):
    # open_clip_train.data.get_dataset_size: expand the brace pattern, then sum sizes.json
    # entries by shard basename from the first shard's folder (its module needs pandas, so
    # the same two steps are done here).
    import os

    import braceexpand

    manifest = read_manifest(two_unit_archive)
    for group, info in manifest["groups"].items():
        shards = list(braceexpand.braceexpand(str(two_unit_archive / info["shard_pattern"])))
        assert all(os.path.isfile(s) for s in shards)
        sizes = json.loads((two_unit_archive / group / "sizes.json").read_text())
        assert sum(int(sizes[os.path.basename(s)]) for s in shards) == info["samples"]
