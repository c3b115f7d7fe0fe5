"""Reading an archive back without WebDataset: samples from the tars, rows from the indexes.

Shard discovery lives here and only here: `shard_paths` lists the shards of complete units
(those with a marker) of a local archive, so a reader never sees the half-written output
of an interrupted build. Samples that archive.superseded lists (an older or duplicate copy
of an article still in its tar) are skipped by `iter_samples` and `read_shard_index`, which
take them from `superseded_keys`; `iter_shard` reads one tar as it is. A copy without `_units/` (a published archive: `manifest.json`
and the group folders) is listed by its `Manifest` (archive.manifest), which finalize
derives from the same markers, as is a remote archive.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biomedica.archive.keys import split_member_name
from biomedica.archive.layout import IMAGE_EXTENSIONS, ArchiveLayout
from biomedica.archive.manifest import Manifest
from biomedica.archive.superseded import superseded_keys
from biomedica.archive.units import completed_units
from biomedica.records import LICENSE_GROUPS, OPTIONAL_FIGURE_COLUMNS, SHARD_SCHEMA


def shard_paths(root: Path, group: str | None = None) -> list[tuple[str, Path]]:
    """(group, tar path) of every complete shard, groups in LICENSE_GROUPS order, units ascending.

    Complete: its unit has a marker in `_units/`; without `_units/`, listed in `manifest.json`.
    """
    layout = ArchiveLayout(Path(root))
    groups = LICENSE_GROUPS if group is None else (layout.group_dir(group).name,)
    if not layout.units_dir.is_dir():
        manifest = Manifest.read(Path(root))
        if manifest is None:
            return []
        return [(s.group, layout.group_dir(s.group) / s.name)
                for s in manifest.shards([g for g in groups if g in manifest.groups])]
    units = completed_units(Path(root))
    return [
        (g, layout.group_dir(g) / stats.shards[g].name)
        for g in groups
        for stats in units.values()
        if g in stats.shards
    ]


class LiveShard(NamedTuple):
    """One complete shard and the keys of it that later builds superseded: the unit of work of every
    per-shard annotation stage (embed, subfigures), whose output part is named by `stem`."""

    group: str
    tar: Path
    superseded: frozenset[str]

    @property
    def stem(self) -> str:
        """`<group>-<NNNNNN>`: the name of this shard's part in an annotation folder."""
        return f"{self.group}-{self.tar.stem}"


def live_shards(root: Path, group: str | None = None) -> list[LiveShard]:
    """(group, tar path, keys to skip) of every complete shard: `shard_paths` plus the superseded keys of each.

    What every reader of the archive's content iterates (iter_shard(path, skip) or an index filter).
    """
    superseded = superseded_keys(root)
    return [LiveShard(g, path, superseded.get(shard_name(g, path), frozenset())) for g, path in shard_paths(root, group)]


def is_archive(root: Path) -> bool:
    """True when `root` is (the start of) a biomedica archive: it has manifest.json or unit markers."""
    layout = ArchiveLayout(Path(root))
    return layout.manifest.is_file() or layout.units_dir.is_dir()


def shard_name(group: str, tar_path: Path) -> str:
    """`<group>/<NNNNNN>.tar`: how superseded_keys names a shard."""
    return f"{group}/{Path(tar_path).name}"


def iter_shard(path: Path, exclude: frozenset[str] = frozenset()) -> Iterator[tuple[dict, bytes]]:
    """(figure record dict, image bytes) for each sample of one tar, in tar order, less the `exclude` keys."""
    current_key: str | None = None
    members: dict[str, bytes] = {}
    with tarfile.open(path, mode="r|") as tar:
        for info in tar:
            if not info.isfile():
                continue
            key, ext = split_member_name(info.name) or (info.name, "")
            if key in exclude:
                continue
            if key != current_key:
                if current_key is not None:
                    yield _sample(path, current_key, members)
                current_key, members = key, {}
            handle = tar.extractfile(info)
            members[ext] = handle.read() if handle is not None else b""
    if current_key is not None:
        yield _sample(path, current_key, members)


def iter_samples(root: Path, group: str | None = None) -> Iterator[tuple[dict, bytes]]:
    """(figure record dict, image bytes) for every live sample of the archive (or of one group)."""
    for _, path, skip in live_shards(root, group):
        yield from iter_shard(path, skip)


def read_shard_index(root: Path, columns: list[str] | None = None, live: bool = True) -> pa.Table:
    """All shard index rows (records.SHARD_SCHEMA) of complete units, plus a `group` column.

    `live` (default) leaves out superseded samples; False gives every row of every tar.
    """
    superseded = superseded_keys(root) if live else {}
    tables = []
    for group, tar_path in shard_paths(root):
        skip = superseded.get(shard_name(group, tar_path))
        read = columns if not skip or columns is None or "key" in columns else [*columns, "key"]
        table = _read_index_file(tar_path.with_suffix(".parquet"), read)
        if skip:
            keep = pc.invert(pc.is_in(table.column("key"), value_set=pa.array(sorted(skip), pa.string())))
            table = table.filter(keep)
            if read is not columns:
                table = table.drop_columns(["key"])
        tables.append(table.append_column("group", pa.array([group] * table.num_rows, pa.string())))
    if not tables:
        schema = SHARD_SCHEMA if columns is None else pa.schema([SHARD_SCHEMA.field(c) for c in columns])
        return schema.append(pa.field("group", pa.string())).empty_table()
    return pa.concat_tables(tables)


def _read_index_file(path: Path, columns: list[str] | None) -> pa.Table:
    """One shard index; columns added to the schema later (records.OPTIONAL_FIGURE_COLUMNS) read as null when absent."""
    with pq.ParquetFile(path) as index:  # one open and one footer read, whatever the columns
        present = set(index.schema_arrow.names)
        missing = [c for c in (columns if columns is not None else SHARD_SCHEMA.names)
                   if c in OPTIONAL_FIGURE_COLUMNS and c not in present]
        table = index.read(columns=columns if columns is None or not missing
                           else [c for c in columns if c not in missing])
    if not missing:
        return table
    for name in missing:
        table = table.append_column(SHARD_SCHEMA.field(name), pa.nulls(table.num_rows, SHARD_SCHEMA.field(name).type))
    order = columns if columns is not None else [n for n in SHARD_SCHEMA.names if n in table.column_names] + [
        n for n in table.column_names if n not in SHARD_SCHEMA.names]
    return table.select(order)


def read_member(root: Path, group: str, shard: str, offset: int, size: int) -> bytes:
    """The bytes of one member, found by the offset/size columns of the shard index (one seek)."""
    path = ArchiveLayout(Path(root)).group_dir(group) / shard
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size)
    if len(data) != size:
        raise ValueError(f"{path}: member at offset {offset} is truncated ({len(data)} of {size} bytes)")
    return data


def _sample(path: Path, key: str, members: dict[str, bytes]) -> tuple[dict, bytes]:
    images = [members[ext] for ext in IMAGE_EXTENSIONS if ext in members]
    if "json" not in members or len(images) != 1:
        raise ValueError(
            f"{path}: sample {key} has members {sorted(members)}; expected one image "
            f"({'/'.join(IMAGE_EXTENSIONS)}), txt and json. The shard is damaged: rebuild its unit."
        )
    return json.loads(members["json"].decode("utf-8")), images[0]
