"""One work unit's output: its shards (one per license group), article and error parts, marker.

Usage inside a worker::

    if not is_unit_complete(root, unit_id):
        with UnitWriter(root, unit_id) as writer:   # cleans any partial earlier attempt
            for figure, image, ext in ...: writer.add_sample(figure, image, ext)
            writer.add_article(article)
            writer.commit()                          # publish files, then the marker

Everything is written under temporary names, fsync'd, renamed into place, and only then
is the marker written (atomically). Leaving the `with` block without `commit` (an
exception) removes the unit's temporaries and any file it had already published.

`owner` (the `LockToken` of the run's archive lock) is checked when the writer starts and
right before its files and its marker are published: a worker whose run no longer owns the
archive (another run took the lock over, or the run died) raises LostArchiveLock and
publishes nothing, removing only its own temporaries (the unit's files are then the new
owner's business).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.archive.layout import ArchiveLayout, temp_path, unit_stem
from biomedica.archive.manifest import finalize_archive
from biomedica.archive.shard_writer import FinishedShard, ShardWriter, sample_key_problem
from biomedica.archive.units import (
    UNKNOWN_LICENSE,
    ShardInfo,
    UnitAlreadyComplete,
    UnitStats,
    clean_unit,
    completed_units,
    is_unit_complete,
)
from biomedica.io.atomic import fsync_file, publish, write_json_atomic
from biomedica.io.lock import LockToken, LostArchiveLock
from biomedica.records import (
    ARTICLE_SCHEMA,
    ERROR_SCHEMA,
    LICENSE_GROUPS,
    SCHEMA_VERSION,
    ArticleRecord,
    ErrorRecord,
    FigureRecord,
)

ERROR_STAGE = "ingest"

# The unit-level API in one import (the pipeline's view); `biomedica.archive` exports it too.
__all__ = [
    "UnitAlreadyComplete",
    "UnitStats",
    "UnitWriter",
    "clean_unit",
    "completed_units",
    "finalize_archive",
    "is_unit_complete",
]


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_parquet(rows: list[dict[str, Any]], schema: pa.Schema, final: Path) -> tuple[Path, Path]:
    """Write rows to the temporary name of `final` (zstd) and fsync; return (temporary, final)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp, compression="zstd")
    fsync_file(tmp)
    return tmp, final


