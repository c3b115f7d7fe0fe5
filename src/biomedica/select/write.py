"""Writing a selection as new WebDataset shards (the manifest form is `archive.selection`).

Shards (`NNNNNN.tar` + `NNNNNN.parquet` index + `sizes.json`): a self-contained subset in the
archive's own format (same members, same index schema), readable by OpenCLIP with
`--train-data 'out/{000000..000009}.tar'`. Member bytes are copied with one seek each,
never re-encoded. Each shard is published atomically.

Both forms also write `selection.json` (`archive.selection.write_selection_summary`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path

import pyarrow as pa

from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.manifest import brace_pattern
from biomedica.archive.selection import (  # noqa: F401 - moved to archive.selection; old names kept for one release
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    SELECTION_NAME,
    manifest_key_filter,
    manifest_table,
    read_manifest_keys,
    write_manifest,
    write_selection_summary,
)
from biomedica.archive.shard_writer import ShardWriter
from biomedica.io.atomic import publish, write_json_atomic
from biomedica.records import FigureRecord

SIZES_NAME = "sizes.json"
_RECORD_FIELDS = [f.name for f in fields(FigureRecord)]


def _chunks(rows: list[dict], size: int) -> Iterator[list[dict]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def write_shards(archive: Path, out: Path, rows: pa.Table, samples_per_shard: int,
                 progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Copy the selected samples into new shards under `out`; returns sizes.json's content."""
    archive = Path(archive)
    layout = ArchiveLayout(archive)
    out = Path(out)
    sizes: dict[str, int] = {}
    records = rows.to_pylist()
    handles: dict[Path, object] = {}
    try:
        for number, chunk in enumerate(_chunks(records, samples_per_shard)):
            name = f"{number:06d}"
            writer = ShardWriter(out / f"{name}.tar", out / f"{name}.parquet")
            try:
                for row in chunk:
                    tar = layout.group_dir(row["group"]) / row["shard"]
                    handle = handles.get(tar)
                    if handle is None:
                        handle = handles[tar] = open(tar, "rb")
                    handle.seek(row["image_offset"])
                    image = handle.read(row["image_size"])
                    if len(image) != row["image_size"]:
                        raise ValueError(f"{tar}: image of {row['key']} is truncated; run `biomedica inspect --verify`")
                    record = FigureRecord(**{f: row.get(f) for f in _RECORD_FIELDS})
                    record.mentions = record.mentions or []
                    record.keywords = record.keywords or []
                    record.subjects = record.subjects or []
                    writer.add(record, image, record.image_format)
                    if progress:
                        progress(1)
                finished = writer.finish()
            except BaseException:
                writer.discard()
                raise
            for temporary, final in finished.renames:
                publish(temporary, final)
            sizes[finished.name] = finished.samples
    finally:
        for handle in handles.values():
            handle.close()
    write_json_atomic(out / SIZES_NAME, sizes)
    return sizes



def shard_pattern(out: Path, sizes: dict[str, int]) -> str | None:
    """Brace pattern naming the written shards (`out/{000000..000003}.tar`)."""
    return brace_pattern(str(Path(out)), list(sizes))

