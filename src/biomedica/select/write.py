"""Writing a selection as new WebDataset shards (the manifest form is `archive.selection`).

Shards (`NNNNNN.tar` + `NNNNNN.parquet` index + `sizes.json`): a self-contained subset in the
archive's own format (same members, same index schema), readable by OpenCLIP with
`--train-data 'out/{000000..000009}.tar'`. Member bytes are copied with one seek each,
never re-encoded. Each shard is published atomically.

Both forms also write `selection.json` (`archive.selection.write_selection_summary`).

Subfigure shards (`--unit subfigure`, `write_subfigure_shards`): one sample per panel, key
`<figure key>_p<panel>`, the image the crop (x0, y0, x1, y1) of the stored image. A crop cannot
be copied, so it is encoded in the stored format: PNG stays PNG (lossless: the crop's pixels
equal the stored image's), JPEG is re-encoded as JPEG at quality 95 with 4:4:4 chroma (no
subsampling: panels are small and full of text and lines), ICC profile kept, EXIF dropped (boxes
are in the stored, unrotated pixels). `txt` is the subcaption, or the figure's caption when the
panel has none; `.json` and the index carry the parent, box, label, score, method and the
figure caption (records.SubfigureRecord). A figure whose image does not decode gets one error
in `<out>/errors/select-crops.parquet` and none of its panels are written.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
from PIL import Image

from biomedica.archive.errors import ErrorSink
from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.manifest import brace_pattern
from biomedica.archive.selection import (  # noqa: F401 - moved to archive.selection; old names kept for one release
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    SELECTION_NAME,
    manifest_key_filter,
    manifest_table,
    read_manifest_keys,
    write_manifest,
    write_selection_summary,
)
from biomedica.archive.shard_writer import ShardWriter
from biomedica.images.phash import perceptual_hash
from biomedica.io.atomic import publish, write_json_atomic
from biomedica.records import SUBFIGURE_SHARD_SCHEMA, ErrorRecord, FigureRecord, SubfigureRecord

SIZES_NAME = "sizes.json"
ERROR_STAGE = "select"
CROP_ERRORS_PART = "crops"  # <out>/errors/select-crops.parquet
JPEG_QUALITY = 95
_RECORD_FIELDS = [f.name for f in fields(FigureRecord)]


def _chunks(rows: list[dict], size: int) -> Iterator[list[dict]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def write_shards(archive: Path, out: Path, rows: pa.Table, samples_per_shard: int,
                 progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Copy the selected samples into new shards under `out`; returns sizes.json's content."""
    archive = Path(archive)
    layout = ArchiveLayout(archive)
    out = Path(out)
    sizes: dict[str, int] = {}
    records = rows.to_pylist()
    handles: dict[Path, object] = {}
    try:
        for number, chunk in enumerate(_chunks(records, samples_per_shard)):
            name = f"{number:06d}"
            writer = ShardWriter(out / f"{name}.tar", out / f"{name}.parquet")
            try:
                for row in chunk:
                    tar = layout.group_dir(row["group"]) / row["shard"]
                    handle = handles.get(tar)
                    if handle is None:
                        handle = handles[tar] = open(tar, "rb")
                    handle.seek(row["image_offset"])
                    image = handle.read(row["image_size"])
                    if len(image) != row["image_size"]:
                        raise ValueError(f"{tar}: image of {row['key']} is truncated; run `biomedica inspect --verify`")
                    record = _record(row)
                    writer.add(record, image, record.image_format)
                    if progress:
                        progress(1)
                finished = writer.finish()
            except BaseException:
                writer.discard()
                raise
            for temporary, final in finished.renames:
                publish(temporary, final)
            sizes[finished.name] = finished.samples
    finally:
        for handle in handles.values():
            handle.close()
    write_json_atomic(out / SIZES_NAME, sizes)
    return sizes



def _record(row: dict) -> FigureRecord:
    record = FigureRecord(**{f: row.get(f) for f in _RECORD_FIELDS})
    record.mentions = record.mentions or []
    record.keywords = record.keywords or []
    record.subjects = record.subjects or []
    return record


@dataclass
class CropStats:
    """What `write_subfigure_shards` wrote and skipped."""

    figures: int = 0  # parent figures with at least one panel written
    panels: int = 0  # crops written
    failed_figures: int = 0  # images that did not decode: none of their panels written
    skipped_panels: int = 0  # panels of those figures, and empty boxes


def encode_crop(image: Image.Image, box: tuple[int, int, int, int], image_format: str) -> bytes:
    """The crop of a decoded stored image, encoded as the module docstring says (PNG lossless, JPEG q95 4:4:4)."""
    crop = image.crop(box)
    buffer = io.BytesIO()
    icc = image.info.get("icc_profile")
    if image_format == "png":
        crop.save(buffer, format="PNG", **({"icc_profile": icc} if icc else {}))
    else:
        if crop.mode not in ("RGB", "L", "CMYK"):
            crop = crop.convert("RGB")
        crop.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0, **({"icc_profile": icc} if icc else {}))
    return buffer.getvalue()


