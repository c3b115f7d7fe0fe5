"""`biomedica curate subfigures`: panel boxes and subcaptions of every figure, resumable by shard.

Output, under the annotations folder:

    subfigures/meta.json                 detector kind, weights sha256, thresholds, the detector's config: a resume
                                         must match them
    subfigures/<group>-<shard>.parquet   one part per shard (SUBFIGURES_SCHEMA), written atomically: it marks the shard done
    subfigures.parquet                   every part's rows (live samples only), sorted by key and panel, written atomically

The shard is the unit of work: a second run skips shards with a part, an interrupted run redoes
only the shards without one. A sample whose image does not decode, or on which the detector
fails, gets no rows (never a guessed box) and one `ErrorRecord` in
`errors/curate-subfigures-<group>-<shard>.parquet` under `annotations_owner`, and is counted
as failed. Panel letters read by OCR (`SubfigureConfig.ocr`: auto = when the ocr extra is installed,
on compound-looking figures only; recorded in meta.json as `ocr`) guide the gutter detector and
label the panels (`pairing.ocr_letters`, `assign_glyphs`), else labels come from reading order
(`pairing.panel_rows`). When `panels.parquet` exists its panel type is brought into agreement with the
detector afterwards (`agree_panels`): a figure with >= 2 panel rows is "multiple".
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from biomedica.archive.annotations import AnnotationStore, annotations_lock, annotations_owner, write_table_atomic
from biomedica.archive.errors import ErrorSink
from biomedica.archive.reader import LiveShard, iter_shard, live_shards, shard_paths
from biomedica.curate.subfigures.boxes import SUBFIGURES_SCHEMA, SUBFIGURES_TABLE, Box, PanelDetector, uses_letters
from biomedica.exec import run_units, stop_if_orphaned
from biomedica.io.digest import file_sha256
from biomedica.io.settings import check_settings
from biomedica.lazy import MissingExtra, missing_extra_message
from biomedica.records import ErrorRecord

ERROR_STAGE = "curate"
PARTS_DIR = SUBFIGURES_TABLE  # annotations/subfigures/
META_NAME = "meta.json"
DetectorKind = Literal["gutter", "model", "auto"]


class SubfigureConfig(BaseModel):
    """Settings of `curate subfigures`: which detector, its weights and thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detector: DetectorKind = Field(default="auto", description="gutter, model, or auto (model when weights are given)")
    weights: Path | None = Field(default=None, description="local weights of the model detector (never downloaded)")
    device: str = Field(default="auto", description="model detector device: auto, cpu, cuda, cuda:N")
    score_threshold: float | None = Field(default=None, ge=0, le=1, description="model: keep boxes scoring at least this")
    nms_iou: float | None = Field(default=None, ge=0, le=1, description="model: non-maximum suppression IoU")
    ocr: Literal["auto", "on", "off"] = Field(
        default="auto", description="panel letters by OCR: auto (when the ocr extra is installed, on compound-looking "
        "figures only), on (required), off")
    progress: bool = True
    executor: Literal["local", "ray"] = Field(
        default="local", description="where shards are read: local (this machine) or ray (exec.run_units); same parts")
    shard_workers: int = Field(
        default=1, ge=1, description="shards at once: processes (local; 1 = in this process) or Ray tasks in flight "
        "(ray; 1 = one per cluster CPU)")
    gpus_per_worker: float = Field(default=0.0, ge=0, description="ray: share of a GPU per shard task (model detector)")

    @model_validator(mode="after")
    def _gpus_on_ray_only(self):
        if self.gpus_per_worker and self.executor != "ray":
            raise ValueError("--gpus-per-worker applies to --executor ray only (local: one process per GPU)")
        return self

    def resolved_ocr(self) -> bool:
        """Whether letters are read; `on` without the ocr extra is an error naming it."""
        if self.ocr == "off":
            return False
        if ocr_available():
            return True
        if self.ocr == "on":
            raise MissingExtra("--ocr on needs rapidocr-onnxruntime: pip install 'biomedica[ocr]' (or --ocr auto/off)")
        return False

    def resolved_detector(self) -> Literal["gutter", "model"]:
        if self.detector == "auto":
            return "model" if self.weights is not None else "gutter"
        return self.detector


@dataclass
class SubfigureResult:
    """What one run did (counts are of the shards this run processed) and what the table holds."""

    path: Path
    detector: str
    figures: int = 0
    panels: int = 0
    single: int = 0
    multiple: int = 0
    aligned: int = 0  # panel rows with a subcaption
    failed: int = 0
    shards_done: int = 0
    shards_skipped: int = 0
    seconds: float = 0.0
    table_rows: int = 0
    table_figures: int = 0
    panels_updated: int | None = None  # rows of panels.parquet rewritten (None: no panels.parquet)
    ocr: bool = False  # panel letters read by OCR (SubfigureConfig.ocr resolved)
    ocr_figures: int = 0  # figures OCR'd (compound-looking ones only)
    failed_shards: int = 0  # shards that could not be read to the end: no part written, a rerun retries them

    @property
    def figures_per_second(self) -> float:
        return self.figures / self.seconds if self.seconds > 0 else 0.0


