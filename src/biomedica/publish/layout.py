"""Lay an archive out as a hub dataset repository folder: shards, indexes, tables, embeddings, card.

The folder:

    README.md                          the dataset card (archive.card): configs, features, licences, shard list
    manifest.json  superseded.parquet  the archive's own, copied
    <group>/NNNNNN.tar  .parquet       the shards and their Parquet indexes, byte copies (hard links when possible)
    <group>/sizes.json                 what OpenCLIP reads for the dataset length
    annotations/<table>.parquet        each annotation table (rows of the published groups only)
    embeddings/<name>/<group>-NNNNNN.parquet   key + image (+ text) float16 vectors
    .biomedica-publish.json            what publish wrote here (size, sha256), so a rerun copies only what changed

The card's `configs` are the shard groups (WebDataset). `datasets` 5.2 loads every config of one card
with one packaged builder (the first config's), so the Parquet tables (annotations-<table>,
embeddings-<name>) are not `configs`: the card lists them in a section with their exact columns,
row counts and the one line that loads each (`load_dataset(REPO, data_files=...)` / `data_dir=...`).

Files are placed under a temporary name and renamed, so a shard hard-linked from the archive is
never written through. A folder holding files publish did not write is refused; nothing is deleted.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from biomedica.archive.annotations import TABLE_NAMES, AnnotationStore, EmbeddingPart
from biomedica.archive.card import CARD_NAME, CardConfig, archive_configs, render_card, schema_features
from biomedica.archive.layout import MANIFEST_NAME, SIZES_NAME
from biomedica.archive.manifest import Manifest, ManifestShard
from biomedica.archive.superseded import SUPERSEDED_NAME
from biomedica.io.atomic import fsync_file, publish, temp_path, write_json_atomic
from biomedica.io.digest import file_sha256
from biomedica.publish.config import DEFAULT_GROUPS, PublishConfig

if TYPE_CHECKING:
    import pyarrow as pa

MARKER_NAME = ".biomedica-publish.json"
# Present in a hub clone or left by huggingface_hub: not "files publish did not write".
FOREIGN_OK = {".git", ".gitattributes", ".cache", ".huggingface", MARKER_NAME}


class PublishError(ValueError):
    """A refusal with one line that names the file and the fix."""


@dataclass(frozen=True)
class PublishedTable:
    """A Parquet table of the published folder: annotations-<table> or embeddings-<name>."""

    name: str
    files: list[str]  # relative to the folder
    rows: int | None  # None on a dry run
    features: list[dict]  # card YAML form (archive.card.schema_features), the written schema exactly
    load: str  # the keyword argument that loads it with load_dataset(REPO, ...)


@dataclass
class LayoutResult:
    """What lay_out did; `files` lists every path (relative, '/'-separated) the published folder holds from it."""

    folder: Path
    groups: list[str]
    configs: list[CardConfig]
    tables: list[PublishedTable] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    placed: list[str] = field(default_factory=list)  # of `files`, those this run (re)wrote
    linked: int = 0
    copied: int = 0
    written: int = 0
    unchanged: int = 0
    bytes_placed: int = 0
    bytes_total: int = 0
    samples: int = 0
    notes: list[str] = field(default_factory=list)


def chosen_groups(config: PublishConfig, manifest: Manifest) -> tuple[list[str], list[str]]:
    """(groups to publish, notes): the asked groups, which must be present; by default those of DEFAULT_GROUPS present."""
    present = [g for g in manifest.groups if manifest.groups[g].shards]
    if config.license_groups is None:
        groups = [g for g in DEFAULT_GROUPS if g in present]
        notes = ["group other left out (unknown licences): add --license-group other to publish it"] if "other" in present else []
        if not groups:
            raise PublishError(f"{config.archive}: no commercial or noncommercial shards; "
                               f"name the groups to publish with --license-group ({', '.join(present) or 'none present'})")
        return groups, notes
    missing = [g for g in config.license_groups if g not in present]
    if missing:
        raise PublishError(f"{config.archive}: no shards in licence group {', '.join(missing)} "
                           f"(present: {', '.join(present) or 'none'}); drop it from --license-group")
    notes = ["group other holds articles with unknown or missing licences: check them before sharing"] \
        if "other" in config.license_groups else []
    return list(config.license_groups), notes


def read_marker(folder: Path) -> dict | None:
    path = Path(folder) / MARKER_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise PublishError(f"{path}: not valid JSON; delete it and publish into a new folder") from None


def check_folder(folder: Path) -> dict:
    """The folder's publish marker ({} for a new or empty folder); refuse a folder holding files publish did not write."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise PublishError(f"--to {folder} is a file; give a new or empty folder")
    marker = read_marker(folder)
    if marker is not None:
        return marker
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in FOREIGN_OK) if folder.is_dir() else []
    if foreign:
        raise PublishError(f"--to {folder} holds files publish did not write ({', '.join(foreign[:3])}"
                           f"{', ...' if len(foreign) > 3 else ''}); give a new or empty folder")
    return {}


