"""Panel letters as the gutter detector's second hint (`detect(image, letters=...)`) and `curate subfigures --ocr`.

Drawn figures: lettered panels made of 2-3 framed plots each, every gap the same width, so no
gutter width (and no caption count) tells a panel's sub-plots from its neighbours; the letters do.
"""

from __future__ import annotations

import random

import pytest
from PIL import Image, ImageDraw, ImageFont

from biomedica.curate.subfigures.boxes import Box
from biomedica.curate.subfigures.gutter import GutterDetector, panel_letter_run

CELL, GAP = 200, 30


def _figure(rows: list[list[tuple[str | None, int]]]) -> tuple[Image.Image, list[Box], list[tuple[str, int, int, int]]]:
    """Rows of panels (letter, sub-plots): each sub-plot a framed scatter plot in a CELL square, GAP between all cells.

    Returns the image, the true panel boxes (a panel = its sub-plots' cells) and the letters as OCR gives them.
    """
    cols = max(sum(n for _, n in row) for row in rows)
    image = Image.new("RGB", (cols * CELL + (cols + 1) * GAP, len(rows) * CELL + (len(rows) + 1) * GAP), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    rng = random.Random(3)
    boxes, letters = [], []
    for r, row in enumerate(rows):
        y0, c = GAP + r * (CELL + GAP), 0
        for letter, subplots in row:
            x0 = GAP + c * (CELL + GAP)
            for s in range(subplots):
                cx = x0 + s * (CELL + GAP)
                draw.rectangle((cx + 40, y0 + 40, cx + CELL - 6, y0 + CELL - 6), outline="black", width=2)
                for _ in range(20):
                    px, py = rng.randrange(cx + 50, cx + CELL - 16), rng.randrange(y0 + 50, y0 + CELL - 16)
                    draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=(40, 90, 200))
            if letter:
                draw.text((x0 + 2, y0), letter, fill="black", font=font, stroke_width=1, stroke_fill="black")
                letters.append((letter, x0 + 2, y0 + 8, 28))
            boxes.append(Box(x0, y0, x0 + subplots * CELL + (subplots - 1) * GAP, y0 + CELL))
            c += subplots
    return image, boxes, letters


def _matches(found: list[Box], truth: list[Box], iou: float = 0.8) -> bool:
    return len(found) == len(truth) and all(max(t.iou(f) for f in found) >= iou for t in truth)


NESTED = [[("A", 2), ("B", 2)], [("C", 3), ("D", 1)]]  # A and B: two plots each, C: three


def test_letters_keep_a_lettered_panels_sub_plots_together():
    image, truth, letters = _figure(NESTED)
    detector = GutterDetector()
    assert len(detector.detect(image.copy())) == 8  # the image alone: every plot (all gaps alike)
    assert len(detector.detect(image.copy(), expected_panels=4)) != 4  # no gutter width gives the caption's 4
    assert _matches(detector.detect(image.copy(), letters=letters), truth)
    assert _matches(detector.detect(image.copy(), expected_panels=4, letters=letters), truth)


def test_a_split_last_panel_needs_the_caption_count():
    # D (the last letter) holds two plots: without the caption's count its second plot could be an E whose
    # letter OCR missed, so the letters alone change nothing; with the count (4) they group it
    image, truth, letters = _figure([[("A", 2), ("B", 2)], [("C", 2), ("D", 2)]])
    detector = GutterDetector()
    assert detector.detect(image.copy(), letters=letters) == detector.detect(image.copy())
    assert _matches(detector.detect(image.copy(), expected_panels=4, letters=letters), truth)


def test_a_wrong_or_missing_letter_never_breaks_a_correct_split():
    image, truth, letters = _figure([[("A", 1), ("B", 1)], [("C", 1), ("D", 1)]])
    detector = GutterDetector()
    assert _matches(detector.detect(image.copy()), truth)
    wrong = [(("E" if m[0] == "B" else m[0]), *m[1:]) for m in letters]  # B misread: A, C, D, E is no run
    missing_last = [m for m in letters if m[0] != "D"]  # A-C read, D missed: D's panel must not join C or B
    missing_mid = [m for m in letters if m[0] != "B"]
    stray = [*letters, ("A", 300, 120, 28)]  # a second "A" inside a plot (a structure's atom label)
    lower = [(m[0].lower(), *m[1:]) for m in letters[:2]]  # another case: a, b only - a run of 2 with no room
    for variant in (wrong, missing_last, missing_mid, stray, lower, [], None):
        assert _matches(detector.detect(image.copy(), letters=variant), truth), variant
        assert _matches(detector.detect(image.copy(), expected_panels=4, letters=variant), truth), variant


def test_a_missing_letter_falls_back_to_the_image_alone():
    image, _truth, letters = _figure(NESTED)
    detector = GutterDetector()
    alone = detector.detect(image.copy())
    for drop in "BD":  # B missed: no complete run; D (the last) missed: C's and D's plots might be C's, or not
        assert detector.detect(image.copy(), letters=[m for m in letters if m[0] != drop]) == alone
    # the caption's count says how many letters there are: A-C read but 4 named is no run either
    assert len(detector.detect(image.copy(), expected_panels=4, letters=[m for m in letters if m[0] != "D"])) != 3


def test_letters_never_invent_panels():
    image = Image.new("RGB", (500, 400), "white")
    ImageDraw.Draw(image).rectangle((40, 40, 460, 360), fill=(90, 120, 160))  # one photo
    assert GutterDetector().detect(image, letters=[("A", 5, 5, 20), ("B", 250, 5, 20)]) == []


