"""What goes into the shards of a selection (the writing step is `select.shards`; the manifest form `archive.selection`).

Shards (`NNNNNN.tar` + `NNNNNN.parquet` index + `sizes.json`): a self-contained subset in the
archive's own format (same members, same index schema), readable by OpenCLIP with
`--train-data 'out/{000000..000009}.tar'`. Without --image-size member bytes are copied with
one seek each, never re-encoded. With --image-size each image is a training-ready copy
(images.training; records.TrainingCopyRecord keeps the original's key, format, size, sha256, shard).

Both forms also write `selection.json` (`archive.selection.write_selection_summary`).

Subfigure shards (`--unit subfigure`): one sample per panel, key `<figure key>_p<panel>`, the
image the crop (x0, y0, x1, y1) of the stored image. A crop cannot be copied, so it is encoded
in the stored format: PNG stays PNG (lossless: the crop's pixels equal the stored image's), JPEG
is re-encoded as JPEG at quality 95 with 4:4:4 chroma (no subsampling: panels are small and full
of text and lines), ICC profile kept, EXIF dropped (boxes are in the stored, unrotated pixels).
With --image-size the crop is made a training image instead (crop, then resize). `txt` is the
subcaption, or the figure's caption when the panel has none; `.json` and the index carry the
parent, box, label, score, method and the figure caption (records.SubfigureRecord). A figure
whose image does not decode gets one error in its shard's `<out>/errors/select-<shard>.parquet`
and none of its panels are written.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

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
from biomedica.images.phash import perceptual_hash
from biomedica.records import FigureRecord, SubfigureRecord

if TYPE_CHECKING:
    from biomedica.images.training import TrainingImageSpec

SIZES_NAME = "sizes.json"
ERROR_STAGE = "select"
CROP_ERRORS_PART = "crops"  # errors/select-crops.parquet: where selections before the shard plan put crop errors
JPEG_QUALITY = 95
_RECORD_FIELDS = [f.name for f in fields(FigureRecord)]


def figure_record(row: dict) -> FigureRecord:
    """The archive's figure record of a selected row (the index columns it carries)."""
    record = FigureRecord(**{f: row.get(f) for f in _RECORD_FIELDS})
    record.mentions = record.mentions or []
    record.keywords = record.keywords or []
    record.subjects = record.subjects or []
    return record


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


def panel_sample(row: dict, parent: FigureRecord, image: Image.Image, spec: TrainingImageSpec | None = None
                 ) -> tuple[SubfigureRecord, bytes] | None:
    """The record and crop bytes of one panel row, or None when its box is empty inside the image.

    With `spec` the crop is then made a training image (images.training): the record's
    width/height/sha256/format describe the resized crop; the box stays in the parent's stored pixels.
    """
    x0, y0 = max(0, row["subfigure_x0"]), max(0, row["subfigure_y0"])
    x1, y1 = min(image.width, row["subfigure_x1"]), min(image.height, row["subfigure_y1"])
    if x1 <= x0 or y1 <= y0:
        return None
    key = f"{parent.key}_p{row['subfigure_panel']}"
    if spec is None:
        data, image_format = encode_crop(image, (x0, y0, x1, y1), parent.image_format or "png"), parent.image_format
    else:
        from biomedica.images.training import training_image_from_pixels

        made = training_image_from_pixels(image.crop((x0, y0, x1, y1)), spec)
        data, image_format = made.data, made.extension
    with Image.open(io.BytesIO(data)) as stored:
        phash = perceptual_hash(stored)
        width, height = stored.size
    text = row.get("subfigure_subcaption") or parent.caption
    fields_ = {**parent.to_dict(), "key": key, "caption": text or "", "image_format": image_format,
               "width": width, "height": height, "sha256": hashlib.sha256(data).hexdigest(), "phash": phash,
               # the figure's caption_tex describes its whole caption: kept only when the panel shows that caption
               "caption_tex": parent.caption_tex if text == parent.caption else None}
    record = SubfigureRecord(
        **fields_, parent_key=parent.key, panel=row["subfigure_panel"], x0=x0, y0=y0, x1=x1, y1=y1,
        label=row.get("subfigure_label"), subfigure_score=_round(row.get("subfigure_score")),
        subfigure_method=row.get("subfigure_method"), figure_caption=parent.caption,
    )
    return record, data


def _round(score: float | None) -> float | None:
    return None if score is None else round(float(score), 6)  # float32 in the table: no 0.8999999761581421 in the json


def shard_pattern(out: Path, sizes: dict[str, int]) -> str | None:
    """Brace pattern naming the written shards (`out/{000000..000003}.tar`)."""
    return brace_pattern(str(Path(out)), list(sizes))

