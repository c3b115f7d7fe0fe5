"""Panel type (single / multiple) of each image from its own evidence, not its cluster's.

BIOMEDICA propagated panel type from the cluster, so compound figures that fell into a
"single" cluster were mislabelled. Here each image is judged on two signals:

1. Caption panel letters: "(A)", "(a–d)", "A,B", "Panel C", "(B and C)", "A:" at a
   sentence start, ... counted as distinct letters. A figure whose graphics are separate
   files (one sample per graphic) shares one caption: when a figure has as many graphics
   as letters, each graphic is one panel.
2. Image layout: the panels the gutter detector (`curate.subfigures.gutter`: recursive
   XY-cut on page-colour gutters, slivers of text joined to their panels) finds; the one
   way panels are counted, so `layout_panels` and `curate subfigures` agree.

Decision: multiple when the layout shows >= 2 parts, or when the caption names more
letters than the figure has graphics; otherwise single. `evidence` says which signal won.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pyarrow as pa
from PIL import Image

from biomedica.archive.keys import sample_article
from biomedica.curate.subfigures.boxes import reading_rows
from biomedica.curate.subfigures.captions import caption_letters
from biomedica.curate.subfigures.gutter import GutterDetector

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
_DETECTOR = GutterDetector()

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
    """Panels found in the image; rows and columns are approximate (rows of the reading order, widest row)."""

    panels: int
    rows: int
    columns: int


def layout_panels(image: Image.Image, detector: GutterDetector | None = None) -> LayoutResult:
    """Count panels with the gutter detector (a figure it judges single is one panel)."""
    boxes = (detector or _DETECTOR).detect(image)
    if len(boxes) < 2:
        return LayoutResult(1, 1, 1)
    rows = reading_rows(boxes)
    return LayoutResult(len(boxes), len(rows), max(len(row) for row in rows))


def panel_type(caption_letters: int, graphics_in_figure: int, layout: int | None) -> tuple[str, str]:
    """(panel type, evidence) from the two signals; see the module docstring."""
    if layout is not None and layout >= 2:
        return "multiple", f"layout shows {layout} panels"
    if caption_letters >= 2 and caption_letters > graphics_in_figure:
        return "multiple", f"caption names {caption_letters} panels for {graphics_in_figure} graphic(s)"
    if caption_letters >= 2:
        return "single", f"caption names {caption_letters} panels, one per graphic ({graphics_in_figure} graphics)"
    return "single", "no panel letters in the caption and no gutters in the image"


def panel_type_from_subfigures(panels: int, method: str) -> tuple[str, str]:
    """(panel type, evidence) of a figure from its rows in subfigures.parquet (>= 2 rows: multiple)."""
    return ("multiple" if panels >= 2 else "single"), f"detector {method} found {panels} panel{'s' * (panels != 1)}"


def panel_row_from_subfigures(row: dict, panels: int, detector: str) -> dict:
    """A PANELS_SCHEMA row whose panel type the detector's count decides; the caption fields are kept."""
    kind, evidence = panel_type_from_subfigures(panels, detector)
    return {**row, "panel_type": kind, "layout_panels": panels, "evidence": evidence}


def panel_row(key: str, caption: str | None, graphics_in_figure: int, image_bytes: bytes | None) -> dict:
    """One PANELS_SCHEMA row for a sample."""
    letters = len(caption_panel_letters(caption))
    layout = None
    if image_bytes is not None:
        try:
            with Image.open(io.BytesIO(image_bytes)) as image:
                layout = layout_panels(image).panels
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):  # unreadable: caption alone, say so
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
