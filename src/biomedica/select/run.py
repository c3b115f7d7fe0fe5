"""`biomedica select`: run the selection query and write the manifest or the new shards."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from biomedica.archive.selection import (
    MANIFEST_NAME,
    SELECTION_NAME,
    manifest_table,
    read_key_manifest,
    write_manifest,
    write_selection_summary,
)
from biomedica.io.lock import LOCK_NAME, ArchiveLock
from biomedica.io.settings import SettingsMismatch
from biomedica.select.config import SelectConfig
from biomedica.select.query import build_query, connect, fetch_arrow, register_keys
from biomedica.select.write import (
    CROP_ERRORS_PART,
    ERROR_STAGE,
    SIZES_NAME,
    shard_pattern,
    write_shards,
    write_subfigure_shards,
)

_SHARD_NAME = re.compile(r"^\d{6}\.tar$")  # what write_shards names a shard


class SelectionExists(SettingsMismatch):
    """The output folder already holds a selection (pass overwrite to replace it).

    Select never resumes: a selection is cheap to redo, so any earlier output is refused
    unless `overwrite` is set, which deletes the files the earlier `selection.json` names.
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


def _prepare_out(config: SelectConfig) -> Path:
    out = Path(config.out)
    if out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()):
        if not (out / SELECTION_NAME).is_file():
            raise SelectionExists(f"{out}: folder is not empty and holds no selection; choose an empty or new --out")
        if not config.overwrite:
            raise SelectionExists(f"{out}: already holds a selection; pass --overwrite to replace it")
        for name in _previous_outputs(out):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _previous_outputs(out: Path) -> list[str]:
    """The files the selection in `out/selection.json` wrote; --overwrite deletes these and nothing else."""
    path = out / SELECTION_NAME
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        output = summary["config"]["output"]
        sizes = [str(name) for name in summary.get("sizes") or {}]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SelectionExists(
            f"{path}: unreadable ({type(exc).__name__}: {exc}), so --overwrite cannot tell which files it wrote; "
            "choose an empty or new --out"
        ) from None
    shards = [name for name in sizes if _SHARD_NAME.match(name)]
    names = [*shards, *(name.removesuffix(".tar") + ".parquet" for name in shards)]
    if output == "manifest":
        names.append(MANIFEST_NAME)
    if output == "shards":
        names.append(SIZES_NAME)
        names.append(f"errors/{ERROR_STAGE}-{CROP_ERRORS_PART}.parquet")
    return [*names, SELECTION_NAME]


def run_select(config: SelectConfig) -> SelectResult:
    """Select samples by `config`; write `manifest.parquet` or shards, and `selection.json`.

    Holds the write lock of the output folder while it runs.
    """
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a folder; choose another --out")
    with ArchiveLock(out, "biomedica select"):
        return _select(config)


def _select(config: SelectConfig) -> SelectResult:
    start = time.perf_counter()
    wanted = None
    if config.keys is not None:  # read first: a bad manifest is refused before the archive is scanned
        wanted = [key for _, key in read_key_manifest(config.keys).rows]
    connection, present = connect(config.archive, config.annotations, config.held_out)
    missing = register_keys(connection, wanted) if wanted is not None else []
    query = build_query(config, present)
    import duckdb

    held_out_excluded = 0
    try:
        rows = fetch_arrow(connection, query.sql, query.parameters)
        if query.held_out_sql is not None:
            held_out_excluded = connection.execute(query.held_out_sql, query.held_out_parameters).fetchone()[0]
    except duckdb.Error as exc:
        hint = f" (check --where {config.where!r})" if config.where else ""
        if isinstance(exc, duckdb.PermissionException):
            hint += "; --where may read only the archive's own files"
        raise ValueError(f"selection query failed{hint}: {str(exc).splitlines()[0]}") from exc
    total = connection.execute("SELECT count(*) FROM samples").fetchone()[0]
    unmatched = 0
    if query.unmatched_sql is not None:
        unmatched = connection.execute(query.unmatched_sql, query.unmatched_parameters).fetchone()[0]
    out = _prepare_out(config)
    per_group: dict[str, int] = {}
    for group in rows.column("group").to_pylist():
        per_group[group] = per_group.get(group, 0) + 1
    per_concept: dict[str, int] = {}
    if "concept" in rows.column_names:
        for concept in rows.column("concept").to_pylist():
            name = concept if concept is not None else "<unlabelled>"
            per_concept[name] = per_concept.get(name, 0) + 1
    result = SelectResult(out=out, output=config.output, selected=rows.num_rows, total=total, seconds=0.0,
                          per_group=per_group, per_concept=dict(sorted(per_concept.items())),
                          held_out_excluded=held_out_excluded, filters=query.applied, sql=query.sql,
                          keys_listed=None if wanted is None else len(set(wanted)), keys_missing=missing,
                          unit=config.unit)
    if config.unit == "subfigure":
        result.figures_selected = len(set(rows.column("key").to_pylist()))
        result.figures_without_panels = unmatched
        result.sizes, crops = write_subfigure_shards(config.archive, out, rows, config.samples_per_shard)
        result.shard_pattern = shard_pattern(out, result.sizes)
        result.panels_written, result.figures_failed = crops.panels, crops.failed_figures
        result.panels_skipped = crops.skipped_panels
    elif config.output == "manifest":
        write_manifest(out, manifest_table(config.archive, rows, config.held_out))
    else:
        result.sizes = write_shards(config.archive, out, rows, config.samples_per_shard)
        result.shard_pattern = shard_pattern(out, result.sizes)
    result.seconds = time.perf_counter() - start
    write_selection_summary(out, {
        "config": config.model_dump(mode="json"),
        "annotations_used": present,
        "filters": query.applied,
        "sql": query.sql,
        "selected": result.selected,
        "total": total,
        "per_group": per_group,
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
    })
    return result
