"""OCR of panel letters (the optional ocr extra): read_glyphs / letter_anchors on drawn and real figures.

Skipped without rapidocr-onnxruntime (pip install 'biomedica[ocr]'); test_pairing checks the message then.
"""

import json
import random
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from biomedica.curate.subfigures.boxes import Box
from biomedica.curate.subfigures.pairing import letter_anchors, panel_rows, read_glyphs

pytest.importorskip("rapidocr_onnxruntime")

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / ".." / "shared" / "fixtures"
LABELS = ROOT / "tests" / "data" / "subfigures" / "real_panels.json"


def _figure(letters: dict[tuple[int, int], str | None], size: int = 240, gutter: int = 30
            ) -> tuple[Image.Image, dict[tuple[int, int], Box]]:
    """A grid figure: each (row, col) panel a framed scatter plot, its letter in big type at its top-left."""
    rows, cols = max(r for r, _ in letters) + 1, max(c for _, c in letters) + 1
    image = Image.new("RGB", (cols * size + (cols + 1) * gutter, rows * size + (rows + 1) * gutter), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    rng = random.Random(7)
    boxes = {}
    for (r, c), letter in letters.items():
        x0, y0 = gutter + c * (size + gutter), gutter + r * (size + gutter)
        boxes[r, c] = Box(x0, y0, x0 + size, y0 + size)
        draw.rectangle((x0 + 50, y0 + 50, x0 + size - 10, y0 + size - 10), outline="black", width=2)
        for _ in range(25):  # the plot's points
            px, py = rng.randrange(x0 + 60, x0 + size - 20), rng.randrange(y0 + 60, y0 + size - 20)
            draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=(200, 60, 40))
        if letter:
            draw.text((x0 + 4, y0 + 2), letter, fill="black", font=font, stroke_width=1, stroke_fill="black")
    return image, boxes


def test_read_glyphs_reads_each_panels_letter():
    image, boxes = _figure({(0, 0): "A", (0, 1): "B", (1, 0): "C", (1, 1): "D"})
    out = read_glyphs(image, list(boxes.values()))
    assert [box.glyph for box in out] == ["A", "B", "C", "D"]
    assert [(b.x0, b.y0, b.x1, b.y1) for b in out] == [(b.x0, b.y0, b.x1, b.y1) for b in boxes.values()]


def test_parenthesised_lower_case_letters_and_a_panel_without_one():
    image, boxes = _figure({(0, 0): "(a)", (0, 1): "(b)", (0, 2): None})
    assert [box.glyph for box in read_glyphs(image, list(boxes.values()))] == ["a", "b", None]


def test_glyphs_pair_panels_that_reading_order_would_get_wrong():
    # letters run down the columns (A, B left; C, D right): reading order (rows) would say A, C, B, D wrong
    image, boxes = _figure({(0, 0): "A", (1, 0): "B", (0, 1): "C", (1, 1): "D"})
    caption = "Four views. (A) Wild type. (B) Mutant. (C) Rescue. (D) Control."
    glyphed = read_glyphs(image, list(boxes.values()))
    rows = panel_rows("PMC1_000", image.width, image.height, glyphed, caption, "gutter")
    by_corner = {(row["x0"], row["y0"]): row["label"] for row in rows}
    assert by_corner == {(b.x0, b.y0): label for (b, label) in zip(boxes.values(), "ABCD", strict=True)}
    assert {row["method"] for row in rows} == {"gutter+glyph"}
    assert rows[1]["subcaption"] == "Four views. Rescue."  # panel 1 in reading order is the top-right one, C


def test_letter_anchors_give_each_letters_position():
    image, boxes = _figure({(0, 0): "A", (0, 1): "B"})
    anchors = letter_anchors(image)
    found = {letter: (x, y) for letter, x, y in anchors}
    assert set(found) >= {"A", "B"}
    for letter, box in zip("AB", boxes.values(), strict=True):
        x, y = found[letter]
        assert abs(x - box.x0) <= 15 and abs(y - box.y0) <= 15


def test_a_real_figure_with_printed_letters():
    """gb-2005-6-6-r49-4 (Genome Biology): eight plots lettered (a)-(h), the hand-labelled boxes."""
    figure = next(f for f in json.loads(LABELS.read_text())["figures"] if f["image"].endswith("gb-2005-6-6-r49-4.jpg"))
    boxes = [Box(*panel["box"]) for panel in figure["panels"]]
    with Image.open(FIXTURES / figure["image"]) as image:
        out = read_glyphs(image, boxes)
    assert [box.glyph for box in out] == [panel["label"].strip("()") for panel in figure["panels"]]
