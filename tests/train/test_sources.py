import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from biomedica.train.config import SourceConfig
from biomedica.train.sources import SourceError, expand_urls, resolve_source

from .conftest import write_shards


def test_archive_source_takes_shards_and_counts_from_the_manifest(demo_archive):
    manifest = json.loads((demo_archive / "manifest.json").read_text())
    resolved = resolve_source(SourceConfig(name="c", archive=str(demo_archive), groups=["commercial"], held_out_fraction=0))
    expected = manifest["groups"]["commercial"]["shards"]
    assert [s.url for s in resolved.shards] == [str(demo_archive / "commercial" / e["name"]) for e in expected]
    assert [s.samples for s in resolved.shards] == [e["samples"] for e in expected]
    assert resolved.samples == manifest["groups"]["commercial"]["samples"]
    assert resolved.origin == "manifest.json"
    every_group = resolve_source(SourceConfig(name="all", archive=str(demo_archive), held_out_fraction=0))
    assert every_group.samples == manifest["totals"]["samples"]
    default = resolve_source(SourceConfig(name="all", archive=str(demo_archive)))  # the 5% eval split left out
    [note] = default.notes
    left_out = int(note.split(" sample(s) of held-out eval articles left out")[0].replace(",", ""))
    assert default.samples + left_out == manifest["totals"]["samples"] and "(fraction 0.05)" in note


def test_archive_source_over_http_and_a_missing_group(demo_archive, serve):
    server = serve(demo_archive)
    resolved = resolve_source(SourceConfig(name="c", archive=server.url + "/", groups=["noncommercial"], held_out_fraction=0))
    assert resolved.shards[0].url == f"{server.url}/noncommercial/000000.tar"
    manifest = json.loads((demo_archive / "manifest.json").read_text())
    assert resolved.samples == manifest["groups"]["noncommercial"]["samples"]
    assert server.shard_requests() == []  # counts come from manifest.json, no shard is read
    with pytest.raises(SourceError, match="no manifest.json"):
        resolve_source(SourceConfig(name="x", archive=server.url + "/commercial"))


def test_url_source_reads_sizes_json_beside_the_shards(tmp_path, serve):
    write_shards(tmp_path / "a", "A", [3, 5, 2], (1, 2, 3), "x")
    server = serve(tmp_path)
    resolved = resolve_source(SourceConfig(name="a", urls=server.url + "/a/{000000..000002}.tar"))
    assert [s.samples for s in resolved.shards] == [3, 5, 2]
    assert resolved.origin == "sizes.json"


def test_url_source_without_sizes_needs_num_samples(tmp_path):
    write_shards(tmp_path / "a", "A", [3, 5], (1, 2, 3), "x")
    (tmp_path / "a" / "sizes.json").unlink()
    pattern = str(tmp_path / "a" / "{000000..000001}.tar")
    with pytest.raises(SourceError, match="no sizes.json .* set num_samples"):
        resolve_source(SourceConfig(name="a", urls=pattern))
    resolved = resolve_source(SourceConfig(name="a", urls=pattern, num_samples=9))
    assert [s.samples for s in resolved.shards] == [5, 4]
    assert resolved.origin == "num_samples"


def test_url_source_shard_missing_from_sizes_json(tmp_path):
    write_shards(tmp_path / "a", "A", [3], (1, 2, 3), "x")
    with pytest.raises(SourceError, match="000001.tar is not listed"):
        resolve_source(SourceConfig(name="a", urls=str(tmp_path / "a" / "{000000..000001}.tar")))


def test_expand_urls_splits_and_expands_in_order():
    assert expand_urls("a/{0..1}.tar::b/{x,y}.tar") == ["a/0.tar", "a/1.tar", "b/x.tar", "b/y.tar"]
    assert expand_urls(["c.tar", "d/{2..3}.tar"]) == ["c.tar", "d/2.tar", "d/3.tar"]


def test_key_manifest_parquet_relative_shards_and_exact_counts(tmp_path, serve):
    write_shards(tmp_path / "archive" / "commercial", "A", [4, 4], (1, 2, 3), "x")
    (tmp_path / "sel").mkdir()
    rows = {"shard": ["../archive/commercial/000000.tar"] * 2 + ["../archive/commercial/000001.tar"],
            "key": ["A000_001", "A000_003", "A001_000"], "score": [0.1, 0.2, 0.3]}
    pq.write_table(pa.table(rows), tmp_path / "sel" / "subset.parquet")
    server = serve(tmp_path)
    resolved = resolve_source(SourceConfig(name="s", selection=f"{server.url}/sel/subset.parquet"))
    assert [(s.url, s.samples, s.keys, s.shard_samples) for s in resolved.shards] == [
        (f"{server.url}/archive/commercial/000000.tar", 2, ("A000_001", "A000_003"), 4),
        (f"{server.url}/archive/commercial/000001.tar", 1, ("A001_000",), 4),
    ]
    assert [s.sparse for s in resolved.shards] == [True, True]
    assert resolved.origin == "selection"


def test_key_manifest_jsonl_and_its_errors(tmp_path):
    good = tmp_path / "subset.jsonl"
    good.write_text('{"shard": "a/000000.tar", "key": "K1"}\n\n{"shard": "a/000000.tar", "key": "K2"}\n')
    resolved = resolve_source(SourceConfig(name="s", selection=str(good)))
    assert resolved.shards[0].url == str(tmp_path / "a" / "000000.tar")
    assert resolved.shards[0].keys == ("K1", "K2")
    assert resolved.shards[0].shard_samples is None and resolved.shards[0].sparse  # no sizes.json: let the index decide
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"shard": "a.tar"}\n')
    with pytest.raises(SourceError, match=r"bad.jsonl:1: expected a JSON object with shard and key"):
        resolve_source(SourceConfig(name="s", selection=str(bad)))
    pq.write_table(pa.table({"key": ["K"]}), tmp_path / "nokey.parquet")
    with pytest.raises(SourceError, match=r"lacks column\(s\) \['shard'\]"):
        resolve_source(SourceConfig(name="s", selection=str(tmp_path / "nokey.parquet")))
    with pytest.raises(SourceError, match="not found"):
        resolve_source(SourceConfig(name="s", selection=str(tmp_path / "none.parquet")))


