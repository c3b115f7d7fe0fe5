"""Panel <-> subcaption pairing: the rows of `annotations/subfigures.parquet` for one figure.

Alignment, in this order, and never a guess:
1. glyph: every box carries a `glyph` (the label read in the image) and the caption names each
   one (case-insensitive, all distinct) -> each panel gets its glyph's label; method "<m>+glyph".
2. reading order: the caption's labels are one complete run (a, b, c, ... or 1, 2, 3, ... from
   the first, no gaps, no "inset"), as many as the boxes -> the i-th box in reading order gets
   the i-th label; method "<m>+order". Positional labels ("left", "middle", "right" or "top",
   "bottom") pair by order only when the boxes lie in one row (resp. one column).
3. otherwise every panel keeps label null and subcaption null (the full caption stays on the
   figure); method "<m>".
`label` is the label as the caption writes it ("A", "a", "1", "left"); `subcaption` is
`CaptionSplit.text_for(label)` (the lead + that panel's text). A figure with <= 1 box is single:
one row covering the whole image, label and subcaption null.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import pairwise

from PIL import Image

from biomedica.curate.subfigures.boxes import Box, reading_order, whole_image
from biomedica.curate.subfigures.captions import CaptionSplit, split_caption

_HORIZONTAL = {"left": 0, "middle": 1, "center": 1, "right": 2}
_VERTICAL = {"top": 0, "upper": 0, "middle": 1, "center": 1, "bottom": 2, "lower": 2}


def _row(key: str, panel: int, box: Box, label: str | None, subcaption: str | None, method: str) -> dict:
    return {
        "key": key, "panel": panel, "x0": int(box.x0), "y0": int(box.y0), "x1": int(box.x1), "y1": int(box.y1),
        "score": float(box.score), "label": label, "subcaption": subcaption, "method": method,
    }


def _rank(label: str) -> int | None:
    if label.isdigit():
        return int(label)
    if len(label) == 1 and label.isalpha():
        return ord(label.lower()) - ord("a") + 1
    return None


def _by_glyph(boxes: Sequence[Box], split: CaptionSplit) -> list[str] | None:
    """Caption labels for the boxes from their glyphs, or None when any box lacks a named glyph."""
    named = {label.lower(): label for label in split.labels()}
    glyphs = [(box.glyph or "").strip().strip("().").lower() for box in boxes]
    if not glyphs or any(g not in named for g in glyphs) or len(set(glyphs)) != len(glyphs):
        return None
    return [named[g] for g in glyphs]


def _complete_run(labels: Sequence[str]) -> list[str] | None:
    """The labels sorted, when they are one complete run from the first (a, b, c... or 1, 2, 3...), else None."""
    ranks = [_rank(label) for label in labels]
    if len(labels) < 2 or None in ranks:
        return None
    if sorted(ranks) != list(range(1, len(labels) + 1)):
        return None  # a gap or a start after "a": some panels have no text of their own
    if len({label.isdigit() for label in labels}) != 1:
        return None
    return [labels[i] for i in sorted(range(len(labels)), key=lambda i: ranks[i])]


def expected_panels(caption: str | CaptionSplit | None) -> int | None:
    """How many panels the caption describes, when it names one complete run of labels (A-D: 4); else None.

    The count hint a detector may use (`PanelDetector.detect(image, expected_panels=...)`): a
    caption whose labels have gaps, mix styles or name positions gives no hint.
    """
    split = caption if isinstance(caption, CaptionSplit) else split_caption(caption)
    run = _complete_run(split.labels())
    return len(run) if run else None


def _by_order(boxes: Sequence[Box], split: CaptionSplit) -> list[str] | None:
    """Caption labels in panel order when they are one complete run as long as the boxes, else None."""
    labels = split.labels()
    if len(labels) != len(boxes) or len(labels) < 2:
        return None
    if all(_rank(label) is not None for label in labels):
        return _complete_run(labels)
    for axis in (_HORIZONTAL, _VERTICAL):
        if all(label in axis for label in labels) and len({axis[label] for label in labels}) == len(labels):
            ordered = sorted(labels, key=lambda label: axis[label])
            pairs = list(pairwise(boxes))
            if axis is _HORIZONTAL and all(b.x0 >= a.x1 - 0.1 * a.width and _overlap_y(a, b) for a, b in pairs):
                return ordered
            if axis is _VERTICAL and all(b.y0 >= a.y1 - 0.1 * a.height and _overlap_x(a, b) for a, b in pairs):
                return ordered
    return None


def _overlap_y(a: Box, b: Box) -> bool:
    return min(a.y1, b.y1) - max(a.y0, b.y0) > 0


def _overlap_x(a: Box, b: Box) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 0


def panel_rows(key: str, width: int, height: int, boxes: list[Box], caption: str | CaptionSplit | None,
               method: str) -> list[dict]:
    """SUBFIGURES_SCHEMA rows for one figure: panels in reading order, labelled only when aligned.

    `caption` may be given already split (`split_caption`), as the step does for the count hint.
    """
    if len(boxes) <= 1:  # single: one row covering the image (a lone detected box keeps its score)
        return [_row(key, 0, whole_image(width, height, boxes[0].score if boxes else 1.0), None, None, method)]
    ordered = reading_order([box.clipped(width, height) for box in boxes])
    split = caption if isinstance(caption, CaptionSplit) else split_caption(caption)
    labels, how = _by_glyph(ordered, split), "+glyph"
    if labels is None:
        labels, how = _by_order(ordered, split), "+order"
    if labels is None:
        return [_row(key, i, box, None, None, method) for i, box in enumerate(ordered)]
    return [_row(key, i, box, label, split.text_for(label), method + how)
            for i, (box, label) in enumerate(zip(ordered, labels, strict=True))]


def read_glyphs(image: Image.Image, boxes: list[Box]) -> list[Box] | None:
    """Boxes with `glyph` read by OCR in each panel's corner, or None when no OCR library is installed.

    Optional: needs `rapidocr_onnxruntime` (install the ocr extra: pip install rapidocr-onnxruntime);
    without it alignment falls back to reading order, and this says so once.
    """
    try:
        from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-not-found]
    except ImportError:  # warnings shows it once per process
        warnings.warn("subfigures: no OCR library (install the ocr extra: pip install rapidocr-onnxruntime); "
                      "panels are paired by reading order", stacklevel=2)
        return None
    import re

    import numpy as np

    engine = RapidOCR()
    out = []
    for box in boxes:
        # panel letters sit in a corner: read the top-left fifth of the panel
        corner = image.crop((box.x0, box.y0, box.x0 + max(8, box.width // 5), box.y0 + max(8, box.height // 5)))
        result, _ = engine(np.asarray(corner.convert("RGB")))
        glyph = None
        for _, text, _score in result or []:
            match = re.fullmatch(r"\(?([A-Za-z]|[1-9])\)?\.?", text.strip())
            if match:
                glyph = match.group(1)
                break
        out.append(Box(box.x0, box.y0, box.x1, box.y1, box.score, glyph))
    return out