def _panel_sample(row: dict, parent: FigureRecord, image: Image.Image) -> tuple[SubfigureRecord, bytes] | None:
    """The record and crop bytes of one panel row, or None when its box is empty inside the image."""
    x0, y0 = max(0, row["subfigure_x0"]), max(0, row["subfigure_y0"])
    x1, y1 = min(image.width, row["subfigure_x1"]), min(image.height, row["subfigure_y1"])
    if x1 <= x0 or y1 <= y0:
        return None
    data = encode_crop(image, (x0, y0, x1, y1), parent.image_format or "png")
    with Image.open(io.BytesIO(data)) as stored:
        phash = perceptual_hash(stored)
    text = row.get("subfigure_subcaption") or parent.caption
    fields_ = {**parent.to_dict(), "key": f"{parent.key}_p{row['subfigure_panel']}", "caption": text or "",
               "width": x1 - x0, "height": y1 - y0, "sha256": hashlib.sha256(data).hexdigest(), "phash": phash}
    record = SubfigureRecord(
        **fields_, parent_key=parent.key, panel=row["subfigure_panel"], x0=x0, y0=y0, x1=x1, y1=y1,
        label=row.get("subfigure_label"), subfigure_score=_round(row.get("subfigure_score")),
        subfigure_method=row.get("subfigure_method"), figure_caption=parent.caption,
    )
    return record, data


def _round(score: float | None) -> float | None:
    return None if score is None else round(float(score), 6)  # float32 in the table: no 0.8999999761581421 in the json


def _decode_parent(layout: ArchiveLayout, row: dict, handles: dict[Path, BinaryIO], files: ExitStack
                   ) -> tuple[Image.Image | None, ErrorRecord | None]:
    """The decoded stored image of a selected figure (one seek), or the error that says why it did not decode."""
    tar = layout.group_dir(row["group"]) / row["shard"]
    handle = handles.get(tar)
    if handle is None:
        handle = handles[tar] = files.enter_context(open(tar, "rb"))  # noqa: SIM115 - the ExitStack closes it
    handle.seek(row["image_offset"])
    data = handle.read(row["image_size"])
    if len(data) != row["image_size"]:
        raise ValueError(f"{tar}: image of {row['key']} is truncated; run `biomedica inspect --verify`")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # noqa: BLE001 - any decoder failure is one undecodable figure
        return None, ErrorRecord(id=row["key"], stage=ERROR_STAGE, kind="image-undecodable",
                                 message=f"{type(exc).__name__}: {exc}; its panels were not written", source=str(tar))
    return image, None


def write_subfigure_shards(archive: Path, out: Path, rows: pa.Table, samples_per_shard: int,
                           progress: Callable[[int], None] | None = None) -> tuple[dict[str, int], CropStats]:
    """Write one crop sample per panel row (rows sorted by figure, then panel); returns (sizes.json, counts)."""
    layout = ArchiveLayout(Path(archive))
    out = Path(out)
    sizes: dict[str, int] = {}
    stats = CropStats()
    errors: list[ErrorRecord] = []
    writer: ShardWriter | None = None
    handles: dict[Path, BinaryIO] = {}

    def flush() -> None:
        nonlocal writer
        finished = writer.finish()
        writer = None
        for temporary, final in finished.renames:
            publish(temporary, final)
        sizes[finished.name] = finished.samples

    current_key, image, parent = None, None, None
    written: set[str] = set()  # parent figures with a crop written
    with ExitStack() as files:
        try:
            for row in rows.to_pylist():
                if row["key"] != current_key:
                    current_key, parent = row["key"], _record(row)
                    image, error = _decode_parent(layout, row, handles, files)
                    if error is not None:
                        stats.failed_figures += 1
                        errors.append(error)
                sample = _panel_sample(row, parent, image) if image is not None else None
                if sample is None:
                    stats.skipped_panels += 1
                    continue
                if writer is None:
                    name = f"{len(sizes):06d}"
                    writer = ShardWriter(out / f"{name}.tar", out / f"{name}.parquet", schema=SUBFIGURE_SHARD_SCHEMA)
                record, data = sample
                writer.add(record, data, record.image_format or "png")
                stats.panels += 1
                written.add(current_key)
                if progress:
                    progress(1)
                if len(writer) >= samples_per_shard:
                    flush()
            if writer is not None:
                flush()
        except BaseException:
            if writer is not None:
                writer.discard()
            raise
    stats.figures = len(written)
    ErrorSink(out, ERROR_STAGE).write(CROP_ERRORS_PART, errors)
    write_json_atomic(out / SIZES_NAME, sizes)
    return sizes, stats


def shard_pattern(out: Path, sizes: dict[str, int]) -> str | None:
    """Brace pattern naming the written shards (`out/{000000..000003}.tar`)."""
    return brace_pattern(str(Path(out)), list(sizes))

