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
