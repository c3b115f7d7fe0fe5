import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from biomedica.curate.panels import (
    caption_panel_letters,
    layout_panels,
    panel_row,
    panel_type,
    panel_type_from_subfigures,
)
from biomedica.curate.subfigures.gutter import GutterDetector


@pytest.mark.parametrize(
    ("caption", "letters"),
    [
        ("Imaging overview. (A) Immunohistochemistry of colonic glands. (B) Whole-slide view.", ["a", "b"]),
        ("(a–d) CT scans at four levels; (e) MRI.", ["a", "b", "c", "d", "e"]),
        ("Panels A and B show the controls. Panel C shows treated cells.", ["a", "b", "c"]),
        ("A. CT of the head. B. MRI of the head.", ["a", "b"]),
        ("Expression in (B and C) and in (D).", ["b", "c", "d"]),
        ("Kaplan–Meier curves (n = 96) of a vitamin D cohort.", []),
        ("Type I and type II (I) collagen.", []),
    ],
)
def test_caption_panel_letters(caption, letters):
    assert caption_panel_letters(caption) == letters


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _compound(rows: int, columns: int) -> Image.Image:
    """White page with rows x columns dark panels separated by 10 px gutters."""
    page = Image.new("L", (columns * 110 + 10, rows * 110 + 10), 255)
    draw = ImageDraw.Draw(page)
    for r in range(rows):
        for c in range(columns):
            x, y = 10 + c * 110, 10 + r * 110
            draw.rectangle([x, y, x + 99, y + 99], fill=40 + 30 * (r + c))
            draw.ellipse([x + 20, y + 20, x + 70, y + 80], fill=200)
    return page


def test_layout_counts_grid_panels():
    # rows and columns come from the detector's boxes grouped into rows (approximate for irregular layouts)
    assert layout_panels(_compound(2, 3)).panels == 6
    assert (layout_panels(_compound(2, 3)).rows, layout_panels(_compound(2, 3)).columns) == (2, 3)
    assert (layout_panels(_compound(1, 2)).rows, layout_panels(_compound(1, 2)).columns) == (1, 2)
    assert layout_panels(_compound(1, 1)).panels == 1


def test_bar_chart_gaps_are_not_gutters():
    chart = Image.new("L", (300, 200), 255)
    draw = ImageDraw.Draw(chart)
    for i in range(4):
        draw.rectangle([30 + i * 65, 60 + i * 20, 70 + i * 65, 179], fill=60)
    draw.line([20, 180, 290, 180], fill=0)  # the x axis crosses every gap
    assert layout_panels(chart).panels == 1


def test_grey_texture_is_not_split():
    texture = Image.new("L", (200, 200), 128)
    ImageDraw.Draw(texture).line([0, 50, 199, 60], fill=60, width=3)
    assert layout_panels(texture).panels == 1


def test_panel_type_rules():
    assert panel_type(0, 1, 4)[0] == "multiple"
    assert panel_type(3, 1, 1)[0] == "multiple"
    # a figure split into one file per panel: each graphic is a single panel
    assert panel_type(2, 2, 1)[0] == "single"
    assert panel_type(0, 1, None)[0] == "single"


def test_layout_is_the_gutter_detector():
    image = _compound(2, 2)
    assert layout_panels(image).panels == len(GutterDetector().detect(image)) == 4


def test_panel_type_from_subfigures():
    assert panel_type_from_subfigures(3, "gutter") == ("multiple", "detector gutter found 3 panels")
    assert panel_type_from_subfigures(1, "model") == ("single", "detector model found 1 panel")


def test_panel_row_reads_the_image_and_survives_garbage():
    row = panel_row("PMC1_000", "Two views.", 1, _png(_compound(1, 2)))
    assert (row["panel_type"], row["layout_panels"]) == ("multiple", 2)
    broken = panel_row("PMC1_001", "(A) x. (B) y.", 1, b"not an image")
    assert broken["layout_panels"] is None and broken["panel_type"] == "multiple"
    assert "image unreadable" in broken["evidence"]


FIGURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "images" / "pmc_package_figures"


@pytest.mark.parametrize(
    ("figure", "rows", "columns"),
    [
        ("PMC1175969/gb-2005-6-6-r49-4.jpg", 4, 2),  # eight scatter plots (a)-(h) on a white page
        ("PMC1064083/bcr936-1.jpg", 1, 1),  # one pathway diagram on a green ellipse
        ("PMC10487465/ijms-24-13282-g002.jpg", 1, 1),  # one illustration with icons around a centre
        ("PMC1175969/gb-2005-6-6-r49-1.jpg", 1, 1),  # one boxed text diagram
    ],
)
def test_layout_on_real_pmc_figures(figure, rows, columns):
    with Image.open(FIGURES / figure) as image:
        result = layout_panels(image)
    assert (result.rows, result.columns) == (rows, columns)
