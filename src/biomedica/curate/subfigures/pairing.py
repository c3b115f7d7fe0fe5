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

import functools
import re
import warnings
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
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


# OCR of panel letters (optional: the ocr extra). Measured on the 9 hand-labelled real compound
# figures with printed letters (tests/data/subfigures/real_panels.json): 54 of 62 letters found;
# the misses are the text detector skipping a lone letter (DB detectors are trained on text lines).
_GLYPH = re.compile(r"\(?([A-Za-z]|[1-9])(')?\)?\.?")
_OCR_SIDE = 1280  # larger figures are shrunk first: letters stay legible, detection time stays bounded
_OCR_MESSAGE = ("subfigures: no OCR library (install the ocr extra: pip install 'biomedica[ocr]'); "
                "panels are paired by reading order")


@functools.cache
def _ocr_engine():
    """One RapidOCR engine per process (loading its 3 ONNX models takes ~0.3 s), or None when not installed."""
    try:
        from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-not-found]
    except ImportError:
        return None
    # box_thresh 0.2 (default 0.5): lone bold letters score low as "text lines"; one thread: runs scale by process
    return RapidOCR(det_box_thresh=0.2, intra_op_num_threads=1, inter_op_num_threads=1, print_verbose=False)


def _no_ocr() -> None:
    warnings.warn(_OCR_MESSAGE, stacklevel=3)  # warnings shows it once per calling line


def _corner(box: Box, margin: float) -> tuple[float, float, float, float]:
    """Where a panel's letter sits: its top-left corner, reaching `margin` into the gutter above/left of it."""
    return (box.x0 - margin, box.y0 - margin,
            box.x0 + max(0.3 * box.width, 2 * margin), box.y0 + max(0.3 * box.height, 2 * margin))


def letter_anchors(image: Image.Image, near: Sequence[Box] | None = None) -> list[tuple[str, int, int]] | None:
    """Panel-letter-like text read in the figure: (letter, x, y) with x, y the letter's top-left pixel.

    A letter is one text box reading "A", "a", "(a)", "B'" or "1"-"9" (tick labels are read too: the
    caller decides which are panel letters). OCR runs once on the whole figure: text detection finds
    glyph-sized boxes, recognition reads only those (in the corner regions of `near` when given,
    which is most of the saving). None when no OCR library is installed (said once).
    """
    found = ocr_letters(image, near)
    return None if found is None else [(letter, x, y) for letter, x, y, _ in found]


def ocr_letters(image: Image.Image, near: Sequence[Box] | None = None) -> list[tuple[str, int, int, int]] | None:
    """`letter_anchors` with each glyph's height: (letter, x, y, height) in image pixels, or None without OCR.

    The one OCR pass of a figure in `curate subfigures`: the gutter detector groups its pieces by
    these letters (`GutterDetector.detect(..., letters=...)`) and `assign_glyphs` pairs them with the
    final boxes, without reading the image again.
    """
    engine = _ocr_engine()
    if engine is None:
        _no_ocr()
        return None
    return _read_letters(engine, image, near)


def _read_letters(engine, image: Image.Image, near: Sequence[Box] | None) -> list[tuple[str, int, int, int]]:
    """(letter, x, y, height) in full-image pixels of every glyph-sized text box that reads as a letter."""
    rgb = image.convert("RGB")
    scale = min(1.0, _OCR_SIDE / max(rgb.size))
    if scale < 1.0:
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.Resampling.BILINEAR)
    pixels = np.asarray(rgb)
    quads, _ = engine(pixels, use_rec=False, use_cls=False)
    margin = 0.03 * max(image.size)
    corners = [_corner(box, margin) for box in near] if near is not None else None
    found = []
    for quad in quads or []:
        points = np.asarray(quad, dtype=float)
        (x0, y0), (x1, y1) = points.min(0), points.max(0)
        w, h = x1 - x0, y1 - y0
        if h < 6 or w > 2.5 * h:  # one glyph, or "(a)"; tiny specks and words are not letters
            continue
        if h > 3 * w and h > 0.05 * max(pixels.shape):  # a rotated axis title read as "1" or "I"
            continue
        cx, cy = (x0 + x1) / 2 / scale, (y0 + y1) / 2 / scale
        if corners is not None and not any(a <= cx <= c and b <= cy <= d for a, b, c, d in corners):
            continue
        pad = 0.25 * h  # the recogniser reads a glyph cropped flush to its ink poorly
        crop = pixels[max(0, int(y0 - pad)):int(y1 + pad) + 1, max(0, int(x0 - pad)):int(x1 + pad) + 1]
        read, _ = engine(crop, use_det=False, use_cls=False)
        if not read:
            continue
        text, confidence = read[0][0].strip(), float(read[0][1])
        match = _GLYPH.fullmatch(text)
        if match and confidence >= 0.5:
            found.append((match.group(1) + (match.group(2) or ""), round(x0 / scale), round(y0 / scale),
                          round(h / scale)))
    return found


def read_glyphs(image: Image.Image, boxes: list[Box]) -> list[Box] | None:
    """The boxes with `glyph` = the panel letter OCR read in each one's top-left corner (None where none).

    OCR runs once per figure (`ocr_letters`, recognition only near the boxes' corners), then
    `assign_glyphs`. None when no OCR library is installed (install the ocr extra:
    pip install 'biomedica[ocr]'), said once.
    """
    found = ocr_letters(image, boxes)
    return None if found is None else assign_glyphs(boxes, found, image.size)


def assign_glyphs(boxes: list[Box], letters: Sequence[tuple[str, int, int, int]], size: tuple[int, int]) -> list[Box]:
    """The boxes with `glyph` set from letters already read (`ocr_letters`) in a `size` image.

    Each letter goes to the box whose corner region holds its centre, nearest corner first, one
    letter per box. Letters of the other kind than most (a tick label "1" among letters A-F) are
    dropped: a wrong glyph would pair the wrong subcaption, a missing one only falls back to
    reading order.
    """
    margin = 0.03 * max(size)
    pairs = []
    for i, (_, x, y, h) in enumerate(letters):
        for j, box in enumerate(boxes):
            a, b, c, d = _corner(box, margin)
            if a <= x + h / 2 <= c and b <= y + h / 2 <= d:
                pairs.append(((x - box.x0) ** 2 + (y - box.y0) ** 2, i, j))
    glyphs: list[str | None] = [None] * len(boxes)
    used: set[int] = set()
    for _, i, j in sorted(pairs):
        if i not in used and glyphs[j] is None:
            used.add(i)
            glyphs[j] = letters[i][0]
    read = [glyph for glyph in glyphs if glyph is not None]
    digits = 2 * sum(glyph[0].isdigit() for glyph in read) > len(read)  # the figure's kind of label
    return [Box(box.x0, box.y0, box.x1, box.y1, box.score, glyph if glyph and glyph[0].isdigit() == digits else None)
            for box, glyph in zip(boxes, glyphs, strict=True)]
