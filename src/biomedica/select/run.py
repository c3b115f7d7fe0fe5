"""`biomedica select`: run the selection query and write the manifest or the new shards."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from biomedica.archive.selection import (
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    SELECTION_NAME,
    read_key_manifest,
    write_manifest_batches,
    write_selection_summary,
)
from biomedica.io.atomic import remove_stale_temporaries, write_json_atomic
from biomedica.io.lock import LOCK_NAME, ArchiveLock
from biomedica.io.settings import SettingsMismatch, check_settings
from biomedica.select.config import SelectConfig
from biomedica.select.query import build_query, connect, fetch_arrow, record_batches, register_keys
from biomedica.select.shards import (
    PLAN_NAME,
    ShardJob,
    ShardUnit,
    plan_record,
    plan_shards,
    published_sizes,
    shard_files,
    write_planned_shards,
)
from biomedica.select.write import CROP_ERRORS_PART, ERROR_STAGE, SIZES_NAME, shard_pattern

SPILL_PREFIX = ".select-spill-"  # DuckDB's temp folder in --out while a select runs
_SHARD_NAME = re.compile(r"^\d{6}\.tar$")  # what the shard plan names a shard
_NOT_COMPARED = {"out", "overwrite", "workers", "executor", "memory"}  # settings that do not change what a shard holds


class SelectionExists(SettingsMismatch):
    """The output folder already holds a selection, or an unfinished one started with other settings.

    A finished selection (`selection.json`) is refused unless `overwrite` is set, which deletes
    the files the earlier selection and its plan name. An unfinished shard selection
    (`select-plan.json`, no `selection.json`) resumes when settings and selected keys are equal.
    """


@dataclass
class SelectResult:
    out: Path
    output: str
    selected: int
    total: int
    seconds: float
    per_group: dict[str, int] = field(default_factory=dict)
    per_concept: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    shard_pattern: str | None = None
    held_out_excluded: int = 0  # held-out eval samples that every other filter kept (the split removed them)
    filters: list[str] = field(default_factory=list)
    sql: str = ""
    keys_listed: int | None = None  # distinct keys in --keys (None: no --keys)
    keys_missing: list[str] = field(default_factory=list)  # of those, not in the archive or superseded
    unit: str = "figure"
    # --unit subfigure: `selected` counts panel rows; these count figures and what the crops wrote
    figures_selected: int | None = None  # figures with subfigure rows among those the filters chose
    figures_without_panels: int = 0  # chosen by the filters but with no rows in subfigures.parquet
    panels_written: int = 0
    figures_failed: int = 0  # images that did not decode: their panels are skipped (errors/select-crops.parquet)
    panels_skipped: int = 0
    # --output shards: what the shard step wrote (resumed shards: read back from their files)
    shards_written: int = 0  # by this run
    shards_resumed: int = 0  # published by an interrupted earlier run and kept
    samples_written: int = 0  # in all shards
    failed: int = 0  # samples whose image did not decode or transform (errors/select-<shard>.parquet)
    bytes_in: int = 0  # stored image bytes of what was written
    bytes_out: int = 0  # image bytes in the shards
    tar_bytes: int = 0  # size of the shards
    write_seconds: float = 0.0  # the shard step of this run
    samples_this_run: int = 0  # rows the shards written by this run covered
    image: dict | None = None  # the training-image settings (--image-size), or None for byte copies

    @property
    def samples_per_second(self) -> float:
        return self.samples_this_run / self.write_seconds if self.write_seconds > 0 else 0.0


def _prepare_out(config: SelectConfig, plan: dict | None, clear: bool = True) -> tuple[Path, bool, list[str]]:
    """The output folder, made ready; True when it holds an unfinished run of this same plan (resume).

    With `clear` False the previous selection's files (--overwrite) are returned instead of deleted,
    for a caller that deletes them once its new output is written (`_clear_previous`).
    """
    out = Path(config.out)
    resume = False
    previous: list[str] = []
    if out.is_dir() and any(p.name != LOCK_NAME and not p.name.startswith(SPILL_PREFIX) for p in out.iterdir()):
        finished, started = (out / SELECTION_NAME).is_file(), (out / PLAN_NAME).is_file()
        if not finished and not started:
            raise SelectionExists(f"{out}: folder is not empty and holds no selection; choose an empty or new --out")
        if config.overwrite:
            previous = _previous_outputs(out)
        elif finished:
            raise SelectionExists(f"{out}: already holds a selection; pass --overwrite to replace it")
        elif plan is None:
            raise SelectionExists(f"{out}: holds an unfinished shard selection ({PLAN_NAME}); pass --overwrite to "
                                  "replace it, or run it again with --output shards to finish it")
        else:
            _check_resume(out, plan)
            resume = True
    if clear:
        _clear_previous(out, previous)
        previous = []
    out.mkdir(parents=True, exist_ok=True)
    for folder in (out, out / "errors"):
        remove_stale_temporaries(folder)  # of a run that died (we hold the lock: no writer is at work)
    return out, resume, previous


def _clear_previous(out: Path, names: list[str], keep: tuple[str, ...] = ()) -> None:
    """Delete the previous selection's files (--overwrite), never one this run wrote (`keep`)."""
    for name in names:
        if name not in keep:
            (out / name).unlink(missing_ok=True)
    _remove_if_empty(out / "errors")


