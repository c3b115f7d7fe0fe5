"""Writing a selection: a manifest of (shard URL, key), or new WebDataset shards.

Manifest (`manifest.parquet`, one row per selected sample, sorted by shard then key):
`url` (absolute path of the source tar), `group`, `shard`, `key`, plus the member offsets,
so a training loader can stream the original shards and keep only these keys
(`biomedica.select.manifest_key_filter`), or read one sample with a seek.

Shards (`NNNNNN.tar` + `NNNNNN.parquet` index + `sizes.json`): a self-contained subset in the
archive's own format (same members, same index schema), readable by OpenCLIP with
`--train-data 'out/{000000..000009}.tar'`. Member bytes are copied with one seek each,
never re-encoded. Each shard is published atomically.

Both forms also write `selection.json`: the config, the SQL, the filters and the counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.io.atomic import publish, write_json_atomic, write_parquet_atomic
from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.manifest import _brace_pattern
from biomedica.archive.shard_writer import ShardWriter
from biomedica.records import FigureRecord

MANIFEST_NAME = "manifest.parquet"
SELECTION_NAME = "selection.json"
MANIFEST_COLUMNS = ["url", "group", "shard", "key", "image_offset", "image_size", "txt_offset", "txt_size",
                    "json_offset", "json_size"]
_RECORD_FIELDS = [f.name for f in fields(FigureRecord)]


def manifest_table(archive: Path, rows: pa.Table) -> pa.Table:
    """The manifest columns for selected rows (which carry `group`, `shard`, key and offsets)."""
    layout = ArchiveLayout(Path(archive).resolve())
    urls = [str(layout.group_dir(g) / s) for g, s in zip(rows.column("group").to_pylist(), rows.column("shard").to_pylist())]
    table = rows.select([c for c in MANIFEST_COLUMNS if c != "url"])
    return table.add_column(0, "url", pa.array(urls, pa.string()))


def write_manifest(out: Path, table: pa.Table) -> Path:
    path = Path(out) / MANIFEST_NAME
    write_parquet_atomic(path, table, compression="zstd")
    return path


def read_manifest_keys(path: Path) -> dict[str, set[str]]:
    """{shard url: keys to keep} from a manifest.parquet (or the folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no selection manifest; run `biomedica select --output manifest` first")
    table = pq.read_table(path, columns=["url", "key"])
    keep: dict[str, set[str]] = {}
    for url, key in zip(table.column("url").to_pylist(), table.column("key").to_pylist()):
        keep.setdefault(url, set()).add(key)
    return keep


def manifest_key_filter(path: Path) -> Callable[[dict], bool]:
    """A predicate for WebDataset samples (`__url__`, `__key__`): True for selected samples.

    Use with `wds.WebDataset(urls).select(manifest_key_filter(...))`; `urls` are the
    manifest's shard urls (`sorted(read_manifest_keys(path))`).
    """
    keep = read_manifest_keys(path)
    by_name: dict[str, set[str]] = {}
    for url, keys in keep.items():
        by_name.setdefault(Path(url).name + "|" + Path(url).parent.name, set()).update(keys)

    def selected(sample: dict) -> bool:
        url = str(sample.get("__url__", ""))
        keys = keep.get(url)
        if keys is None:  # the same shard reached by another path or URL scheme: match group/shard name
            keys = by_name.get(Path(url).name + "|" + Path(url).parent.name, set())
        return sample.get("__key__") in keys

    return selected


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
    write_json_atomic(out / "sizes.json", sizes)
    return sizes


def shard_pattern(out: Path, sizes: dict[str, int]) -> str | None:
    """Brace pattern naming the written shards (`out/{000000..000003}.tar`)."""
    return _brace_pattern(str(Path(out)), list(sizes))


def write_selection_summary(out: Path, summary: dict) -> Path:
    path = Path(out) / SELECTION_NAME
    write_json_atomic(path, summary)
    return path
