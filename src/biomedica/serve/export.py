"""Export a search as a select manifest: "search -> train on it" in one step.

The bytes are `manifest.parquet` exactly as `biomedica select --output manifest` writes it
(`biomedica.archive.selection`: url, group, shard, key, member offsets; the held-out split in
the schema metadata), so `biomedica select ARCHIVE --keys FILE`, `train`'s key-manifest source
and `parse_key_manifest` read it as it is. Like select, articles evaluation holds out are
left out unless asked for.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biomedica.archive.reader import read_shard_index
from biomedica.archive.selection import MANIFEST_COLUMNS, manifest_table
from biomedica.archive.split import HeldOutSplit


def manifest_rows(archive: Path, keys: list[str], held_out: HeldOutSplit) -> tuple[pa.Table, int]:
    """(manifest table of the live samples `keys`, sorted by shard then key; held-out rows dropped)."""
    columns = [c for c in MANIFEST_COLUMNS if c not in ("url", "group")] + ["pmcid"]
    index = read_shard_index(Path(archive), columns=columns)
    rows = index.filter(pc.is_in(index.column("key"), value_set=pa.array(list(dict.fromkeys(keys)), pa.string())))
    dropped = 0
    if held_out.enabled and rows.num_rows:
        held = [held_out.holds(k, p) for k, p in zip(rows.column("key").to_pylist(), rows.column("pmcid").to_pylist())]
        dropped = sum(held)
        rows = rows.filter(pa.array([not h for h in held]))
    rows = rows.sort_by([("group", "ascending"), ("shard", "ascending"), ("key", "ascending")])
    return manifest_table(archive, rows, held_out), dropped


def manifest_bytes(archive: Path, keys: list[str], include_held_out: bool = False) -> tuple[bytes, int, int]:
    """(Parquet bytes of the manifest, rows, held-out rows left out) for `keys`."""
    split = HeldOutSplit(0.0) if include_held_out else HeldOutSplit()
    table, dropped = manifest_rows(archive, keys, split)
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue(), table.num_rows, dropped