def weights_sha256(path: Path) -> str:
    """What meta.json records of the weights: their content, so a renamed copy resumes and a retrained file does not."""
    return file_sha256(path)


def make_detector(kind: DetectorKind, weights: Path | None, device: str = "auto", score_threshold: float | None = None,
                  nms_iou: float | None = None) -> PanelDetector:
    """The detector `kind` names; auto: the model when weights are given, else gutter. Imports it lazily."""
    if kind == "auto":
        kind = "model" if weights is not None else "gutter"
    if kind == "gutter":
        if weights is not None or score_threshold is not None or nms_iou is not None:
            raise ValueError("--weights, --score-threshold and --nms-iou apply to --detector model only")
        from biomedica.curate.subfigures.gutter import GutterDetector

        return GutterDetector()
    if kind != "model":
        raise ValueError(f"unknown detector {kind!r}; choose gutter, model or auto")
    if weights is None:
        raise ValueError("--detector model needs --weights PATH (train them with `biomedica curate train-subfigure-detector`)")
    if not Path(weights).is_file():
        raise FileNotFoundError(f"{weights}: weights file not found; train one with `biomedica curate train-subfigure-detector`")
    try:  # torch/torchvision are imported by the module or when the detector is built
        from biomedica.curate.subfigures.model import ModelDetector

        return ModelDetector(Path(weights), device=device, score_threshold=score_threshold, nms_iou=nms_iou)
    except ImportError as exc:
        message = missing_extra_message(exc, "--detector model")
        if message is None:
            raise
        raise MissingExtra(message) from None


def _settings(config: SubfigureConfig) -> dict:
    """What a resume must match: the detector, its weights (by content) and thresholds."""
    weights = config.weights
    return {
        "detector": config.resolved_detector(),
        "weights_sha256": weights_sha256(weights) if weights is not None and Path(weights).is_file() else None,
        "score_threshold": config.score_threshold,
        "nms_iou": config.nms_iou,
    }


def _detector_config(detector: PanelDetector) -> dict | None:
    """The detector's own thresholds (GutterConfig, DetectorConfig), when it exposes them: they change the boxes too."""
    config = getattr(detector, "config", None)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, BaseModel):
        return config.model_dump(mode="json")
    return None


def parts_dir(store: AnnotationStore) -> Path:
    return Path(store.root) / PARTS_DIR


def run_subfigures(archive: Path, store: AnnotationStore, config: SubfigureConfig | None = None,
                   progress: Callable[[int], None] | None = None, detector: PanelDetector | None = None
                   ) -> SubfigureResult:
    """Detect and pair the panels of every shard without a part; publish the table; agree panels.parquet.

    `detector` replaces the one `config` names (a detector already built, or one of the caller's
    own); the settings recorded are still `config`'s, plus the detector's name. Holds the
    annotations' write lock.
    """
    archive = Path(archive)
    config = config or SubfigureConfig()
    if not archive.is_dir():
        raise FileNotFoundError(f"{archive}: archive folder not found; build one with `biomedica ingest`")
    if not shard_paths(archive):
        raise FileNotFoundError(f"{archive}: no complete shards (no _units/ markers); run or resume `biomedica ingest`")
    with annotations_lock(archive, store, "biomedica curate subfigures"):
        return _run(archive, store, config, progress, detector)


