"""`biomedica curate`: run the torch-free curation steps over an archive and write their tables.

Steps: `dedup` (exact + near duplicates, eval leaks), `quality` (flags with reasons),
`panels` (panel type per image; from `curate subfigures`' panel counts where that ran). Each reads the shard indexes (and, for panels, the
images, one shard at a time), builds its table in memory (a few columns per sample:
~100 bytes each, so ~2.5 GB for 24M samples) and publishes it atomically. Re-running a
step replaces its table; a crash leaves the previous one. Embeddings, clusters and
zero-shot concepts are separate commands (`curate.embed`, `curate.cluster`, `curate.zeroshot`)
because they need torch. What a step could not read goes to `errors/curate-<step>.parquet`
(`archive.errors.ErrorSink`) under the folder the run locks (`annotations_owner`): the
archive's for the default annotations, which `biomedica inspect` shows, else the
annotations folder's, so curating into a folder of one's own never writes the archive.
"""

from __future__ import annotations

import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from biomedica.archive.annotations import AnnotationStore, annotations_lock, annotations_owner, default_annotations_dir
from biomedica.archive.errors import ErrorSink
from biomedica.archive.reader import iter_shard, live_shards, read_shard_index, shard_paths
from biomedica.curate.config import DedupConfig, QualityConfig
from biomedica.curate.dedup import DEDUP_INPUT_COLUMNS, find_duplicates, load_eval_images
from biomedica.curate.panels import PANELS_SCHEMA, graphics_per_figure, panel_row, panel_row_from_subfigures
from biomedica.curate.quality import QUALITY_INPUT_COLUMNS, assess_quality
from biomedica.curate.subfigures.boxes import SUBFIGURES_TABLE
from biomedica.curate.subfigures.run import subfigure_counts
from biomedica.records import ErrorRecord

STEPS = ("dedup", "quality", "panels")
ERROR_STAGE = "curate"


@dataclass
class StepResult:
    """What one step wrote and counted."""

    step: str
    path: Path
    rows: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)


def _require_archive(archive: Path) -> None:
    if not Path(archive).is_dir():
        raise FileNotFoundError(f"{archive}: archive folder not found; build one with `biomedica ingest`")
    if not shard_paths(Path(archive)):
        raise FileNotFoundError(f"{archive}: no complete shards (no _units/ markers); run or resume `biomedica ingest`")


def run_dedup(archive: Path, store: AnnotationStore, config: DedupConfig = DedupConfig()) -> StepResult:
    start = time.perf_counter()
    index = read_shard_index(Path(archive), columns=DEDUP_INPUT_COLUMNS)
    errors: list[ErrorRecord] = []
    eval_set = None
    if config.eval_images is not None:
        eval_set = load_eval_images(config.eval_images)
        errors += eval_set.errors
    near_stats: dict[str, int] = {}
    table = find_duplicates(index, config, eval_set, work_dir=Path(store.root), stats=near_stats)
    path = store.write("dedup", table)
    ErrorSink(annotations_owner(archive, store), ERROR_STAGE).write("dedup", errors)
    kinds = table.column("dup_kind").to_pylist()
    counts = {
        "samples": table.num_rows,
        "groups": len(set(table.column("dup_group").to_pylist())),
        "exact_duplicates": kinds.count("exact") - _canonical_count(table, "exact"),
        "near_duplicates": kinds.count("near") - _canonical_count(table, "near"),
        "non_canonical": table.num_rows - sum(table.column("canonical").to_pylist()),
        "eval_leaks": sum(table.column("leak").to_pylist()),
        "errors": len(errors),
        **near_stats,
    }
    return StepResult("dedup", path, table.num_rows, time.perf_counter() - start, counts)


def _canonical_count(table: pa.Table, kind: str) -> int:
    return sum(1 for k, c in zip(table.column("dup_kind").to_pylist(), table.column("canonical").to_pylist()) if k == kind and c)


def run_quality(archive: Path, store: AnnotationStore, config: QualityConfig = QualityConfig()) -> StepResult:
    start = time.perf_counter()
    table = assess_quality(read_shard_index(Path(archive), columns=QUALITY_INPUT_COLUMNS), config)
    path = store.write("quality", table)
    counts: dict[str, int] = {"samples": table.num_rows, "flagged": table.num_rows - sum(table.column("quality_ok").to_pylist())}
    for flags in table.column("flags").to_pylist():
        for flag in flags:
            counts[flag] = counts.get(flag, 0) + 1
    return StepResult("quality", path, table.num_rows, time.perf_counter() - start, counts)


def run_panels(archive: Path, store: AnnotationStore, progress: Callable[[int], None] | None = None) -> StepResult:
    start = time.perf_counter()
    archive = Path(archive)
    index_rows = read_shard_index(archive, columns=["key", "pmcid", "fig_id", "fig_label"]).to_pylist()
    graphics = graphics_per_figure(index_rows)
    # the panel detector's counts, where `curate subfigures` ran, decide over the layout heuristic
    detected = subfigure_counts(store.read(SUBFIGURES_TABLE, ["key", "method"])) if store.has(SUBFIGURES_TABLE) else {}
    rows = []
    errors: list[ErrorRecord] = []
    for _, tar_path, superseded in live_shards(archive):
        try:
            for record, image in iter_shard(tar_path, superseded):
                key = record["key"]
                if key in detected:
                    row = panel_row(key, record.get("caption"), graphics.get(key, 1), None)
                    rows.append(panel_row_from_subfigures(row, *detected[key]))
                else:
                    rows.append(panel_row(key, record.get("caption"), graphics.get(key, 1), image))
                if progress:
                    progress(1)
        except (OSError, ValueError, tarfile.TarError) as exc:  # a damaged shard: record it, go on with the next
            errors.append(ErrorRecord(id=tar_path.name, stage=ERROR_STAGE, kind="shard-unreadable",
                                      message=f"{tar_path}: {exc}; rebuild its unit and re-run `curate panels`",
                                      source=str(tar_path)))
    rows.sort(key=lambda r: r["key"])
    table = pa.Table.from_pylist(rows, schema=PANELS_SCHEMA)
    path = store.write("panels", table)
    ErrorSink(annotations_owner(archive, store), ERROR_STAGE).write("panels", errors)
    kinds = table.column("panel_type").to_pylist()
    counts = {"samples": len(rows), "single": kinds.count("single"), "multiple": kinds.count("multiple"),
              "errors": len(errors)}
    return StepResult("panels", path, len(rows), time.perf_counter() - start, counts)


def run_curate(
    archive: Path,
    annotations: Path | None = None,
    steps: tuple[str, ...] = STEPS,
    dedup: DedupConfig = DedupConfig(),
    quality: QualityConfig = QualityConfig(),
) -> list[StepResult]:
    """Run the chosen torch-free steps in order, holding the annotations' write lock; returns what each wrote."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown curate step(s) {', '.join(unknown)}; choose from {', '.join(STEPS)}")
    _require_archive(Path(archive))
    store = AnnotationStore(Path(annotations) if annotations else default_annotations_dir(Path(archive)))
    results = []
    with annotations_lock(archive, store, f"biomedica curate {' '.join(steps)}"):
        for step in steps:
            if step == "dedup":
                results.append(run_dedup(archive, store, dedup))
            elif step == "quality":
                results.append(run_quality(archive, store, quality))
            else:
                results.append(run_panels(archive, store))
    return results
