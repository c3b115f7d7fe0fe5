"""Writing a selection as shards: one planned, parallel, resumable step for the three kinds.

Kinds: byte copies of the stored images (`--output shards`), training-ready copies
(`--image-size`: images.training.make_training_image, records.TrainingCopyRecord) and panel
crops (`--unit subfigure`, optionally resized: crop in the stored pixels, then resize).

Plan: the selected rows (the query's total ORDER BY makes their order deterministic) are cut
into shards of `samples_per_shard` rows (panel rows for subfigures); shard i is `{i:06d}`.
`<out>/select-plan.json` is written atomically before any shard: the settings (the config
without out/overwrite/workers/executor), the shard count, and sha256 digests of the ordered sample ids
(all, and per shard). The plan, not the worker count, fixes every shard's content, so any
`--workers` writes the same bytes.

Unit = (shard index, its rows as an Arrow slice), run by `exec.run_units` (local processes, or
Ray tasks with `executor="ray"`: the same bytes). `write_shard` reads each stored image with one
seek, writes through ShardWriter, records the samples whose image does not decode or transform in
`<out>/errors/select-<shard>.parquet` (before the shard is published; the sample is skipped), then
publishes tar then index. A shard whose samples all
failed is still written (empty tar + index), so shard names stay contiguous.

Resume: a folder with the plan but no `selection.json` is an interrupted run; with equal
settings and sample ids the shards whose `.parquet` exists are kept, the rest written.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from biomedica.archive.errors import ErrorSink
from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.shard_writer import SELECT_IMAGE_EXTENSIONS, ShardWriter
from biomedica.exec import run_units, stop_if_orphaned
from biomedica.images.training import TrainingImage, TrainingImageSpec, make_training_image
from biomedica.io.atomic import publish
from biomedica.records import (
    SHARD_SCHEMA,
    SUBFIGURE_SHARD_SCHEMA,
    TRAINING_SHARD_SCHEMA,
    ErrorRecord,
    FigureRecord,
    TrainingCopyRecord,
)
from biomedica.select.write import ERROR_STAGE, figure_record, panel_sample

PLAN_NAME = "select-plan.json"
PLAN_VERSION = 1
UNDECODABLE = "image-undecodable"


@dataclass(frozen=True)
class ShardJob:
    """What every shard unit shares (sent once per worker process)."""

    archive: Path
    out: Path
    unit: str  # "figure" | "subfigure"
    spec: TrainingImageSpec | None = None


@dataclass(frozen=True)
class ShardUnit:
    index: int
    rows: pa.Table

    @property
    def name(self) -> str:
        return f"{self.index:06d}"


@dataclass
class ShardCounts:
    """What one shard holds: written samples, failures, bytes read and written."""

    name: str
    samples: int = 0  # written
    failed: int = 0  # not written: the image did not decode or transform (errors/select-<shard>.parquet)
    skipped: int = 0  # subfigure: empty boxes
    failed_figures: list[str] = field(default_factory=list)  # keys of figures that did not decode (subfigure)
    bytes_in: int = 0  # stored image bytes read (each figure once)
    bytes_out: int = 0  # image bytes written
    tar_bytes: int = 0
    resumed: bool = False


def sample_ids(rows: pa.Table, unit: str) -> list[str]:
    """The sample keys the rows make, in order (subfigure: `<figure key>_p<panel>`)."""
    keys = rows.column("key").to_pylist()
    if unit == "subfigure":
        return [f"{key}_p{panel}" for key, panel in zip(keys, rows.column("subfigure_panel").to_pylist())]
    return keys


def _digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


def plan_shards(rows: pa.Table, samples_per_shard: int) -> list[ShardUnit]:
    """Cut the ordered rows into shards of `samples_per_shard` rows (none for no rows)."""
    return [ShardUnit(i, rows.slice(start, samples_per_shard))
            for i, start in enumerate(range(0, rows.num_rows, samples_per_shard))]


def plan_record(settings: dict[str, Any], units: list[ShardUnit], unit: str) -> dict[str, Any]:
    """The content of select-plan.json: the settings flat (io.settings compares them key by key), then the plan."""
    per_shard = [sample_ids(u.rows, unit) for u in units]
    every = [key for ids in per_shard for key in ids]
    return {**settings, "shards": len(units), "samples": len(every), "keys_sha256": _digest(every),
            "shard_keys_sha256": [_digest(ids) for ids in per_shard], "plan_version": PLAN_VERSION}


def shard_files(out: Path, count: int) -> list[str]:
    """Every file a plan of `count` shards may write, relative to `out`."""
    names = []
    for i in range(count):
        names += [f"{i:06d}.tar", f"{i:06d}.parquet", f"errors/{ERROR_STAGE}-{i:06d}.parquet"]
    return names


class _Members:
    """Stored image bytes of selected rows, one seek each; the archive tars stay open for the unit."""

    def __init__(self, archive: Path, files: ExitStack) -> None:
        self.layout = ArchiveLayout(Path(archive))
        self.files = files
        self.handles: dict[Path, BinaryIO] = {}

    def tar(self, row: dict) -> Path:
        return self.layout.group_dir(row["group"]) / row["shard"]

    def read(self, row: dict) -> bytes:
        tar = self.tar(row)
        handle = self.handles.get(tar)
        if handle is None:
            handle = self.handles[tar] = self.files.enter_context(open(tar, "rb"))  # noqa: SIM115 - ExitStack closes
        handle.seek(row["image_offset"])
        data = handle.read(row["image_size"])
        if len(data) != row["image_size"]:
            raise ValueError(f"{tar}: image of {row['key']} is truncated; run `biomedica inspect --verify`")
        return data


def _error(key: str, exc: BaseException, source: Path, note: str = "") -> ErrorRecord:
    return ErrorRecord(id=key, stage=ERROR_STAGE, kind=getattr(exc, "kind", None) or UNDECODABLE,
                       message=f"{type(exc).__name__}: {exc}{note}", source=str(source))


def write_shard(unit: ShardUnit, job: ShardJob) -> ShardCounts:
    """Write shard `unit.index` of the plan (unit function of `exec.run_units`); returns its counts."""
    out = Path(job.out)
    name = unit.name
    schema = SUBFIGURE_SHARD_SCHEMA if job.unit == "subfigure" else _figure_schema(job.spec)
    counts = ShardCounts(name)
    errors: list[ErrorRecord] = []
    writer = ShardWriter(out / f"{name}.tar", out / f"{name}.parquet", schema=schema,
                         image_extensions=SELECT_IMAGE_EXTENSIONS)
    try:
        with ExitStack() as files:
            members = _Members(job.archive, files)
            add = _add_panels if job.unit == "subfigure" else _add_figures
            add(unit.rows, members, writer, job.spec, counts, errors)
        finished = writer.finish()
    except BaseException:
        writer.discard()
        raise
    ErrorSink(out, ERROR_STAGE).write(name, errors)  # before the shard: a published index means its errors are too
    for temporary, final in finished.renames:
        publish(temporary, final)
    counts.tar_bytes = finished.tar_bytes
    return counts


def _figure_schema(spec: TrainingImageSpec | None) -> pa.Schema:
    return SHARD_SCHEMA if spec is None else TRAINING_SHARD_SCHEMA


def _add_figures(rows: pa.Table, members: _Members, writer: ShardWriter, spec: TrainingImageSpec | None,
                 counts: ShardCounts, errors: list[ErrorRecord]) -> None:
    for row in rows.to_pylist():
        stop_if_orphaned()
        record = figure_record(row)
        data = members.read(row)
        if spec is None:  # a byte copy: never decoded, never re-encoded
            writer.add(record, data, record.image_format)
            counts.samples += 1
            counts.bytes_in += len(data)
            counts.bytes_out += len(data)
            continue
        try:
            image = make_training_image(data, spec, name=record.key)
        except Exception as exc:  # noqa: BLE001 - any decoder/transform failure is one failed sample
            errors.append(_error(record.key, exc, members.tar(row), "; not written"))
            counts.failed += 1
            continue
        copy = training_copy(record, row, image)
        writer.add(copy, image.data, image.extension)
        counts.samples += 1
        counts.bytes_in += len(data)
        counts.bytes_out += len(image.data)


def training_copy(record: FigureRecord, row: dict, image: TrainingImage) -> TrainingCopyRecord:
    """The TrainingCopyRecord of a resized copy: the copy's format/size/sha256, the stored image's as original_*."""
    fields_ = {**record.__dict__, "image_format": image.extension, "width": image.width, "height": image.height,
               "sha256": hashlib.sha256(image.data).hexdigest()}
    return TrainingCopyRecord(**fields_, original_image_format=record.image_format, original_width=record.width,
                              original_height=record.height, original_sha256=record.sha256,
                              original_shard=f"{row['group']}/{row['shard']}")


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _add_panels(rows: pa.Table, members: _Members, writer: ShardWriter, spec: TrainingImageSpec | None,
                counts: ShardCounts, errors: list[ErrorRecord]) -> None:
    current, parent, image = None, None, None
    for row in rows.to_pylist():
        stop_if_orphaned()
        if row["key"] != current:  # rows come sorted by figure, then panel: decode each figure once
            current, parent, image = row["key"], figure_record(row), None
            data = members.read(row)
            counts.bytes_in += len(data)
            try:
                image = _decode(data)
            except Exception as exc:  # noqa: BLE001 - any decoder failure is one undecodable figure
                errors.append(_error(current, exc, members.tar(row), "; its panels were not written"))
                counts.failed_figures.append(current)
        if image is None:
            counts.failed += 1
            continue
        try:
            sample = panel_sample(row, parent, image, spec)
        except Exception as exc:  # noqa: BLE001 - a crop that does not transform is one failed sample
            errors.append(_error(f"{current}_p{row['subfigure_panel']}", exc, members.tar(row), "; not written"))
            counts.failed += 1
            continue
        if sample is None:
            counts.skipped += 1
            continue
        record, data = sample
        writer.add(record, data, record.image_format or "png")
        counts.samples += 1
        counts.bytes_out += len(data)


def resumed_counts(unit: ShardUnit, job: ShardJob) -> ShardCounts:
    """The counts of a shard an earlier run published, read back from its index and error part."""
    out = Path(job.out)
    counts = ShardCounts(unit.name, resumed=True)
    columns = ["key", "image_size"] + (["parent_key"] if job.unit == "subfigure" else [])
    index = pq.read_table(out / f"{unit.name}.parquet", columns=columns)
    counts.samples = index.num_rows
    counts.bytes_out = sum(index.column("image_size").to_pylist())
    counts.tar_bytes = (out / f"{unit.name}.tar").stat().st_size
    stored = dict(zip(unit.rows.column("key").to_pylist(), unit.rows.column("image_size").to_pylist()))
    if job.unit == "subfigure":
        read = set(unit.rows.column("key").to_pylist())  # every figure of the shard was read, failed or not
        counts.bytes_in = sum(stored[key] for key in read)
    else:
        counts.bytes_in = sum(stored.get(key, 0) for key in index.column("key").to_pylist())
    errors_path = ErrorSink(out, ERROR_STAGE).path(unit.name)
    failed_ids = pq.read_table(errors_path, columns=["id"]).column("id").to_pylist() if errors_path.is_file() else []
    if job.unit == "subfigure":
        figures = set(unit.rows.column("key").to_pylist())
        counts.failed_figures = [i for i in failed_ids if i in figures]
        lost = set(counts.failed_figures)
        in_lost = sum(1 for key in unit.rows.column("key").to_pylist() if key in lost)
        counts.failed = in_lost + len(failed_ids) - len(counts.failed_figures)
        counts.skipped = unit.rows.num_rows - counts.samples - counts.failed
    else:
        counts.failed = len(failed_ids)
    return counts


def write_planned_shards(job: ShardJob, units: list[ShardUnit], workers: int,
                         progress: Callable[[int], None] | None = None, executor: str = "local") -> Iterator[ShardCounts]:
    """Counts of every planned shard: those already published (resume) first, then each as it is written."""
    todo = []
    for unit in units:
        if (Path(job.out) / f"{unit.name}.parquet").is_file():  # published last: the shard is complete
            counts = resumed_counts(unit, job)
            if progress:
                progress(unit.rows.num_rows)
            yield counts
        else:
            todo.append(unit)
    workers = max(1, min(workers, len(todo)))
    for unit, counts in run_units(write_shard, todo, executor=executor, workers=workers, context=job):
        if progress:
            progress(unit.rows.num_rows)
        yield counts


def published_sizes(out: Path, count: int) -> dict[str, int]:
    """sizes.json from the published shards' indexes (row counts), in shard order."""
    return {f"{i:06d}.tar": pq.ParquetFile(Path(out) / f"{i:06d}.parquet").metadata.num_rows for i in range(count)}
