"""Export a search as a select manifest: "search -> train on it" in one step.

The bytes are `manifest.parquet` exactly as `biomedica select --output manifest` writes it
(`biomedica.archive.selection.manifest_for_keys`: url, group, shard, key, member offsets; the
held-out split in the schema metadata), so `biomedica select ARCHIVE --keys FILE`, train's
key-manifest source and `parse_key_manifest` read it as it is. Like select, articles that
evaluation holds out are left out unless asked for.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq

from biomedica.archive.selection import manifest_for_keys


def manifest_bytes(archive: Path, keys: list[str], include_held_out: bool = False) -> tuple[bytes, int, int]:
    """(Parquet bytes of the manifest, rows, held-out rows left out) for `keys` (live samples of `archive`)."""
    selection = manifest_for_keys(archive, keys, None) if include_held_out else manifest_for_keys(archive, keys)
    out = io.BytesIO()
    pq.write_table(selection.table, out)
    return out.getvalue(), selection.table.num_rows, selection.held_out
