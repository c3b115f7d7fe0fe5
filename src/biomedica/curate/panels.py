"""Panel type (single / multiple) of each image from its own evidence, not its cluster's.

BIOMEDICA propagated panel type from the cluster, so compound figures that fell into a
"single" cluster were mislabelled. Here each image is judged on two signals:

1. Caption panel letters: "(A)", "(a–d)", "A,B", "Panel C", "(B and C)", "A:" at a
   sentence start, ... counted as distinct letters. A figure whose graphics are separate
   files (one sample per graphic) shares one caption: when a figure has as many graphics
   as letters, each graphic is one panel.
2. Image layout: straight gutters (rows or columns entirely of the image's border colour,
   which must be near white or near black, as page layouts are) that cut the image into parts of at least `min_part` of its
   size; the grid they form gives a panel count.

Decision: multiple when the layout shows >= 2 parts, or when the caption names more
letters than the figure has graphics; otherwise single. `evidence` says which signal won.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from PIL import Image

from biomedica.archive.keys import sample_article
from biomedica.curate.subfigures.captions import caption_letters

PANELS_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("panel_type", pa.string()),  # single | multiple
        ("caption_letters", pa.int16()),
        ("graphics_in_figure", pa.int16()),
        ("layout_panels", pa.int16()),  # null when the image could not be read
        ("evidence", pa.string()),
    ]
)
LAYOUT_SIDE = 256  # images are reduced to at most this side before the gutter search

def caption_panel_letters(caption: str | None) -> list[str]:
    """Distinct panel letters a caption names, in alphabetical order (lower-cased).

    One marker grammar: `curate.subfigures.captions` (parts and in-sentence references both count).
    """
    letters = caption_letters(caption)
    # single letters that are words or units more often than panels need a neighbour
    if set(letters) in ({"i"}, {"a"}):
        return []
    return letters


@dataclass(frozen=True)
class LayoutResult:
    panels: int
    rows: int
    columns: int


def _parts_along(flat: np.ndarray, min_part: int) -> int:
    """Content stretches (runs of non-flat lines) at least `min_part` long, separated by gutters."""
    parts = 0
    run = 0
    for is_flat in flat.tolist() + [True]:
        if is_flat:
            parts += run >= min_part
            run = 0
        else:
            run += 1
    return max(1, parts)


def layout_panels(image: Image.Image, min_part: float = 0.15, tolerance: int = 12) -> LayoutResult:
    """Count panels from straight flat-colour gutters (rows x columns of the grid they form)."""
    if image.format == "JPEG":
        image.draft("L", (LAYOUT_SIDE, LAYOUT_SIDE))
    grey = image.convert("L")
    grey.thumbnail((LAYOUT_SIDE, LAYOUT_SIDE))
    pixels = np.asarray(grey, dtype=np.int16)
    height, width = pixels.shape
    if height < 16 or width < 16:
        return LayoutResult(1, 1, 1)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = int(np.median(border))
    if 25 < background < 230:
        # compound figures are laid out on white (or black); a mid-grey "gutter" is texture
        return LayoutResult(1, 1, 1)
    near_background = np.abs(pixels - background) <= tolerance
    # a gutter line is background from end to end: an axis line or a label crossing it
    # means the two sides belong to one plot (bar charts have gaps between bars, not gutters)
    flat_columns = near_background.all(axis=0)
    flat_rows = near_background.all(axis=1)
    columns = _parts_along(flat_columns, max(2, int(min_part * width)))
    rows = _parts_along(flat_rows, max(2, int(min_part * height)))
    return LayoutResult(rows * columns, rows, columns)


def panel_type(caption_letters: int, graphics_in_figure: int, layout: int | None) -> tuple[str, str]:
    """(panel type, evidence) from the two signals; see the module docstring."""
    if layout is not None and layout >= 2:
        return "multiple", f"layout shows {layout} panels"
    if caption_letters >= 2 and caption_letters > graphics_in_figure:
        return "multiple", f"caption names {caption_letters} panels for {graphics_in_figure} graphic(s)"
    if caption_letters >= 2:
        return "single", f"caption names {caption_letters} panels, one per graphic ({graphics_in_figure} graphics)"
    return "single", "no panel letters in the caption and no gutters in the image"


def panel_row(key: str, caption: str | None, graphics_in_figure: int, image_bytes: bytes | None) -> dict:
    """One PANELS_SCHEMA row for a sample."""
    letters = len(caption_panel_letters(caption))
    layout = None
    if image_bytes is not None:
        try:
            with Image.open(io.BytesIO(image_bytes)) as image:
                layout = layout_panels(image).panels
        except Exception:  # unreadable image: decide on the caption alone, say so
            layout = None
    kind, evidence = panel_type(letters, graphics_in_figure, layout)
    if image_bytes is not None and layout is None:
        evidence += " (image unreadable: caption only)"
    return {
        "key": key, "panel_type": kind, "caption_letters": letters,
        "graphics_in_figure": graphics_in_figure, "layout_panels": layout, "evidence": evidence,
    }


def graphics_per_figure(rows: list[dict]) -> dict[str, int]:
    """key -> number of samples (graphics) of the same figure (same pmcid and fig_id/label)."""
    counts: dict[tuple, int] = {}
    ident = {}
    for row in rows:
        article = sample_article(row["key"], row.get("pmcid"))
        figure = row.get("fig_id") or row.get("fig_label") or row["key"]
        ident[row["key"]] = (article, figure)
        counts[(article, figure)] = counts.get((article, figure), 0) + 1
    return {key: counts[fig] for key, fig in ident.items()}
