"""The selection manifest: what select writes is what train reads, with the held-out split it records."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from biomedica.archive.selection import (
    MANIFEST_COLUMNS,
    SelectionManifestError,
    manifest_table,
    parse_key_manifest,
    read_key_manifest,
    read_manifest_keys,
    write_manifest,
)
from biomedica.archive.split import HeldOutSplit


def _rows():
    offsets = {c: pa.array([0, 512], pa.int64()) for c in MANIFEST_COLUMNS if c.endswith(("_offset", "_size"))}
    return pa.table({"group": ["commercial", "other"], "shard": ["000000.tar", "000003.tar"],
                     "key": ["PMC1_000", "PMC2_001"], **offsets})


def test_selection_manifest_round_trip(tmp_path):
    archive = tmp_path / "archive"
    path = write_manifest(tmp_path / "sel", manifest_table(archive, _rows(), HeldOutSplit(0.1, "salt-x")))
    assert pq.read_schema(path).names == MANIFEST_COLUMNS
    manifest = read_key_manifest(tmp_path / "sel")
    urls = [str(archive.resolve() / "commercial" / "000000.tar"), str(archive.resolve() / "other" / "000003.tar")]
    assert manifest.rows == list(zip(urls, ["PMC1_000", "PMC2_001"]))
    assert manifest.held_out == HeldOutSplit(0.1, "salt-x")
    assert read_manifest_keys(path) == {urls[0]: {"PMC1_000"}, urls[1]: {"PMC2_001"}}
    off = write_manifest(tmp_path / "off", manifest_table(archive, _rows(), HeldOutSplit(0.0)))
    assert read_key_manifest(off).held_out == HeldOutSplit(0.0)  # recorded as off, not unknown


def test_hand_made_key_manifests_record_no_split(tmp_path):
    jsonl = parse_key_manifest(b'{"shard": "a/000000.tar", "key": "K1"}\n\n', "keys.jsonl")
    assert jsonl.rows == [("a/000000.tar", "K1")] and jsonl.held_out is None
    pq.write_table(pa.table({"shard": ["a.tar"], "key": ["K2"]}), tmp_path / "keys.parquet")
    parquet = read_key_manifest(tmp_path / "keys.parquet")
    assert parquet.rows == [("a.tar", "K2")] and parquet.held_out is None
    with pytest.raises(SelectionManifestError, match=r"keys.jsonl:1: expected a JSON object with shard and key"):
        parse_key_manifest(b'{"key": "K"}\n', "keys.jsonl")
    with pytest.raises(SelectionManifestError, match="must end in .parquet or .jsonl"):
        parse_key_manifest(b"", "keys.csv")
    bad = pa.table({"shard": ["a.tar"], "key": ["K"]}).replace_schema_metadata({b"biomedica.held_out": b"{}"})
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(SelectionManifestError, match="bad.parquet: bad biomedica.held_out metadata"):
        read_key_manifest(tmp_path / "bad.parquet")
    with pytest.raises(FileNotFoundError, match="run `biomedica select"):
        read_key_manifest(tmp_path / "none")


def test_old_select_write_names_still_import():
    import biomedica.archive.selection as selection
    from biomedica.select import write

    assert write.manifest_table is selection.manifest_table and write.MANIFEST_NAME == "manifest.parquet"


def test_manifest_for_keys_on_an_archive(demo_archive):
    from pathlib import Path

    from biomedica.archive.reader import read_member, read_shard_index
    from biomedica.archive.selection import manifest_for_keys

    index = {r["key"]: r for r in read_shard_index(demo_archive).to_pylist()}
    keys = sorted(index)[::3]
    table, missing, held_out = manifest_for_keys(demo_archive, ["PMC0_000", *reversed(keys)], HeldOutSplit(0.0))
    assert missing == ["PMC0_000"] and held_out == 0
    assert table.column_names == MANIFEST_COLUMNS and sorted(table.column("key").to_pylist()) == keys
    rows = table.to_pylist()
    assert rows == sorted(rows, key=lambda r: (r["group"], r["shard"], r["key"]))
    for row in rows:  # the offsets point at the sample's own members
        assert Path(row["url"]).is_file() and Path(row["url"]).parent.name == row["group"]
        caption = read_member(demo_archive, row["group"], row["shard"], row["txt_offset"], row["txt_size"])
        assert caption.decode("utf-8") == index[row["key"]]["caption"]
    assert read_key_manifest_bytes(table).held_out == HeldOutSplit(0.0)
    empty = manifest_for_keys(demo_archive, [], HeldOutSplit(0.0))
    assert empty.table.num_rows == 0 and empty.table.column_names == MANIFEST_COLUMNS and empty.missing == []


def read_key_manifest_bytes(table: pa.Table):
    import io

    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return parse_key_manifest(buffer.getvalue(), "export.parquet")