def _check_resume(out: Path, plan: dict) -> None:
    """Refuse to continue a plan made with other settings or over other samples (io.settings rule)."""
    compared = {k: v for k, v in plan.items() if k not in ("shard_keys_sha256", "plan_version")}
    try:
        check_settings(out / PLAN_NAME, compared, f"{out}: the unfinished selection",
                       "pass --overwrite to start it over (it deletes only that selection's files)", record=False)
    except SettingsMismatch as exc:
        note = ""
        if "keys_sha256" in str(exc):
            note = " (the selected samples differ: the archive, its annotations or the filters changed)"
        raise SelectionExists(str(exc).replace("; pass --overwrite", f"{note}; pass --overwrite", 1)) from None


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # absent, or holds files select did not write


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return data
    except (ValueError, TypeError) as exc:
        raise SelectionExists(
            f"{path}: unreadable ({type(exc).__name__}: {exc}), so --overwrite cannot tell which files it wrote; "
            "choose an empty or new --out"
        ) from None


def _previous_outputs(out: Path) -> list[str]:
    """The files the selection in `out` wrote (selection.json and the shard plan name them); --overwrite deletes
    these and nothing else."""
    names: list[str] = []
    if (out / PLAN_NAME).is_file():
        plan = _read_json(out / PLAN_NAME)
        count = plan.get("shards")
        if not isinstance(count, int) or count < 0:
            raise SelectionExists(f"{out / PLAN_NAME}: no shard count, so --overwrite cannot tell which files it "
                                  "wrote; choose an empty or new --out")
        names += [*shard_files(out, count), SIZES_NAME, PLAN_NAME]
    path = out / SELECTION_NAME
    if path.is_file():
        summary = _read_json(path)
        try:
            output = summary["config"]["output"]
            sizes = [str(name) for name in summary.get("sizes") or {}]
        except (KeyError, TypeError, AttributeError) as exc:
            raise SelectionExists(
                f"{path}: unreadable ({type(exc).__name__}: {exc}), so --overwrite cannot tell which files it wrote; "
                "choose an empty or new --out"
            ) from None
        shards = [name for name in sizes if _SHARD_NAME.match(name)]
        names += [*shards, *(name.removesuffix(".tar") + ".parquet" for name in shards)]
        names += [f"errors/{ERROR_STAGE}-{name.removesuffix('.tar')}.parquet" for name in shards]
        if output == "manifest":
            names.append(MANIFEST_NAME)
        if output == "shards":
            names.append(SIZES_NAME)
            names.append(f"errors/{ERROR_STAGE}-{CROP_ERRORS_PART}.parquet")
        names.append(SELECTION_NAME)
    return list(dict.fromkeys(names))


