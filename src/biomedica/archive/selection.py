"""The selection manifest: the subset format `biomedica select` writes and `train` streams.

`<out>/manifest.parquet` has one row per selected sample, sorted by shard then key:
`url` (absolute path of the source tar), `group`, `shard` (its file name), `key`, and the
member offsets (`image_offset`, `image_size`, `txt_*`, `json_*`), so a loader can stream
the original shards and keep only these keys, or read one sample with a seek. The schema
metadata `biomedica.held_out` records the held-out split the selection excluded
(`{"fraction": 0.05, "salt": ...}`; fraction 0: none excluded). `<out>/selection.json`
holds the config, SQL, filters and counts.

Training also accepts a hand-made *key manifest*: Parquet with `shard` (or `url`) and
`key` columns, or JSON Lines of `{"shard": ..., "key": ...}`; `parse_key_manifest` reads
both from bytes, so the same reader serves local files and URLs.

`manifest_for_keys` turns a list of keys (`select --keys`) into this manifest, leaving out
held-out articles as select does and returning the keys the archive does not hold; it reads
the whole shard index. `manifest_for_rows` does the same for rows already in hand (a search
export takes them from its index's docs table), so both give the same bytes for the same keys.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biomedica.archive.annotations import write_table_atomic
from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.reader import read_shard_index
from biomedica.archive.split import HeldOutSplit
from biomedica.io.atomic import atomic_path, write_json_atomic

MANIFEST_NAME = "manifest.parquet"
SELECTION_NAME = "selection.json"
MANIFEST_COLUMNS = ["url", "group", "shard", "key", "image_offset", "image_size", "txt_offset", "txt_size",
                    "json_offset", "json_size"]
HELD_OUT_METADATA = b"biomedica.held_out"
EVAL_SPLIT = HeldOutSplit()  # eval's default split, which an export leaves out unless told otherwise


class SelectionManifestError(ValueError):
    """A key manifest that cannot be read; the message names the file (and line) and what it needs."""


@dataclass(frozen=True)
class KeyManifest:
    """(shard, key) rows as written in the file, and the held-out split it records (None: not recorded)."""

    rows: list[tuple[str, str]]
    held_out: HeldOutSplit | None = None


def manifest_table(archive: Path, rows: pa.Table, held_out: HeldOutSplit | None = None) -> pa.Table:
    """The manifest columns for selected rows (which carry `group`, `shard`, key and offsets)."""
    layout = ArchiveLayout(Path(archive).resolve())
    pairs = zip(rows.column("group").to_pylist(), rows.column("shard").to_pylist())
    urls = [str(layout.group_dir(group) / shard) for group, shard in pairs]
    table = rows.select([c for c in MANIFEST_COLUMNS if c != "url"])
    table = table.add_column(0, "url", pa.array(urls, pa.string()))
    if held_out is not None:
        table = table.replace_schema_metadata({HELD_OUT_METADATA: json.dumps(held_out.to_dict()).encode()})
    return table


class KeySelection(NamedTuple):
    """What `manifest_for_keys` made: the manifest, the keys it could not find, the held-out keys it left out."""

    table: pa.Table
    missing: list[str]  # not in the archive, or only as a superseded copy; in the order given
    held_out: int  # found, but their article is held out for evaluation


def manifest_for_keys(archive: Path, keys: Iterable[str], held_out: HeldOutSplit | None = EVAL_SPLIT
                      ) -> KeySelection:
    """The selection manifest of `keys` (live samples only), sorted as select sorts it.

    Held-out articles (`held_out`, eval's default split unless told; None: none held out)
    are left out and counted, and the split is recorded in the schema metadata as select
    records it, so train checks it against its own. Duplicate keys count once; a key is
    matched in the live archive whatever shard a caller thought it was in.
    """
    wanted = list(dict.fromkeys(str(k) for k in keys))
    columns = [c for c in MANIFEST_COLUMNS if c not in ("url", "group")] + ["pmcid"]
    index = read_shard_index(Path(archive), columns=columns)
    found = index.filter(pc.is_in(index.column("key"), value_set=pa.array(wanted, pa.string())))
    present = set(found.column("key").to_pylist())
    selection = manifest_for_rows(archive, found, held_out)
    return selection._replace(missing=[k for k in wanted if k not in present])


def manifest_for_rows(archive: Path, rows: pa.Table, held_out: HeldOutSplit | None = EVAL_SPLIT) -> KeySelection:
    """The selection manifest of live sample rows in hand (group, shard, key, pmcid and the member offsets).

    What `manifest_for_keys` does after its lookup: held-out articles left out and counted,
    rows sorted by group, shard, key, the split recorded. `missing` is empty.
    """
    split = held_out or HeldOutSplit(0.0)
    held = 0
    if split.enabled and rows.num_rows:
        keep = [not split.holds(key, pmcid or None)
                for key, pmcid in zip(rows.column("key").to_pylist(), rows.column("pmcid").to_pylist())]
        held = keep.count(False)
        rows = rows.filter(pa.array(keep, pa.bool_()))
    rows = rows.sort_by([("group", "ascending"), ("shard", "ascending"), ("key", "ascending")])
    return KeySelection(manifest_table(archive, rows, split), [], held)


def write_manifest(out: Path, table: pa.Table) -> Path:
    path = Path(out) / MANIFEST_NAME
    write_table_atomic(path, table)
    return path


def write_manifest_batches(out: Path, archive: Path, batches: pa.RecordBatchReader, held_out: HeldOutSplit | None,
                           on_batch: Callable[[pa.RecordBatch], None] | None = None) -> int:
    """Stream selected rows (as `manifest_table` takes them) into `out/manifest.parquet`, one batch at a time.

    Why: a selection of 24M rows held as one Arrow table grows with the archive; batch by batch
    the memory is one batch. The file appears whole or not at all (a failing query leaves the
    previous one). `on_batch` sees every batch first (select counts groups and concepts there).
    Returns the rows written.
    """
    path = Path(out) / MANIFEST_NAME
    empty = manifest_table(archive, batches.schema.empty_table(), held_out)
    rows = 0
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, empty.schema, compression="zstd") as writer:
        for batch in batches:
            if on_batch is not None:
                on_batch(batch)
            if batch.num_rows:
                writer.write_table(manifest_table(archive, pa.Table.from_batches([batch]), held_out))
                rows += batch.num_rows
        if not rows:
            writer.write_table(empty)
    return rows


def write_selection_summary(out: Path, summary: dict) -> Path:
    path = Path(out) / SELECTION_NAME
    write_json_atomic(path, summary)
    return path


def parse_key_manifest(data: bytes, name: str) -> KeyManifest:
    """Rows of a key manifest (`.parquet` or `.jsonl`, told by `name`), shard as written in the file."""
    if name.endswith(".parquet"):
        table = pq.read_table(io.BytesIO(data))
        # `biomedica select` manifests name the tar in `url` (and only its file name in `shard`)
        location = "url" if "url" in table.column_names else "shard"
        missing = {location, "key"} - set(table.column_names)
        if missing:
            raise SelectionManifestError(
                f"{name}: key manifest lacks column(s) {sorted(missing)}; it needs shard and key"
            )
        rows = list(zip(table.column(location).to_pylist(), table.column("key").to_pylist(), strict=True))
        return KeyManifest(rows, _recorded_split(table.schema.metadata or {}, name))
    if name.endswith(".jsonl"):
        rows = []
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append((row["shard"], row["key"]))
            except (ValueError, KeyError, TypeError):
                raise SelectionManifestError(f"{name}:{number}: expected a JSON object with shard and key") from None
        return KeyManifest(rows)
    raise SelectionManifestError(f"{name}: a key manifest must end in .parquet or .jsonl")


def _recorded_split(metadata: dict[bytes, bytes], name: str) -> HeldOutSplit | None:
    raw = metadata.get(HELD_OUT_METADATA)
    if raw is None:
        return None
    try:
        return HeldOutSplit.from_dict(json.loads(raw))
    except ValueError as exc:
        raise SelectionManifestError(
            f"{name}: bad {HELD_OUT_METADATA.decode()} metadata ({exc}); run select again"
        ) from None


def read_key_manifest(path: Path) -> KeyManifest:
    """The key manifest at `path` (a file, or a select output folder holding manifest.parquet)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no selection manifest; run `biomedica select --output manifest` first")
    return parse_key_manifest(path.read_bytes(), str(path))


def read_manifest_keys(path: Path) -> dict[str, set[str]]:
    """{shard url: keys to keep} from a manifest.parquet (or the folder holding one)."""
    keep: dict[str, set[str]] = {}
    for url, key in read_key_manifest(path).rows:
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