class UnitWriter:
    """Writes the output of work unit `unit_id` under `root`, all-or-nothing."""

    def __init__(self, root: Path, unit_id: int, owner: LockToken | None = None) -> None:
        self.root = Path(root)
        self.unit_id = unit_id
        self.owner = owner
        self.layout = ArchiveLayout(self.root)
        unit_stem(unit_id)  # validates the id
        if owner is not None:
            owner.check()  # before clean_unit: a stale writer must not touch the new owner's files
        if self.layout.marker(unit_id).is_file():
            raise UnitAlreadyComplete(
                f"unit {unit_id} is already complete ({self.layout.marker(unit_id)}); skip it "
                "(is_unit_complete) instead of writing it again"
            )
        clean_unit(self.root, unit_id)
        self._shards: dict[str, ShardWriter] = {}
        self._keys: set[str] = set()
        self._licenses: dict[str, Counter[str]] = {}  # group -> licence -> samples (the marker's `licenses`)
        self._articles: list[dict[str, Any]] = []
        self._errors: list[dict[str, Any]] = []
        self._started_at = _utc_now()
        self._started = time.monotonic()
        self._temporaries: list[Path] = []  # index / part temporaries written by commit, until published
        self._state = "open"  # open -> committed | aborted

    # -- adding -------------------------------------------------------------------------

    def add_sample(self, record: FigureRecord, image: bytes, image_ext: str) -> None:
        """Stream one sample into its license group's shard.

        A key that cannot name a WebDataset sample, or one already added to this unit, is
        not written: it becomes an error row (kind `bad-key` / `duplicate-key`) instead.
        """
        self._check_open()
        problem = sample_key_problem(record.key)
        if problem is not None:
            self._record_error(record, "bad-key", f"{problem}; the sample was not written. Fix the key builder.")
            return
        if record.key in self._keys:
            self._record_error(
                record,
                "duplicate-key",
                f"sample key {record.key} was added twice to unit {self.unit_id}; the second copy was dropped. "
                "Two inputs map to the same key (e.g. two versions of one article): keep one per PMCID.",
            )
            return
        group = record.license_group
        if group not in LICENSE_GROUPS:
            raise ValueError(
                f"{record.key}: license_group {group!r} is not one of {', '.join(LICENSE_GROUPS)}; "
                "normalise it with biomedica.licenses before writing"
            )
        writer = self._shards.get(group)
        if writer is None:
            self.layout.group_dir(group).mkdir(parents=True, exist_ok=True)
            writer = ShardWriter(self.layout.shard(group, self.unit_id), self.layout.shard_index(group, self.unit_id))
            self._shards[group] = writer
        writer.add(record, image, image_ext)
        self._keys.add(record.key)
        self._licenses.setdefault(group, Counter())[record.license or UNKNOWN_LICENSE] += 1

    def add_article(self, article: ArticleRecord) -> None:
        self._check_open()
        self._articles.append(article.to_dict())

    def add_error(self, error: ErrorRecord) -> None:
        self._check_open()
        self._errors.append(error.to_dict())

    def error_kinds(self, start: int = 0) -> list[str]:
        """Kinds of the error rows added so far, from the `start`-th on (what one document added)."""
        return [row["kind"] for row in self._errors[start:]]

    @property
    def sample_count(self) -> int:
        return sum(len(w) for w in self._shards.values())

    # -- finishing ----------------------------------------------------------------------

    def commit(self, extra: dict[str, Any] | None = None) -> UnitStats:
        """Publish every file of the unit, then its marker; returns what the marker says."""
        self._check_open()
        try:
            finished: dict[str, FinishedShard] = {
                group: self._shards[group].finish() for group in LICENSE_GROUPS if group in self._shards
            }
            articles = sorted(self._articles, key=lambda a: a["article_id"] or "")
            renames = [pair for shard in finished.values() for pair in shard.renames]
            self._temporaries = [tmp for tmp, _ in renames]
            for rows, schema, final in ((articles, ARTICLE_SCHEMA, self.layout.articles(self.unit_id)),
                                        (self._errors, ERROR_SCHEMA, self.layout.errors(self.unit_id))):
                renames.append(_write_parquet(rows, schema, final))
                self._temporaries.append(renames[-1][0])
            self._check_owner()
            files: dict[str, int] = {}
            for tmp, final in renames:
                files[final.relative_to(self.root).as_posix()] = tmp.stat().st_size
                publish(tmp, final)
            stats = UnitStats(
                unit_id=self.unit_id,
                articles=len(articles),
                samples={group: shard.samples for group, shard in finished.items()},
                errors=len(self._errors),
                bytes=sum(files.values()),
                shards={
                    group: ShardInfo(name=s.name, samples=s.samples, bytes=s.tar_bytes, sha256=s.tar_sha256)
                    for group, s in finished.items()
                },
                files=files,
                started_at=self._started_at,
                finished_at=_utc_now(),
                seconds=round(time.monotonic() - self._started, 3),
                schema_version=SCHEMA_VERSION,
                extra=dict(extra or {}),
                licenses={group: dict(sorted(self._licenses[group].items())) for group in finished},
            )
            self._check_owner()
            write_json_atomic(self.layout.marker(self.unit_id), stats.to_dict())
        except LostArchiveLock:
            self._abandon()
            raise
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        return stats

    def abort(self) -> None:
        """Drop everything this unit wrote so far (no-op after a successful commit)."""
        if self._state != "open":
            return
        for writer in self._shards.values():
            writer.discard()
        if not self.layout.marker(self.unit_id).is_file():
            clean_unit(self.root, self.unit_id)
        self._state = "aborted"

    def __enter__(self) -> UnitWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._state == "open":
            self.abort()

    # -- helpers ------------------------------------------------------------------------

    def _check_owner(self) -> None:
        if self.owner is not None:
            self.owner.check()

    def _abandon(self) -> None:
        """Remove only this writer's own temporaries: the archive belongs to another run now."""
        for writer in self._shards.values():
            writer.discard()
        for tmp in self._temporaries:
            tmp.unlink(missing_ok=True)
        self._state = "aborted"

    def _check_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"unit {self.unit_id} writer is {self._state}; create a new UnitWriter")

    def _record_error(self, record: FigureRecord, kind: str, message: str) -> None:
        self._errors.append(
            ErrorRecord(
                id=str(record.key), stage=ERROR_STAGE, kind=kind, message=message,
                source=record.image_name or record.graphic_href,
            ).to_dict()
        )