def _run(archive: Path, store: AnnotationStore, config: SubfigureConfig, progress: Callable[[int], None] | None,
         detector: PanelDetector | None) -> SubfigureResult:
    start = time.perf_counter()
    folder = parts_dir(store)
    settings = _settings(config)
    settings["ocr"] = config.resolved_ocr()  # before anything is recorded: --ocr on without the extra stops here
    custom = detector is not None  # the caller's own detector travels to the workers; else each builds config's
    if detector is None:  # built before the settings are recorded: bad weights or a missing extra record nothing
        detector = make_detector(config.detector, config.weights, config.device, config.score_threshold, config.nms_iou)
    else:
        settings["detector"] = detector.name
    settings["detector_config"] = _detector_config(detector)
    # settings["ocr"] (above): letters read by OCR change boxes and labels, so a resume must match
    check_settings(folder / META_NAME, settings, f"subfigure folder {folder}",
                   "rerun with the same --detector/--weights/thresholds, or delete the folder to start over")
    result = SubfigureResult(path=store.table_path(SUBFIGURES_TABLE), detector=settings["detector"], ocr=settings["ocr"])
    shards = live_shards(archive)
    units = []
    for unit in shards:  # one shard: the unit of work, resume and error parts
        if (folder / f"{unit.stem}.parquet").is_file():
            result.shards_skipped += 1
        else:
            units.append(unit)
    inline = config.executor == "local" and config.shard_workers <= 1
    job = SubfigureJob(folder, annotations_owner(archive, store), config, settings["ocr"],
                       detector if inline or custom else None)
    if inline:
        done = ((unit, subfigure_shard(unit, job, progress)) for unit in units)
    else:
        done = run_units(subfigure_shard, units, executor=config.executor, workers=config.shard_workers, context=job,
                         gpus_per_worker=config.gpus_per_worker)
    for _, counted in done:
        if counted is None:  # an unreadable shard: its error is recorded, no part, a rerun retries it
            result.failed_shards += 1
            continue
        if progress and not inline:
            progress(counted.figures + counted.failed)
        for name in ("figures", "panels", "single", "multiple", "aligned", "failed", "ocr_figures"):
            setattr(result, name, getattr(result, name) + getattr(counted, name))
        result.shards_done += 1
    table = combined_table(folder, shards)
    write_table_atomic(result.path, table)
    result.table_rows = table.num_rows
    result.table_figures = len(pc.unique(table.column("key")))
    if store.has("panels"):
        result.panels_updated = agree_panels(store, table)
    result.seconds = time.perf_counter() - start
    return result


@dataclass(frozen=True)
class SubfigureJob:
    """What every shard unit shares, sent once per worker: where to write, the settings, the detector (or None:
    each worker builds config's once)."""

    folder: Path
    errors_root: Path  # annotations_owner: the folder the parent locks
    config: SubfigureConfig
    ocr: bool
    detector: PanelDetector | None = None


_WORKER_DETECTORS: dict[str, PanelDetector] = {}  # per worker process: config's detector, built once


def _job_detector(job: SubfigureJob) -> PanelDetector:
    if job.detector is not None:
        return job.detector
    config = job.config
    key = config.model_dump_json()
    if key not in _WORKER_DETECTORS:
        _WORKER_DETECTORS.clear()
        _WORKER_DETECTORS[key] = make_detector(config.detector, config.weights, config.device, config.score_threshold,
                                               config.nms_iou)
    return _WORKER_DETECTORS[key]


def subfigure_shard(unit: LiveShard, job: SubfigureJob, progress: Callable[[int], None] | None = None
                    ) -> SubfigureResult | None:
    """Detect and pair one shard's panels, write its errors then its part (unit function of `exec.run_units`).

    Returns the shard's counts, or None when the shard could not be read (recorded as one error, no part).
    """
    sink = ErrorSink(job.errors_root, ERROR_STAGE)
    counted = SubfigureResult(path=job.folder, detector="")  # merged by the caller only when the shard is whole
    try:
        rows, errors = _shard_rows(unit.tar, unit.superseded, _job_detector(job), progress, counted, job.ocr)
    except (OSError, ValueError, tarfile.TarError) as exc:  # a damaged shard: recorded, no part, the rest goes on
        sink.write(f"subfigures-{unit.stem}", [ErrorRecord(
            id=unit.tar.name, stage=ERROR_STAGE, kind="shard-unreadable", source=str(unit.tar),
            message=f"{unit.tar}: {type(exc).__name__}: {exc}; rebuild its unit (`biomedica inspect --verify` "
                    "names it) and rerun `curate subfigures`: it redoes only this shard")])
        return None
    sink.write(f"subfigures-{unit.stem}", errors)  # before the part: a part on disk means its errors are too
    write_table_atomic(job.folder / f"{unit.stem}.parquet", pa.Table.from_pylist(rows, schema=SUBFIGURES_SCHEMA))
    return counted


def ocr_available() -> bool:
    """True when pairing.read_glyphs has its OCR library; without it panels are paired by reading order only."""
    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


def _shard_rows(tar_path: Path, superseded: frozenset[str], detector: PanelDetector,
                progress: Callable[[int], None] | None, result: SubfigureResult, ocr: bool = False
                ) -> tuple[list[dict], list[ErrorRecord]]:
    from biomedica.curate.subfigures.captions import split_caption
    from biomedica.curate.subfigures.pairing import expected_panels, panel_rows

    rows: list[dict] = []
    errors: list[ErrorRecord] = []
    for record, image_bytes in iter_shard(tar_path, superseded):
        stop_if_orphaned()
        key = record["key"]
        split = split_caption(record.get("caption"))
        try:
            boxes, width, height, read = _detect(detector, image_bytes, ocr, expected_panels(split), len(split.labels()))
        except Exception as exc:  # noqa: BLE001 - one bad sample is recorded, never stops the run
            kind = "image-undecodable" if _undecodable(image_bytes) else "detector-failed"
            errors.append(ErrorRecord(id=key, stage=ERROR_STAGE, kind=kind,
                                      message=f"{type(exc).__name__}: {exc}; the figure has no subfigure rows",
                                      source=str(tar_path)))
            result.failed += 1
        else:
            result.ocr_figures += read
            panels = panel_rows(key, width, height, boxes, split, detector.name)
            rows += panels
            result.figures += 1
            result.panels += len(panels)
            result.aligned += sum(1 for row in panels if row.get("subcaption") is not None)
            if len(panels) >= 2:
                result.multiple += 1
            else:
                result.single += 1
        if progress:
            progress(1)
    return rows, errors


