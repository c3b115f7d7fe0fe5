"""Errors of every stage in one place: `<archive>/errors/<stage>-<part>.parquet` (records.ERROR_SCHEMA).

Ingest writes `errors/part-NNNNNN.parquet` inside each unit's all-or-nothing commit (its
files predate this module and keep their name; `stage` is "ingest"). Every other stage
writes through an `ErrorSink`: one file per deterministic part (a shard, a step), written
atomically when that part is done, so a resumed or repeated run replaces its own part and
never duplicates rows. `read_errors` is what `inspect` shows: all stages together.

Enrich errors: every enrich run asks again about every article without an enrichment row,
so its failures are one part, `enrich-efetch`, replaced (or removed) by each run. Earlier
releases of enrich wrote a new `enrich-NNNNNN` file per run with failures and never
removed one; those files are left in place, and `read_errors` counts an enrich error once
per article (the newest file's row) and not at all once the article has an enrichment row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.archive.enrichment import enriched_article_ids
from biomedica.archive.layout import ERRORS_DIR
from biomedica.io.atomic import write_parquet_atomic
from biomedica.records import ERROR_SCHEMA, ErrorRecord

INGEST_PREFIX = "part-"  # ingest's per-unit files
ENRICH_STAGE = "enrich"
_STAGE = re.compile(r"^[a-z0-9_]+$")  # no '-': the first '-' of a file name ends the stage
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class ErrorSink:
    """Writes one stage's failures under `errors/` of the archive at `root`."""

    def __init__(self, root: Path, stage: str) -> None:
        if not _STAGE.match(stage) or stage.startswith(INGEST_PREFIX.rstrip("-")):
            raise ValueError(f"bad stage name {stage!r}: lower-case letters, digits and '_' only")
        self.root = Path(root)
        self.stage = stage

    def path(self, part: str) -> Path:
        if not _NAME.match(part):
            raise ValueError(f"bad error part name {part!r}: lower-case letters, digits, '_', '.', '-'")
        return self.root / ERRORS_DIR / f"{self.stage}-{part}.parquet"

    def write(self, part: str, errors: Iterable[ErrorRecord]) -> Path | None:
        """Publish `part`'s errors (replacing that part's file from an earlier run); none: drop the old file."""
        rows = [e.to_dict() for e in errors]
        path = self.path(part)
        if not rows:
            path.unlink(missing_ok=True)
            return None
        write_parquet_atomic(path, pa.Table.from_pylist(rows, schema=ERROR_SCHEMA))
        return path


def error_files(root: Path) -> list[Path]:
    """Every error file of the archive, ingest's first, then other stages by name."""
    folder = Path(root) / ERRORS_DIR
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob("*.parquet") if not p.name.startswith(".")]
    return sorted(files, key=lambda p: (not p.name.startswith(INGEST_PREFIX), p.name))


def read_errors(
    root: Path, ingest_files: Iterable[Path] | None = None, columns: list[str] | None = None
) -> pa.Table:
    """All recorded errors (records.ERROR_SCHEMA, or only `columns`). `ingest_files` limits ingest's files to complete units."""
    files = error_files(root)
    if ingest_files is not None:
        allowed = {Path(p).name for p in ingest_files}
        files = [p for p in files if not p.name.startswith(INGEST_PREFIX) or p.name in allowed]
    enrich = [p for p in files if p.name.startswith(f"{ENRICH_STAGE}-")]
    tables = [pq.read_table(p, schema=ERROR_SCHEMA, columns=columns) for p in files if p not in enrich]
    if enrich:
        tables.append(_current_enrich_errors(root, enrich, columns))
    if tables:
        return pa.concat_tables(tables)
    return ERROR_SCHEMA.empty_table() if columns is None else ERROR_SCHEMA.empty_table().select(columns)


def _current_enrich_errors(root: Path, files: list[Path], columns: list[str] | None) -> pa.Table:
    """Enrich's errors counted once per article, newest file first, without articles enriched since."""
    table = pa.concat_tables([pq.read_table(p, schema=ERROR_SCHEMA) for p in files])  # names sort old to new
    enriched = enriched_article_ids(root)
    keep, seen = [], set()
    for row, article in reversed(list(enumerate(table.column("id").to_pylist()))):
        if article not in seen and article not in enriched:
            keep.append(row)
        seen.add(article)
    table = table.take(pa.array(sorted(keep), pa.int64()))
    return table if columns is None else table.select(columns)
