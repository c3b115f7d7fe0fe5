"""The annotations folder: one Parquet table per curation product, keyed by sample key.

Layout (default `<archive>/annotations/`, or any folder the user names):

    annotations/dedup.parquet       exact / near-duplicate groups, canonical flag, eval leaks
    annotations/quality.parquet     quality flags with reasons, caption language
    annotations/panels.parquet      panel type per image from its caption and layout
    annotations/subfigures.parquet  one row per panel (key, panel, box, label, subcaption): `curate subfigures`
    annotations/subfigures/         its per-shard parts and meta.json (the settings a resume must match)
    annotations/embeddings/<name>/  float16 vectors per shard (.npy + keys .parquet)
    annotations/clusters.parquet    cluster id per sample (+ models/ to assign new data)
    annotations/concepts.parquet    zero-shot concept labels with scores
    annotations/labels.parquet      expert cluster labels propagated to samples

A writer of the annotations locks, and writes its errors (`errors/curate-*.parquet`) under,
`annotations_owner`: the archive for the default folder (so `inspect` shows them), else the
annotations folder itself, so a run never touches an archive it does not lock.

The shards are never touched. Every table is written whole under a temporary name and
renamed into place, so a crash leaves the previous version (or none), never half a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.io.atomic import write_parquet_atomic
from biomedica.io.lock import ArchiveLock, owner_root

ANNOTATIONS_DIR = "annotations"
TABLE_NAMES = ("dedup", "quality", "panels", "clusters", "concepts", "labels", "subfigures")
# Tables with several rows per sample (one per panel): never LEFT JOINed on `key` alone into a per-sample view.
PANEL_TABLES = ("subfigures",)


def default_annotations_dir(archive: Path) -> Path:
    return Path(archive) / ANNOTATIONS_DIR


def annotations_owner(archive: Path, store: AnnotationStore) -> Path:
    """The folder a writer of `store` locks and records its errors in: the archive when `store` lies inside it, else `store`'s."""
    return owner_root(store.root, archive)


def annotations_lock(archive: Path, store: AnnotationStore, command: str) -> ArchiveLock:
    """The write lock every writer of `store` holds (curate's steps, the annotate export): `annotations_owner`'s."""
    return ArchiveLock(annotations_owner(archive, store), command)


def write_table_atomic(path: Path, table: pa.Table) -> None:
    """Write an annotation table (zstd Parquet) so that `path` is either the old file or the complete new one."""
    write_parquet_atomic(path, table, compression="zstd")



@dataclass(frozen=True)
class EmbeddingPart:
    """One finished part of an embedding folder: `<stem>.keys.parquet` and its `<stem>.<kind>.npy` rows."""

    stem: str
    keys: Path
    vectors: Path


@dataclass(frozen=True)
class AnnotationStore:
    """Paths and atomic reads/writes of the annotation tables under `root`."""

    root: Path

    def table_path(self, name: str) -> Path:
        return Path(self.root) / f"{name}.parquet"

    def embeddings_dir(self, name: str) -> Path:
        return Path(self.root) / "embeddings" / name

    def embedding_parts(self, name: str, kind: str = "image") -> list[EmbeddingPart]:
        """The finished parts of embedding folder `name` by stem: `<stem>.keys.parquet` (written last by
        curate embed, so it marks the part done) and its `<stem>.<kind>.npy`. The one reader of that layout."""
        folder = self.embeddings_dir(name)
        found = sorted(folder.glob("*.keys.parquet")) if folder.is_dir() else []
        if not found:
            raise FileNotFoundError(f"{folder}: no embeddings; run `biomedica curate embed` first")
        parts = []
        for keys in found:
            stem = keys.name[: -len(".keys.parquet")]
            vectors = folder / f"{stem}.{kind}.npy"
            if not vectors.is_file():
                raise FileNotFoundError(f"{vectors}: missing ({kind} embeddings were not computed for this model)")
            parts.append(EmbeddingPart(stem, keys, vectors))
        return parts

    def models_dir(self) -> Path:
        return Path(self.root) / "models"

    def has(self, name: str) -> bool:
        return self.table_path(name).is_file()

    def write(self, name: str, table: pa.Table) -> Path:
        path = self.table_path(name)
        write_table_atomic(path, table)
        return path

    def read(self, name: str, columns: list[str] | None = None) -> pa.Table:
        path = self.table_path(name)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: annotation table {name!r} not found; run `biomedica curate {name}` on the archive first"
            )
        return pq.read_table(path, columns=columns)

    def tables(self) -> list[str]:
        """Names of the tables present (TABLE_NAMES order first, then any user tables)."""
        root = Path(self.root)
        present = sorted(p.stem for p in root.glob("*.parquet") if not p.name.startswith(".")) if root.is_dir() else []
        return [n for n in TABLE_NAMES if n in present] + [n for n in present if n not in TABLE_NAMES]
