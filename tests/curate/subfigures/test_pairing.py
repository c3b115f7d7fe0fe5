"""panel_rows: reading order, alignment by glyph or by order, never a guessed pairing."""

import pyarrow as pa
import pytest
from PIL import Image

from biomedica.curate.subfigures.boxes import SUBFIGURES_SCHEMA, Box
from biomedica.curate.subfigures.pairing import panel_rows, read_glyphs

CAPTION = ("Escin induced the apoptosis of osteosarcoma cells. (a) Hoechst 33258 staining. Scale bar, 100 μm. "
           "(b) Western blot of apoptosis-related proteins. (c) Flow cytometry.")
# a 2 x 2 grid given out of order; c spans the bottom row
GRID = [Box(0, 110, 200, 200, 0.7), Box(110, 0, 200, 100, 0.8), Box(0, 0, 100, 100, 0.9)]


def test_rows_match_the_schema():
    rows = panel_rows("PMC1_000", 200, 200, GRID, CAPTION, "gutter")
    table = pa.Table.from_pylist(rows, schema=SUBFIGURES_SCHEMA)
    assert table.num_rows == 3 and table.schema.equals(SUBFIGURES_SCHEMA)


def test_reading_order_alignment():
    rows = panel_rows("PMC1_000", 200, 200, GRID, CAPTION, "gutter")
    assert [r["panel"] for r in rows] == [0, 1, 2]
    assert [(r["x0"], r["y0"]) for r in rows] == [(0, 0), (110, 0), (0, 110)]
    assert [r["label"] for r in rows] == ["a", "b", "c"]
    assert {r["method"] for r in rows} == {"gutter+order"}
    assert rows[1]["subcaption"] == ("Escin induced the apoptosis of osteosarcoma cells. "
                                     "Western blot of apoptosis-related proteins.")
    assert rows[0]["score"] == pytest.approx(0.9)


def test_count_mismatch_is_unaligned():
    rows = panel_rows("k", 200, 200, GRID[:2], CAPTION, "model")
    assert [(r["label"], r["subcaption"], r["method"]) for r in rows] == [(None, None, "model")] * 2


@pytest.mark.parametrize(
    "caption",
    [
        # labels with a gap or starting after "a": their panels' own texts are missing
        "Title. (a) One. (b) Two. (d) Four.",
        "Title with sizes (a) and (b) of cells. (c) One. (d) Two. (e) Three.",
        # references only, no parts
        "TEM images (a), size (b), and zeta potential (c) of exosomes.",
        None,
        # an inset cannot be placed by order
        "Title. (a) One. (b) Two. Inset: zoom.",
    ],
)
def test_no_guessed_pairing(caption):
    rows = panel_rows("k", 200, 200, GRID, caption, "gutter")
    assert all(r["label"] is None and r["subcaption"] is None and r["method"] == "gutter" for r in rows)


def test_glyphs_win_over_order():
    boxes = [Box(0, 0, 100, 100, glyph="C"), Box(110, 0, 200, 100, glyph="A"), Box(0, 110, 200, 200, glyph="b")]
    rows = panel_rows("k", 200, 200, boxes, CAPTION, "model")
    assert [r["label"] for r in rows] == ["c", "a", "b"]
    assert {r["method"] for r in rows} == {"model+glyph"}
    assert rows[0]["subcaption"].endswith("Flow cytometry.")
    # one glyph the caption does not name: fall back to order
    boxes[0] = Box(0, 0, 100, 100, glyph="Z")
    assert {r["method"] for r in panel_rows("k", 200, 200, boxes, CAPTION, "model")} == {"model+order"}


def test_single_figure_is_one_whole_image_row():
    for boxes in ([], [Box(10, 10, 50, 50, 0.6)]):
        rows = panel_rows("k", 300, 200, boxes, CAPTION, "gutter")
        assert len(rows) == 1
        row = rows[0]
        assert (row["panel"], row["x0"], row["y0"], row["x1"], row["y1"]) == (0, 0, 0, 300, 200)
        assert row["label"] is None and row["subcaption"] is None and row["method"] == "gutter"
    assert panel_rows("k", 300, 200, [Box(10, 10, 50, 50, 0.6)], None, "model")[0]["score"] == pytest.approx(0.6)


def test_positional_labels_pair_only_along_their_axis():
    caption = "Dynamics. Left: the concentration of Dorsal. Right: BMP is depleted."
    side_by_side = [Box(110, 0, 200, 100), Box(0, 0, 100, 100)]
    rows = panel_rows("k", 200, 100, side_by_side, caption, "gutter")
    assert [r["label"] for r in rows] == ["left", "right"]
    assert rows[1]["subcaption"] == "Dynamics. BMP is depleted."
    stacked = [Box(0, 0, 100, 100), Box(0, 110, 100, 200)]
    assert [r["label"] for r in panel_rows("k", 100, 200, stacked, caption, "gutter")] == [None, None]


def test_boxes_are_clipped_to_the_image():
    rows = panel_rows("k", 150, 100, [Box(-5, 0, 80, 120), Box(80, 0, 400, 100)], "Two. (A) x. (B) y.", "gutter")
    assert [(r["x0"], r["y0"], r["x1"], r["y1"]) for r in rows] == [(0, 0, 80, 100), (80, 0, 150, 100)]
    assert [r["label"] for r in rows] == ["A", "B"]


def test_read_glyphs_without_ocr_says_so():
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError:
        with pytest.warns(UserWarning, match="install the ocr extra"):
            assert read_glyphs(Image.new("RGB", (50, 50), "white"), [Box(0, 0, 50, 50)]) is None
    else:
        pytest.skip("an OCR library is installed")