def _detect(detector: PanelDetector, image_bytes: bytes, ocr: bool = False, hint: int | None = None,
            named: int = 0) -> tuple[list[Box], int, int, bool]:
    """(boxes clipped to the image, without empty ones; width; height; whether OCR ran) of one stored image.

    `hint` is the caption's panel count (pairing.expected_panels), which the detector may use;
    `named` how many panel labels the caption names. With `ocr`, a compound-looking figure (>= 2
    boxes without glyphs, or a caption naming >= 2 panels; OCR costs ~1-2 s of CPU a figure, single
    figures never pay it) is read once (pairing.ocr_letters, full-size decode): its letters go to
    the detector (when it takes `letters`, as the gutter detector does), then to the final boxes as
    glyphs (pairing.assign_glyphs).
    """
    with Image.open(io.BytesIO(image_bytes)) as image:
        width, height = image.size  # before the detector: a JPEG draft shrinks the image in place
        boxes = _clip(detector.detect(image, expected_panels=hint), width, height)
    unread = len(boxes) >= 2 and any(box.glyph is None for box in boxes)
    if not ocr or not (unread or named >= 2):
        return boxes, width, height, False
    from biomedica.curate.subfigures.pairing import assign_glyphs, ocr_letters

    with Image.open(io.BytesIO(image_bytes)) as image:
        letters = ocr_letters(image)
    if not letters:
        return boxes, width, height, True
    if uses_letters(detector):
        with Image.open(io.BytesIO(image_bytes)) as image:
            boxes = _clip(detector.detect(image, expected_panels=hint, letters=letters), width, height)
    if len(boxes) >= 2 and any(box.glyph is None for box in boxes):
        boxes = assign_glyphs(boxes, letters, (width, height))
    return boxes, width, height, True


def _clip(boxes: list[Box], width: int, height: int) -> list[Box]:
    clipped = [box.clipped(width, height) for box in boxes]
    return [box for box in clipped if box.area > 0]


def _undecodable(image_bytes: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            image.load()
        return False
    except Exception:  # noqa: BLE001 - any decoder failure
        return True


def combined_table(folder: Path, shards: list[tuple[str, Path, frozenset[str]]]) -> pa.Table:
    """Every live shard's part, without samples superseded since the part was written, sorted by key and panel."""
    tables = []
    for group, tar_path, superseded in shards:
        part = folder / f"{group}-{tar_path.stem}.parquet"
        if not part.is_file():
            continue
        table = pq.read_table(part, schema=SUBFIGURES_SCHEMA)
        if superseded:
            keep = pc.invert(pc.is_in(table.column("key"), value_set=pa.array(sorted(superseded), pa.string())))
            table = table.filter(keep)
        tables.append(table)
    if not tables:
        return SUBFIGURES_SCHEMA.empty_table()
    return pa.concat_tables(tables).sort_by([("key", "ascending"), ("panel", "ascending")])


def subfigure_counts(table: pa.Table) -> dict[str, tuple[int, str]]:
    """key -> (panel rows, detector) of a subfigures table; the detector is the method before any "+pairing"."""
    counts: dict[str, tuple[int, str]] = {}
    for key, method in zip(table.column("key").to_pylist(), table.column("method").to_pylist()):
        n, _ = counts.get(key, (0, ""))
        counts[key] = (n + 1, (method or "").partition("+")[0])
    return counts


def agree_panels(store: AnnotationStore, subfigures: pa.Table) -> int:
    """Rewrite panels.parquet's panel type from the subfigure counts; returns the rows decided by the detector."""
    from biomedica.curate.panels import panel_row_from_subfigures

    panels = store.read("panels")
    counts = subfigure_counts(subfigures)
    rows = panels.to_pylist()
    updated = 0
    for i, row in enumerate(rows):
        found = counts.get(row["key"])
        if found is not None:
            rows[i] = panel_row_from_subfigures(row, *found)
            updated += 1
    store.write("panels", pa.Table.from_pylist(rows, schema=panels.schema))
    return updated
