"""`select --keys`: a key manifest (a search export, a select manifest, JSON Lines) restricts the selection.

The export side is `archive.selection.manifest_for_keys` (what `serve`'s export calls); what it
writes must go through `select --keys` into shards holding exactly those keys, and be read as it is
by train's key-manifest source.
"""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import typer
from typer.testing import CliRunner

from biomedica.archive.reader import read_shard_index
from biomedica.archive.selection import manifest_for_keys, parse_key_manifest, write_manifest
from biomedica.archive.split import HeldOutSplit
from biomedica.select import SelectConfig, run_select


def _app() -> typer.Typer:
    from biomedica.cli.select import select

    app = typer.Typer()
    app.command()(select)
    app.command("noop")(lambda: None)  # two commands keep `select` a named subcommand
    return app


def _index(archive) -> dict[str, dict]:
    return {r["key"]: r for r in read_shard_index(archive, columns=["key", "pmcid", "license_group", "year"]).to_pylist()}


def _shard_keys(out) -> list[str]:
    return sorted(k for path in sorted(out.glob("*.parquet")) for k in pq.read_table(path, columns=["key"]).column(0).to_pylist())


def _export(archive, keys, tmp_path, held_out=None, name="export.parquet"):
    selection = manifest_for_keys(archive, keys, held_out)
    path = tmp_path / name
    pq.write_table(selection.table, path)
    return selection, path


def test_export_then_select_keys_gives_shards_with_exactly_those_keys(curated, tmp_path):
    archive, annotations = curated
    keys = sorted(_index(archive))[::5]  # every fifth sample, across groups
    selection, path = _export(archive, [*keys, "PMC0_000", keys[0]], tmp_path)  # one unknown, one repeated
    assert selection.missing == ["PMC0_000"] and selection.held_out == 0
    assert sorted(selection.table.column("key").to_pylist()) == keys
    result = run_select(SelectConfig(archive=archive, annotations=annotations, out=tmp_path / "out", keys=path,
                                     held_out_fraction=0, output="shards", samples_per_shard=4))
    assert _shard_keys(tmp_path / "out") == keys
    assert result.selected == len(keys) and result.keys_listed == len(keys) and result.keys_missing == []
    summary = json.loads((tmp_path / "out" / "selection.json").read_text())
    assert summary["keys"] == {"listed": len(keys), "missing": 0, "missing_keys": []}
    assert any("keys listed in" in f for f in summary["filters"])


def test_keys_the_archive_lacks_are_counted_never_dropped_silently(curated, tmp_path):
    archive, annotations = curated
    keys = sorted(_index(archive))[:6]
    path = tmp_path / "keys.jsonl"
    path.write_text("".join(json.dumps({"shard": "commercial/000000.tar", "key": k}) + "\n"
                            for k in ["PMC1_999", *keys, "PMC2_999", keys[1]]))
    result = run_select(SelectConfig(archive=archive, annotations=annotations, out=tmp_path / "out", keys=path,
                                     held_out_fraction=0))
    assert result.selected == 6 and result.keys_listed == 8 and result.keys_missing == ["PMC1_999", "PMC2_999"]
    manifest = pq.read_table(tmp_path / "out" / "manifest.parquet")
    assert sorted(manifest.column("key").to_pylist()) == keys


def test_keys_combine_with_the_other_filters(curated, tmp_path):
    archive, annotations = curated
    index = _index(archive)
    keys = sorted(index)
    _, path = _export(archive, keys[::2], tmp_path)
    result = run_select(SelectConfig(archive=archive, annotations=annotations, out=tmp_path / "out", keys=path,
                                     license_groups=["commercial"], min_year=2018, held_out_fraction=0))
    expected = sorted(k for k in keys[::2] if index[k]["license_group"] == "commercial" and index[k]["year"] >= 2018)
    assert 0 < len(expected) < len(keys[::2])
    assert sorted(pq.read_table(tmp_path / "out" / "manifest.parquet").column("key").to_pylist()) == expected
    assert result.keys_missing == []  # filtered out is not missing


def test_held_out_articles_are_left_out_on_both_sides(curated, tmp_path):
    archive, annotations = curated
    index = _index(archive)
    split = HeldOutSplit(0.3, "keys-test")
    held = {k for k, r in index.items() if split.holds(k, r["pmcid"] or None)}
    assert 0 < len(held) < len(index)
    selection, path = _export(archive, sorted(index), tmp_path, held_out=split)
    assert selection.held_out == len(held) and set(selection.table.column("key").to_pylist()) == set(index) - held
    assert parse_key_manifest(path.read_bytes(), str(path)).held_out == split  # recorded as select records it
    everything, all_path = _export(archive, sorted(index), tmp_path, held_out=None, name="all.parquet")
    assert everything.held_out == 0 and everything.table.num_rows == len(index)
    assert parse_key_manifest(all_path.read_bytes(), "all.parquet").held_out == HeldOutSplit(0.0)  # off, not unknown
    result = run_select(SelectConfig(archive=archive, annotations=annotations, out=tmp_path / "out", keys=all_path,
                                     held_out_fraction=0.3, held_out_salt="keys-test"))
    assert result.held_out_excluded == len(held) and result.selected == len(index) - len(held)
    assert manifest_for_keys(archive, sorted(index)).held_out == sum(  # eval's default split unless told
        HeldOutSplit().holds(k, r["pmcid"] or None) for k, r in index.items())