def test_hf_archive_resolves_and_streams_through_the_hub_endpoint(demo_archive, serve, tmp_path, monkeypatch):
    import subprocess

    from biomedica.net.stream import pipe_url

    hub = tmp_path / "hub" / "datasets" / "org" / "pmc-archive" / "resolve" / "main"
    hub.parent.mkdir(parents=True)
    hub.symlink_to(demo_archive)
    server = serve(tmp_path / "hub", token="hf_secret")
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    resolved = resolve_source(SourceConfig(name="hub", archive="hf://datasets/org/pmc-archive", groups=["commercial"],
                                           held_out_fraction=0))
    first = resolved.shards[0]
    assert first.url == "hf://datasets/org/pmc-archive/commercial/000000.tar"
    command = pipe_url(first.url, resolved.fetch)[len("pipe:"):]
    data = subprocess.run(command, shell=True, capture_output=True, check=True).stdout
    assert data == (demo_archive / "commercial" / "000000.tar").read_bytes()
    assert server.options.requests[-1]["path"] == "/datasets/org/pmc-archive/resolve/main/commercial/000000.tar"


def test_select_manifest_streams_exactly_the_selected_keys(demo_archive, tmp_path):
    """A `biomedica select --output manifest` result is a training source as it is."""
    from biomedica.select.config import SelectConfig
    from biomedica.select.run import run_select

    result = run_select(SelectConfig(archive=demo_archive, out=tmp_path / "sel", license_groups=["commercial"],
                                     min_year=2018))
    manifest = pq.read_table(tmp_path / "sel" / "manifest.parquet").to_pylist()
    assert result.selected == len(manifest) > 0
    resolved = resolve_source(SourceConfig(name="s", selection=str(tmp_path / "sel" / "manifest.parquet")))
    assert sum(s.samples for s in resolved.shards) == len(manifest)
    assert {s.url for s in resolved.shards} == {row["url"] for row in manifest}
    assert {k for s in resolved.shards for k in s.keys} == {row["key"] for row in manifest}


def _keys_of(resolved) -> set[str]:
    """Every sample key a resolved source streams (whole shards read from their index)."""
    keys = set()
    for shard in resolved.shards:
        if shard.keys is not None:
            keys |= set(shard.keys)
        else:
            keys |= set(pq.read_table(shard.url.removesuffix(".tar") + ".parquet", columns=["key"]).column("key").to_pylist())
    return keys


def test_an_archive_validation_source_keeps_only_the_held_out_articles(demo_archive, tmp_path):
    """data.val from an archive is exactly what evaluation holds out: no training article in it."""
    from biomedica.archive.keys import article_of
    from biomedica.archive.split import HeldOutSplit
    from biomedica.train.config import parse_config
    from biomedica.train.openclip_args import build_plan

    from .conftest import tiny_config

    every_key = _keys_of(resolve_source(SourceConfig(name="all", archive=str(demo_archive), held_out_fraction=0)))
    assert len(every_key) == json.loads((demo_archive / "manifest.json").read_text())["totals"]["samples"]
    source = {"name": "a", "archive": str(demo_archive), "held_out_fraction": 0.3}
    train = resolve_source(SourceConfig(**source))
    val = resolve_source(SourceConfig(**source), role="val")
    train_keys, val_keys = _keys_of(train), _keys_of(val)
    assert train_keys and val_keys
    assert train_keys.isdisjoint(val_keys) and train_keys | val_keys == every_key
    assert (train.samples, val.samples) == (len(train_keys), len(val_keys))
    assert all(HeldOutSplit(0.3).holds(k) for k in val_keys) and val.held_out == HeldOutSplit(0.3)
    assert {article_of(k) for k in train_keys}.isdisjoint({article_of(k) for k in val_keys})
    assert val.notes == [f"data.val a: only the held-out eval articles (fraction 0.3); {len(train_keys):,} training sample(s) left out"]

    config = parse_config(tiny_config(tmp_path, [source], data={"sources": [source], "val": source, "workers": 1}))
    plan = build_plan(config)
    assert plan.val.samples == len(val_keys) and val.notes[0] in plan.notes
    with pytest.raises(SourceError, match="held_out_fraction 0 holds out no article"):
        resolve_source(SourceConfig(name="a", archive=str(demo_archive), held_out_fraction=0), role="val")


def test_a_stale_shard_index_is_refused_not_used_for_the_split(demo_archive, tmp_path):
    """An index with fewer rows than the manifest counts would let unlisted samples dodge the held-out split."""
    import shutil

    root = tmp_path / "archive"
    shutil.copytree(demo_archive, root)
    index = root / "commercial" / "000000.parquet"
    table = pq.read_table(index)
    pq.write_table(table.slice(0, table.num_rows - 1), index)
    for role in ("train", "val"):
        with pytest.raises(SourceError, match=rf"000000.parquet has {table.num_rows - 1} rows but manifest.json counts "
                                              rf"{table.num_rows} samples .* the index is stale"):
            resolve_source(SourceConfig(name="a", archive=str(root), held_out_fraction=0.3), role=role)
