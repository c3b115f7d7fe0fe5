"""Panel boxes, their reading order, the detector interface and the subfigures table contract.

Every detector (gutter, model) returns `Box`es in the pixels of the stored image (x1/y1
exclusive, as DESIGN.md fixes for `annotations/subfigures.parquet`); everything after it
(reading order, caption pairing, the table, crops in `select --unit subfigure`) works on
these, so detectors stay interchangeable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import pyarrow as pa
from PIL import Image

SUBFIGURES_TABLE = "subfigures"
# The contract (DESIGN.md): one row per panel; a figure judged single has one row covering the image.
SUBFIGURES_SCHEMA = pa.schema(
    [
        ("key", pa.string()),  # the figure sample
        ("panel", pa.int16()),  # 0-based, reading order
        ("x0", pa.int32()),
        ("y0", pa.int32()),
        ("x1", pa.int32()),  # exclusive
        ("y1", pa.int32()),  # exclusive
        ("score", pa.float32()),
        ("label", pa.string()),  # the panel's letter/number as in the caption, or null
        ("subcaption", pa.string()),  # its caption text, or null (never a guessed pairing)
        ("method", pa.string()),  # e.g. "gutter", "model", "gutter+order", see pairing
    ]
)


@dataclass(frozen=True)
class Box:
    """A panel: integer pixel box of the stored image (x1, y1 exclusive) with a detector score in [0, 1]."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float = 1.0
    glyph: str | None = None  # the panel label read in the image (OCR or a model head), when a detector reads one

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def area(self) -> int:
        return self.width * self.height

    def iou(self, other: Box) -> float:
        ix = max(0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union else 0.0

    def clipped(self, width: int, height: int) -> Box:
        """This box inside a `width` x `height` image (empty boxes keep x1 >= x0)."""
        x0 = min(max(0, self.x0), width)
        y0 = min(max(0, self.y0), height)
        return replace(self, x0=x0, y0=y0, x1=min(max(x0, self.x1), width), y1=min(max(y0, self.y1), height))

    def scaled(self, sx: float, sy: float) -> Box:
        """This box in an image resized by (sx, sy) (a detector that ran on a reduced copy maps back with 1/s)."""
        return replace(self, x0=round(self.x0 * sx), y0=round(self.y0 * sy),
                       x1=round(self.x1 * sx), y1=round(self.y1 * sy))

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)


def whole_image(width: int, height: int, score: float = 1.0) -> Box:
    """The one box of a figure judged single."""
    return Box(0, 0, int(width), int(height), score)


def reading_order(boxes: Sequence[Box]) -> list[Box]:
    """Boxes in reading order: rows top to bottom (`reading_rows`), left to right within a row."""
    return [box for row in reading_rows(boxes) for box in row]


def reading_rows(boxes: Sequence[Box]) -> list[list[Box]]:
    """Boxes grouped into rows, top to bottom, each row left to right.

    A row is the boxes whose vertical extents overlap the row's topmost-left box by at least
    half of the shorter one; so panels of slightly different heights in one row stay
    together, and a tall panel spanning two rows on the left comes before the right column.
    """
    remaining = sorted(boxes, key=lambda b: (b.y0, b.x0))
    rows: list[list[Box]] = []
    while remaining:
        seed = remaining[0]
        row = [b for b in remaining if _same_row(seed, b)]
        rows.append(sorted(row, key=lambda b: (b.x0, b.y0)))
        remaining = [b for b in remaining if b not in row]
    return rows


def _same_row(a: Box, b: Box) -> bool:
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    return overlap >= 0.5 * max(1, min(a.height, b.height))


class PanelDetector(Protocol):
    """What `curate subfigures` runs per image: boxes in the image's own pixels, any order.

    An empty list or a single box means the figure is single; the caller then writes one
    row covering the whole image. `expected_panels` is the caption's count hint
    (`pairing.expected_panels`: the caption names A-D -> 4), or None: a detector may use it to
    choose between readings of the image (the gutter detector's coarser or finer cuts, the
    model's boxes near its threshold), never to invent panels the image does not show.

    A detector may also take `letters=[(letter, x, y[, height]), ...]`: panel-letter-like glyphs
    OCR read in the image (`pairing.ocr_letters`, image pixels, top-left corner), a second hint
    (the gutter detector groups the pieces of one lettered panel). It is optional: a detector that
    takes them says so with `uses_letters = True` (`uses_letters`), the step passes letters only to
    such a one (and does not run another detector twice for nothing), and `detect(image)` always works.
    """

    name: str  # the `method` written to the table, e.g. "gutter", "model"

    def detect(self, image: Image.Image, expected_panels: int | None = None) -> list[Box]: ...


def uses_letters(detector: PanelDetector) -> bool:
    """Whether `detector.detect` takes OCR `letters` (it declares `uses_letters = True`, as the gutter detector does)."""
    return bool(getattr(detector, "uses_letters", False))