def test_train_reads_the_export_as_written(curated, tmp_path):
    from biomedica.train.config import SourceConfig
    from biomedica.train.sources import resolve_source

    archive, _ = curated
    keys = sorted(_index(archive))[1::4]
    selection = manifest_for_keys(archive, keys, HeldOutSplit(0.0))
    buffer = io.BytesIO()
    pq.write_table(selection.table, buffer)
    parsed = parse_key_manifest(buffer.getvalue(), "export.parquet")
    assert sorted(k for _, k in parsed.rows) == keys
    assert all(url.startswith(str(archive.resolve())) and url.endswith(".tar") for url, _ in parsed.rows)
    path = write_manifest(tmp_path / "sel", selection.table)
    resolved = resolve_source(SourceConfig(name="search", selection=str(path)))
    assert resolved.origin == "selection" and resolved.samples == len(keys)
    assert sorted(k for shard in resolved.shards for k in shard.keys) == keys
    assert resolved.held_out == HeldOutSplit(0.0)


def test_bad_key_manifests_are_refused_in_one_line(curated, tmp_path):
    archive, annotations = curated
    bad = tmp_path / "keys.csv"
    bad.write_text("key\nPMC1_000\n")
    broken = tmp_path / "keys.jsonl"
    broken.write_text('{"key": "PMC1_000", "secret": "do-not-echo"}\n')
    for path, message in ((bad, "must end in .parquet or .jsonl"), (broken, "keys.jsonl:1: expected a JSON object"),
                          (tmp_path / "none.parquet", "no selection manifest")):
        result = CliRunner().invoke(_app(), ["select", str(archive), "--out", str(tmp_path / "o"), "--keys", str(path)])
        output = " ".join(result.output.split())
        assert result.exit_code != 0 and message in output and "Traceback" not in output and "do-not-echo" not in output
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"shard": "x.tar", "key": "PMC404_000"}) + "\n")
    result = CliRunner().invoke(_app(), ["select", str(archive), "--out", str(tmp_path / "o2"), "--keys", str(good),
                                         "--annotations", str(annotations)])
    output = " ".join(result.output.split())
    assert result.exit_code == 0, output
    assert "keys listed" in output and "not in the archive or superseded" in output and "PMC404_000" in output


def test_select_manifest_output_feeds_select_keys(curated, tmp_path):
    fraction = 0.0
    archive, annotations = curated
    first = run_select(SelectConfig(archive=archive, annotations=annotations, out=tmp_path / "a",
                                    license_groups=["noncommercial"], held_out_fraction=fraction))
    again = run_select(SelectConfig(archive=archive, annotations=annotations, out=tmp_path / "b",
                                    keys=tmp_path / "a", held_out_fraction=fraction))  # the folder holding manifest.parquet
    assert again.selected == first.selected and again.keys_missing == []
    read = [pq.read_table(tmp_path / d / "manifest.parquet").column("key").to_pylist() for d in ("a", "b")]
    assert read[0] == read[1]


def test_a_changed_article_is_selected_once_from_its_live_copy(demo_corpus, tmp_path):
    """An export naming the old copy's shard still selects the key once, from the copy the archive keeps."""
    import shutil

    from biomedica.archive.superseded import read_superseded
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest

    src = tmp_path / "src"
    for folder in sorted(p for p in demo_corpus.iterdir() if p.is_dir())[:4]:
        shutil.copytree(folder, src / folder.name)
    archive = tmp_path / "archive"

    def ingest() -> None:
        run_ingest(IngestConfig(input=src, output=archive, articles_per_unit=2, progress=False))

    ingest()
    first = read_shard_index(archive, columns=["key", "shard"]).to_pylist()
    article = first[0]["key"].split("_")[0]
    xml = next((src / article).glob("*.nxml"))
    xml.write_bytes(xml.read_bytes() + b"\n<!-- corrected -->\n")
    ingest()
    mine = sorted(r["key"] for r in read_superseded(archive).to_pylist())
    assert mine and all(k.startswith(article + "_") for k in mine)
    old = tmp_path / "old.jsonl"  # rows as an export made before the change wrote them
    old.write_text("".join(json.dumps({"shard": r["shard"], "key": r["key"]}) + "\n" for r in first))
    result = run_select(SelectConfig(archive=archive, out=tmp_path / "out", keys=old, held_out_fraction=0))
    rows = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()
    assert result.keys_missing == [] and sorted(r["key"] for r in rows) == sorted(r["key"] for r in first)
    live = {r["key"]: r["shard"] for r in read_shard_index(archive, columns=["key", "shard"]).to_pylist()}
    assert all(r["shard"] == live[r["key"]] for r in rows)
    assert {live[k] for k in mine} != {r["shard"] for r in first if r["key"] in mine}  # it moved to the new unit
    selection = manifest_for_keys(archive, [r["key"] for r in first], None)
    assert selection.missing == [] and selection.table.column("key").to_pylist() == [r["key"] for r in rows]