def run_select(config: SelectConfig, progress: Callable[[int, int], None] | None = None) -> SelectResult:
    """Select samples by `config`; write `manifest.parquet` or shards, and `selection.json`.

    Holds the write lock of the output folder while it runs. `progress(rows, total)` is called
    as each shard is done (rows: the selected rows it covered; total: all selected rows).
    """
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a folder; choose another --out")
    with ArchiveLock(out, "biomedica select"):
        return _select(config, progress)


class _Tally:
    """Counts of the selected rows, batch by batch: per licence group, per concept, distinct figures."""

    def __init__(self) -> None:
        self.rows = 0
        self.per_group: dict[str, int] = {}
        self.per_concept: dict[str, int] = {}
        self.figures = 0
        self._last_key: str | None = None

    def add(self, rows: pa.Table | pa.RecordBatch) -> None:
        self.rows += rows.num_rows
        _count(self.per_group, rows.column("group"))
        if "concept" in rows.schema.names:
            _count(self.per_concept, rows.column("concept"), none="<unlabelled>")
        for key in pc.unique(rows.column("key")).to_pylist():  # rows are sorted by key within a shard:
            if key != self._last_key:  # a figure's panels are consecutive, also across batches
                self.figures += 1
                self._last_key = key


def _count(counts: dict[str, int], column: pa.Array | pa.ChunkedArray, none: str | None = None) -> None:
    for entry in pc.value_counts(column).to_pylist():
        name = entry["values"] if entry["values"] is not None else none
        counts[name] = counts.get(name, 0) + entry["counts"]


def _query_failed(exc: Exception, config: SelectConfig) -> ValueError:
    import duckdb

    hint = f" (check --where {config.where!r})" if config.where else ""
    if isinstance(exc, duckdb.PermissionException):
        hint += "; --where may read only the archive's own files"
    if isinstance(exc, duckdb.OutOfMemoryException):
        hint += f"; raise --memory (now {config.memory}) or free disk space in {config.out} for the spill"
    return ValueError(f"selection query failed{hint}: {str(exc).splitlines()[0]}")


def _select(config: SelectConfig, progress: Callable[[int, int], None] | None = None) -> SelectResult:
    start = time.perf_counter()
    wanted = None
    if config.keys is not None:  # read first: a bad manifest is refused before the archive is scanned
        wanted = [key for _, key in read_key_manifest(config.keys).rows]
    out = Path(config.out)  # exists: the lock lives in it
    for stale in out.glob(f"{SPILL_PREFIX}*"):  # a killed select's (we hold the lock: no select is at work)
        shutil.rmtree(stale, ignore_errors=True)
    spill = out / f"{SPILL_PREFIX}{os.getpid()}"  # DuckDB's sort beyond --memory; removed below
    connection, present = connect(config.archive, config.annotations, config.held_out, memory=config.memory,
                                  spill=spill)
    try:
        return _select_with(connection, present, config, wanted, progress, start)
    finally:
        connection.close()
        shutil.rmtree(spill, ignore_errors=True)