def test_panel_letter_run():
    marks = [("A", 0, 0), ("B", 0, 0), ("C", 0, 0), ("H", 0, 0), ("1", 0, 0), ("b", 0, 0)]
    assert sorted(m[0] for m in panel_letter_run(marks)) == ["A", "B", "C"]  # H is a stray far past C
    assert panel_letter_run(marks, expected=4) is None  # the caption names 4: a letter was missed
    assert panel_letter_run([("A", 0, 0), ("B", 0, 0), ("D", 0, 0)]) is None  # D right after a gap: C missed
    assert panel_letter_run([("A", 0, 0)]) is None
    assert panel_letter_run([("B'", 0, 0), ("A", 0, 0), ("B", 0, 0)]) is not None


def test_letters_read_by_ocr_fix_the_split():
    pytest.importorskip("rapidocr_onnxruntime")
    from biomedica.curate.subfigures.pairing import assign_glyphs, ocr_letters

    image, truth, _ = _figure(NESTED)
    letters = ocr_letters(image)
    boxes = GutterDetector().detect(image.copy(), letters=letters)
    assert _matches(boxes, truth)
    glyphs = {(b.x0 // 10, b.y0 // 10): b.glyph for b in assign_glyphs(boxes, letters, image.size)}
    assert sorted(glyphs.values()) == ["A", "B", "C", "D"]


# -- curate subfigures --ocr ---------------------------------------------------------------------


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Columns:
    """A detector without `letters` (as the model): two halves, left and right."""

    name = "columns"

    def detect(self, image, expected_panels=None):
        width, height = image.size
        return [Box(0, 0, width // 2, height), Box(width // 2, 0, width, height)]


def test_the_step_reads_letters_once_and_gives_them_to_the_detector():
    pytest.importorskip("rapidocr_onnxruntime")
    from biomedica.curate.subfigures.run import _detect

    image, truth, _ = _figure(NESTED)
    data = _png(image)
    boxes, width, height, read = _detect(GutterDetector(), data, ocr=True)
    assert read and (width, height) == image.size and _matches(boxes, truth)
    assert sorted(box.glyph for box in boxes) == ["A", "B", "C", "D"]
    boxes, _, _, read = _detect(GutterDetector(), data, ocr=False)
    assert not read and len(boxes) == 8
    boxes, _, _, read = _detect(Columns(), data, ocr=True)  # no letters parameter: glyphs only, no TypeError
    assert read and [box.glyph for box in boxes] == ["A", "B"]


def test_a_single_looking_figure_pays_no_ocr():
    from biomedica.curate.subfigures.run import _detect

    image = Image.new("RGB", (400, 300), "white")
    ImageDraw.Draw(image).rectangle((20, 20, 380, 280), fill=(90, 120, 160))
    assert _detect(GutterDetector(), _png(image), ocr=True) == ([], 400, 300, False)
    if _ocr_installed():  # a caption naming two panels makes it a candidate
        assert _detect(GutterDetector(), _png(image), ocr=True, named=2)[3]


def _ocr_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


@pytest.fixture
def no_ocr(monkeypatch):
    """The ocr extra as if not installed: importing rapidocr_onnxruntime fails, find_spec finds nothing."""
    import sys

    from biomedica.curate.subfigures import pairing

    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    pairing._ocr_engine.cache_clear()
    yield
    pairing._ocr_engine.cache_clear()


def _app():
    import typer

    from biomedica.cli.curate import curate_app

    app = typer.Typer()
    app.add_typer(curate_app)
    return app


def _meta(folder) -> dict:
    import json

    return json.loads((folder / "subfigures" / "meta.json").read_text())


def test_ocr_on_without_the_extra_is_one_line_naming_it(curation_archive, tmp_path, no_ocr):
    from typer.testing import CliRunner

    out = tmp_path / "a"
    result = CliRunner().invoke(_app(), ["curate", "subfigures", str(curation_archive), "--annotations", str(out),
                                         "--no-progress", "--ocr", "on"])
    assert result.exit_code == 2 and "biomedica[ocr]" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (out / "subfigures" / "meta.json").exists()  # nothing recorded
    result = CliRunner().invoke(_app(), ["curate", "subfigures", str(curation_archive), "--annotations", str(out),
                                         "--no-progress"])  # auto: runs without letters
    assert result.exit_code == 0, result.output
    assert _meta(out)["ocr"] is False
    result = CliRunner().invoke(_app(), ["curate", "subfigures", str(curation_archive), "--ocr", "sometimes"])
    assert result.exit_code == 2 and "ocr" in result.output


def test_ocr_off_and_on_are_recorded_and_a_resume_must_match(curation_archive, tmp_path):
    from typer.testing import CliRunner

    out = tmp_path / "a"
    args = ["curate", "subfigures", str(curation_archive), "--annotations", str(out), "--no-progress"]
    result = CliRunner().invoke(_app(), [*args, "--ocr", "off"])
    assert result.exit_code == 0, result.output
    assert _meta(out)["ocr"] is False and "OCR" not in result.output
    if not _ocr_installed():
        return
    other = CliRunner().invoke(_app(), [*args, "--ocr", "on"])
    assert other.exit_code == 2 and "ocr" in other.output.lower()
    result = CliRunner().invoke(_app(), ["curate", "subfigures", str(curation_archive), "--annotations",
                                         str(tmp_path / "b"), "--no-progress", "--ocr", "on"])
    assert result.exit_code == 0, result.output
    assert _meta(tmp_path / "b")["ocr"] is True and "OCR letters" in result.output