class _Placer:
    """Places files in the folder, skipping those the marker says are already there unchanged."""

    def __init__(self, folder: Path, marker: dict, result: LayoutResult, dry_run: bool,
                 progress: Callable[[int], None] | None) -> None:
        self.folder, self.dry_run, self.result, self.progress = folder, dry_run, result, progress
        self.before: dict[str, dict] = dict(marker.get("files", {}))
        self.files: dict[str, dict] = {}

    def _unchanged(self, rel: str, size: int, sha256: str) -> bool:
        known = self.before.get(rel)
        target = self.folder / rel
        return bool(known and known.get("sha256") == sha256 and known.get("size") == size
                    and target.is_file() and target.stat().st_size == size)

    def _record(self, rel: str, size: int, sha256: str, placed: bool) -> None:
        self.files[rel] = {"size": size, "sha256": sha256}
        self.result.files.append(rel)
        self.result.bytes_total += size
        if placed:
            self.result.placed.append(rel)
            self.result.bytes_placed += size
        else:
            self.result.unchanged += 1
        if self.progress:
            self.progress(size)

    def link_or_copy(self, source: Path, rel: str, sha256: str | None = None) -> None:
        """A byte copy of `source` at `rel`: a hard link when the filesystem allows, else a copy."""
        size = source.stat().st_size
        sha256 = sha256 or file_sha256(source)
        if self._unchanged(rel, size, sha256):
            return self._record(rel, size, sha256, placed=False)
        if not self.dry_run:
            final = self.folder / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path(final)
            try:
                try:
                    os.link(source, tmp)
                    self.result.linked += 1
                except OSError:  # another filesystem, or links not allowed: copy
                    shutil.copyfile(source, tmp)
                    fsync_file(tmp)
                    self.result.copied += 1
                publish(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
        self._record(rel, size, sha256, placed=True)

    def write(self, rel: str, make: Callable[[Path], None]) -> None:
        """Write `rel` with `make(path)` into a scratch file, then place it unless the bytes are already there."""
        final = self.folder / rel
        scratch = temp_path(final) if not self.dry_run else None
        if scratch is None:  # dry run: nothing is written, so nothing is known to be unchanged
            return self._record(rel, 0, "", placed=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            make(scratch)
            size, sha256 = scratch.stat().st_size, file_sha256(scratch)
            if self._unchanged(rel, size, sha256):
                return self._record(rel, size, sha256, placed=False)
            fsync_file(scratch)
            publish(scratch, final)
            self.result.written += 1
            self._record(rel, size, sha256, placed=True)
        finally:
            scratch.unlink(missing_ok=True)


def lay_out(config: PublishConfig, folder: Path, *, progress: Callable[[int], None] | None = None,
            total: Callable[[int], None] | None = None) -> LayoutResult:
    """Write (or, dry run, plan) the published folder for `config` at `folder`; return what it holds."""
    archive = Path(config.archive)
    if not archive.is_dir():
        raise PublishError(f"{archive}: no such archive folder; give the folder `biomedica ingest` wrote")
    manifest = Manifest.read(archive)  # ManifestError (a ValueError) names the file and the fix
    if manifest is None:
        raise PublishError(f"{archive}: no {MANIFEST_NAME} (never finalized); run `biomedica ingest` on it again")
    groups, notes = chosen_groups(config, manifest)
    folder = Path(folder)
    marker = check_folder(folder)
    shards = manifest.shards(groups)
    annotations = AnnotationStore(config.annotations_folder())
    tables = [t for t in TABLE_NAMES if annotations.has(t)] if config.annotations else []
    embeddings = _embedding_parts(annotations, config.embeddings, groups)
    result = LayoutResult(folder=folder, groups=groups, configs=[], notes=notes,
                          samples=sum(s.samples for s in shards))
    if total:
        total(sum(s.bytes for s in shards))
    placer = _Placer(folder, marker, result, config.dry_run, progress)
    if not config.dry_run:
        folder.mkdir(parents=True, exist_ok=True)
        _write_marker(folder, config, {**marker.get("files", {})}, complete=False)  # claims the folder first

    for shard in shards:
        placer.link_or_copy(archive / shard.path, shard.path, shard.sha256)
        index = archive / shard.group / shard.name.replace(".tar", ".parquet")
        if index.is_file():
            placer.link_or_copy(index, f"{shard.group}/{index.name}")
    for group in groups:
        placer.write(f"{group}/{SIZES_NAME}", lambda p, g=group: _write_json(p, _sizes(manifest, g)))
    if set(groups) >= set(manifest.groups):
        placer.link_or_copy(archive / MANIFEST_NAME, MANIFEST_NAME)
    else:  # the folder's manifest lists only the shards it holds (a reader checking them finds every one)
        placer.write(MANIFEST_NAME, lambda p: _write_json(p, published_manifest(archive / MANIFEST_NAME, groups)))
    if (archive / SUPERSEDED_NAME).is_file():
        placer.write(SUPERSEDED_NAME, lambda p: _filtered_copy(archive / SUPERSEDED_NAME, p, group_column=groups))

    keys = None if set(groups) >= set(manifest.groups) else _published_keys(archive, shards)
    for table in tables:
        rel = f"annotations/{table}.parquet"
        placer.write(rel, lambda p, t=table: _filtered_copy(annotations.table_path(t), p, keys=keys))
        result.tables.append(_table(f"annotations-{table}", folder, [rel], f'data_files="{rel}"', config.dry_run))
    for name, parts in embeddings.items():
        rels = []
        for part in parts:
            rel = f"embeddings/{name}/{part.stem}.parquet"
            placer.write(rel, lambda p, part=part: _embedding_table(part.keys, part.stem, p))
            rels.append(rel)
        result.tables.append(_table(f"embeddings-{name}", folder, rels, f'data_dir="embeddings/{name}"', config.dry_run))

    result.configs = _card_configs(archive, groups)
    card = render_card(folder, result.configs, title=_title(archive),
                       extra_sections=[_tables_section(result.tables), _publishing_section(groups, notes)])
    placer.write(CARD_NAME, lambda p: p.write_text(card, encoding="utf-8"))
    if not config.dry_run:
        _write_marker(folder, config, {**placer.before, **placer.files}, complete=True)
    return result


def _title(archive: Path) -> str:
    return f"BIOMEDICA archive: {archive.resolve().name}"


def _publishing_section(groups: list[str], notes: list[str]) -> str:
    lines = [f"Published with `biomedica publish` (licence groups: {', '.join(groups)}).", *notes]
    return "## Publishing\n\n" + "\n".join(f"- {line}" for line in lines) + "\n"


def _tables_section(tables: list[PublishedTable]) -> str:
    """The Parquet tables: how to load each, its rows and exact columns (the card's configs are the shards)."""
    if not tables:
        return ""
    out = ["## Tables (Parquet)\n",
           ("Keyed by the sample key (`json.key`, the shard member's `__key__`). Load one with "
           "`load_dataset(\"PATH_OR_REPO\", <argument>, split=\"train\")`; Parquet stores the column types, "
           "so nothing is inferred.\n"),
           "| table | argument | rows | columns |", "|---|---|---:|---|"]
    for t in tables:
        columns = ", ".join(f"`{f['name']}` {_feature_text(f)}" for f in t.features)
        rows = "-" if t.rows is None else f"{t.rows:,}"
        out.append(f"| `{t.name}` | `{t.load}` | {rows} | {columns} |")
    return "\n".join(out) + "\n"


def _feature_text(feature: dict) -> str:
    if "dtype" in feature:
        return feature["dtype"]
    if "list" in feature:
        inner = feature["list"] if isinstance(feature["list"], str) else "struct"
        return f"list<{inner}>[{feature['length']}]" if "length" in feature else f"list<{inner}>"
    return "struct"


def _card_configs(archive: Path, groups: list[str]) -> list[CardConfig]:
    """The archive's shard configs of the published groups; the first is the default."""
    configs = [c for c in archive_configs(archive) if c.name in groups]
    return [replace(c, default=i == 0) for i, c in enumerate(configs)]


def _sizes(manifest: Manifest, group: str) -> dict[str, int]:
    return {s.name: s.samples for s in manifest.groups[group].shards}


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def published_manifest(path: Path, groups: list[str]) -> dict:
    """The archive's manifest.json with only the published licence groups' shards.

    `totals` stay the whole archive's (articles and errors do not split by group), so the file
    says so in `published`: which groups this folder holds and their own sample and byte counts.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    kept = {name: group for name, group in data.get("groups", {}).items() if name in groups}
    data["groups"] = kept
    data["published"] = {
        "groups": sorted(kept), "totals_scope": "archive",
        "samples": sum(int(g.get("samples", 0)) for g in kept.values()),
        "bytes": sum(int(g.get("bytes", 0)) for g in kept.values()),
    }
    return data


def _write_marker(folder: Path, config: PublishConfig, files: dict, complete: bool) -> None:
    write_json_atomic(folder / MARKER_NAME, {
        "format": "biomedica-publish", "archive": str(Path(config.archive).resolve()), "complete": complete,
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "files": files,
    })


def _published_keys(archive: Path, shards: Iterable[ManifestShard]) -> pa.Array:
    """Sample keys of the published shards (from their Parquet indexes), as one Arrow string array."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [pq.read_table(archive / shard.group / shard.name.replace(".tar", ".parquet"), columns=["key"])
               .column("key").combine_chunks() for shard in shards]
    return pa.concat_arrays(columns) if columns else pa.array([], pa.string())


def _filtered_copy(source: Path, target: Path, *, keys: pa.Array | None = None, group_column: list[str] | None = None) -> None:
    """`source` as zstd Parquet at `target`, keeping rows whose `key` is in `keys` (an Arrow array) and whose
    `group` is in `group_column`; read and written one row group at a time (bounded memory)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    reader = pq.ParquetFile(source)
    with pq.ParquetWriter(target, reader.schema_arrow, compression="zstd") as writer:
        for i in range(reader.num_row_groups):
            table = reader.read_row_group(i)
            if keys is not None and "key" in table.column_names:
                table = table.filter(pc.is_in(table.column("key"), value_set=keys))
            if group_column is not None and "group" in table.column_names:
                table = table.filter(pc.is_in(table.column("group"), value_set=pa.array(group_column, pa.string())))
            writer.write_table(table)


def _embedding_parts(store: AnnotationStore, names: Iterable[str], groups: list[str]) -> dict[str, list[EmbeddingPart]]:
    """name -> the finished parts (AnnotationStore.embedding_parts) of the published groups (stem `<group>-NNNNNN`)."""
    found: dict[str, list[EmbeddingPart]] = {}
    for name in names:
        try:
            parts = store.embedding_parts(name)
        except FileNotFoundError as exc:
            raise PublishError(f"{exc}; or drop --embeddings {name}") from None
        found[name] = [part for part in parts if part.stem.split("-", 1)[0] in groups]
        if not found[name]:
            raise PublishError(f"{store.embeddings_dir(name)}: no embeddings of the published groups ({', '.join(groups)})")
    return found


def _embedding_table(keys_path: Path, stem: str, target: Path) -> None:
    """One part's vectors as Parquet: key, image (and text) as fixed-size float16 lists, the stored values exactly."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = pq.read_table(keys_path, columns=["key"]).column("key")
    columns = {"key": keys}
    for kind in ("image", "text"):
        path = keys_path.parent / f"{stem}.{kind}.npy"
        if path.is_file():
            vectors = np.ascontiguousarray(np.load(path, allow_pickle=False), dtype=np.float16)
            if len(vectors) != len(keys):
                raise PublishError(f"{path}: {len(vectors)} vectors for {len(keys)} keys; rerun `biomedica curate embed`")
            columns[kind] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])
    pq.write_table(pa.table(columns), target, compression="zstd")


def _table(name: str, folder: Path, rels: list[str], load: str, dry_run: bool) -> PublishedTable:
    """A written table's exact features (from its Parquet schema) and row count."""
    import pyarrow.parquet as pq

    if dry_run:
        return PublishedTable(name, rels, None, [], load)
    return PublishedTable(name, rels, sum(pq.read_metadata(folder / r).num_rows for r in rels),
                          schema_features(pq.read_schema(folder / rels[0])), load)