def _select_with(connection, present: list[str], config: SelectConfig, wanted: list[str] | None,
                 progress: Callable[[int, int], None] | None, start: float) -> SelectResult:
    import duckdb

    missing = register_keys(connection, wanted) if wanted is not None else []
    query = build_query(config, present)
    tally = _Tally()
    units: list[ShardUnit] = []
    plan, resume = None, False
    try:
        held_out_excluded = 0
        if query.held_out_sql is not None:
            held_out_excluded = connection.execute(query.held_out_sql, query.held_out_parameters).fetchall()[0][0]
        total = connection.execute("SELECT count(*) FROM samples").fetchall()[0][0]
        unmatched = 0
        if query.unmatched_sql is not None:
            unmatched = connection.execute(query.unmatched_sql, query.unmatched_parameters).fetchall()[0][0]
        if config.output == "manifest":
            # streamed: the selected rows are never held at once (DuckDB sorts within --memory, spilling beyond)
            out, _, previous = _prepare_out(config, None, clear=False)
            columns = [c for c in MANIFEST_COLUMNS if c != "url"] + ["group", "concept"]
            batches = record_batches(connection, query.projected(columns), query.parameters)
            write_manifest_batches(out, config.archive, batches, config.held_out, on_batch=tally.add)
            _clear_previous(out, previous, keep=(MANIFEST_NAME,))  # the new manifest is written: now the old go
        else:
            rows = fetch_arrow(connection, query.sql, query.parameters)
            tally.add(rows)
            units = plan_shards(rows, config.samples_per_shard)
            del rows  # the units hold what the shard writers need
            settings = config.model_dump(mode="json", exclude=_NOT_COMPARED)
            plan = plan_record(settings, units, config.unit)
    except duckdb.Error as exc:
        raise _query_failed(exc, config) from exc
    if plan is not None:
        out, resume, _ = _prepare_out(config, plan)
    result = SelectResult(out=out, output=config.output, selected=tally.rows, total=total, seconds=0.0,
                          per_group=tally.per_group, per_concept=dict(sorted(tally.per_concept.items())),
                          held_out_excluded=held_out_excluded, filters=query.applied, sql=query.sql,
                          keys_listed=None if wanted is None else len(set(wanted)), keys_missing=missing,
                          unit=config.unit)
    if config.unit == "subfigure":
        result.figures_selected = tally.figures
        result.figures_without_panels = unmatched
    if config.output == "shards":
        if not resume:
            write_json_atomic(out / PLAN_NAME, plan)  # before any shard: what a resumed run must match
        _write_shards(config, out, units, result, progress)
    result.seconds = time.perf_counter() - start
    write_selection_summary(out, {
        "config": config.model_dump(mode="json"),
        "annotations_used": present,
        "filters": query.applied,
        "sql": query.sql,
        "selected": result.selected,
        "total": total,
        "per_group": result.per_group,
        "per_concept": result.per_concept,
        "held_out": {**config.held_out.to_dict(), "excluded_samples": held_out_excluded},
        "keys": None if wanted is None else {"listed": result.keys_listed, "missing": len(missing),
                                             "missing_keys": missing[:1000]},
        "sizes": result.sizes,
        "unit": config.unit,
        **({"subfigures": {"figures": result.figures_selected, "panels_selected": result.selected,
                           "panels_written": result.panels_written, "figures_failed": result.figures_failed,
                           "panels_skipped": result.panels_skipped,
                           "figures_without_panels": result.figures_without_panels}}
           if config.unit == "subfigure" else {}),
        "shard_pattern": result.shard_pattern,
        **({"image": result.image, "bytes": {"in": result.bytes_in, "out": result.bytes_out, "shards": result.tar_bytes},
            "samples_written": result.samples_written, "failed": result.failed, "resumed_shards": result.shards_resumed,
            "plan": PLAN_NAME} if config.output == "shards" else {}),
    })
    return result


def _write_shards(config: SelectConfig, out: Path, units: list[ShardUnit], result: SelectResult,
                  progress: Callable[[int, int], None] | None) -> None:
    """The shard step (select.shards): resumed shards counted, the rest written in parallel; then sizes.json."""
    spec = config.image_spec
    result.image = None if spec is None else spec.to_dict()
    job = ShardJob(archive=Path(config.archive), out=out, unit=config.unit, spec=spec)
    total = sum(unit.rows.num_rows for unit in units)

    def step(rows: int) -> None:
        if progress:
            progress(rows, total)

    started = time.perf_counter()
    failed_figures: set[str] = set()
    for counts in write_planned_shards(job, units, config.workers, step, config.executor):
        if counts.resumed:
            result.shards_resumed += 1
        else:
            result.shards_written += 1
            result.samples_this_run += counts.samples + counts.failed + counts.skipped
        result.samples_written += counts.samples
        result.failed += counts.failed
        result.panels_skipped += counts.failed + counts.skipped
        result.bytes_in += counts.bytes_in
        result.bytes_out += counts.bytes_out
        result.tar_bytes += counts.tar_bytes
        failed_figures.update(counts.failed_figures)
    result.write_seconds = time.perf_counter() - started
    result.sizes = published_sizes(out, len(units))
    write_json_atomic(out / SIZES_NAME, result.sizes)
    result.shard_pattern = shard_pattern(out, result.sizes)
    if config.unit == "subfigure":
        result.panels_written = result.samples_written
        result.figures_failed = len(failed_figures)
