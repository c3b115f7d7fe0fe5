"""Export a search as a select manifest: "search -> train on it" in one step.

The bytes are `manifest.parquet` exactly as `biomedica select --output manifest` writes it
(url, group, shard, key, member offsets; the held-out split in the schema metadata), so
`biomedica select ARCHIVE --keys FILE`, train's key-manifest source and `parse_key_manifest`
read it as it is. The rows come from the index's docs table (which holds every member offset),
not from the archive's shard index: at 24M figures reading that whole index per export is
what this avoids; `biomedica.archive.selection.manifest_for_rows` then does what
`manifest_for_keys` does (held-out articles left out unless asked for, sorted, split recorded),
so an export equals `manifest_for_keys` of the same keys.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.archive.selection import MANIFEST_COLUMNS, manifest_for_rows

ROW_COLUMNS = [c for c in MANIFEST_COLUMNS if c != "url"] + ["pmcid"]  # what an export takes from the docs table


def manifest_bytes(archive: Path, rows: pa.Table, include_held_out: bool = False) -> tuple[bytes, int, int]:
    """(Parquet bytes of the manifest, rows, held-out rows left out) for docs-table `rows` (live samples of `archive`)."""
    rows = rows.select(ROW_COLUMNS)
    selection = manifest_for_rows(archive, rows, None) if include_held_out else manifest_for_rows(archive, rows)
    out = io.BytesIO()
    pq.write_table(selection.table, out)
    return out.getvalue(), selection.table.num_rows, selection.held_out
