"""evaluate: detectors scored on figures with known boxes (with and without caption hints), the caption splitter on
the real hand splits, clear errors for missing label files and images."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biomedica.curate.subfigures.boxes import Box
from biomedica.curate.subfigures.evaluate import evaluate_captions, evaluate_detector, load_panel_labels
from biomedica.curate.subfigures.gutter import GutterDetector

ROOT = Path(__file__).resolve().parents[3]
LABELS = ROOT / "tests" / "data" / "subfigures"
FIXTURES = ROOT / ".." / "shared" / "fixtures"


def _figure(columns: int, parts: int = 1, gap: int = 4, gutter: int = 40) -> tuple[Image.Image, list[Box], list[Box]]:
    """A row of `columns` panels, each `parts` noise photos `gap` px apart; returns the image, panels, sub-plots."""
    rng = np.random.default_rng(columns * 10 + parts)
    part_w, h = 120, 220
    group_w = parts * part_w + (parts - 1) * gap
    canvas = Image.new("RGB", (columns * group_w + (columns + 1) * gutter, h + 2 * gutter), "white")
    panels, subplots = [], []
    for c in range(columns):
        x = gutter + c * (group_w + gutter)
        panels.append(Box(x, gutter, x + group_w, gutter + h))
        for k in range(parts):
            x0 = x + k * (part_w + gap)
            canvas.paste(Image.fromarray(rng.integers(0, 200, (h, part_w, 3), dtype=np.uint8)), (x0, gutter))
            subplots.append(Box(x0, gutter, x0 + part_w, gutter + h))
    return canvas, panels, subplots


def test_evaluate_detector_with_and_without_hints():
    two, two_boxes, _ = _figure(2)
    nested, panels, subplots = _figure(3, parts=2)
    single = Image.fromarray(np.random.default_rng(1).integers(0, 200, (300, 400, 3), dtype=np.uint8))
    figures = [("two", two, two_boxes, False, 2), ("nested", nested, panels, False, 3),
               ("single", single, [], True, None)]
    hinted = evaluate_detector(GutterDetector(), figures, "generated")
    assert hinted.hints == 2
    assert hinted.report.figures == 3 and hinted.report.figure_accuracy == 1.0 and not hinted.wrong
    assert hinted.clear is not None and hinted.clear.figures == 2
    alone = evaluate_detector(GutterDetector(), figures, "generated", hints=False)
    assert alone.hints == 0
    assert alone.wrong == ["nested (6 found, 3 labelled)"]  # the sub-plots, as the image alone shows them
    assert alone.report.panels_pred == 2 + len(subplots) + 1
    # figures without a hint element are scored as before
    plain = evaluate_detector(GutterDetector(), [f[:4] for f in figures], "generated")
    assert plain.hints == 0 and plain.wrong == alone.wrong


def test_real_captions_are_split_as_labelled():
    result = evaluate_captions(LABELS / "real_captions.json")
    assert result.captions >= 100
    assert result.clear_rate >= 0.9, result.wrong


def test_labelled_real_figures_carry_their_caption_hints():
    figures = load_panel_labels(LABELS / "real_panels.json", FIXTURES)
    hints = {Path(f.name).name: f.expected_panels for f in figures}
    assert hints["41420_2024_2111_Fig1_HTML.jpg"] == 3  # A-C
    assert hints["gb-2005-6-6-r49-4.jpg"] is None  # labelled without its caption
    assert sum(h is not None for h in hints.values()) >= 4


def test_missing_images_and_label_files_are_named(tmp_path):
    labels = tmp_path / "real_panels.json"
    labels.write_text(json.dumps({"figures": [{"image": "images/nowhere.jpg", "panels": []}]}))
    with pytest.raises(FileNotFoundError, match=r"nowhere\.jpg: labelled in .*real_panels\.json but missing; .*--fixtures"):
        load_panel_labels(labels, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"absent\.json: label file not found; pass --labels"):
        load_panel_labels(tmp_path / "absent.json", tmp_path)
    labels.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_panel_labels(labels, tmp_path)


def test_eval_subfigures_command_prints_the_table_and_writes_the_rows(tmp_path):
    """`biomedica eval subfigures` on the real labels: one row per (subset, hint) for the gutter detector + the caption row."""
    from typer.testing import CliRunner

    from biomedica.cli.eval import app

    out = tmp_path / "rows.json"
    result = CliRunner().invoke(app, ["subfigures", "--labels", str(LABELS), "--fixtures", str(FIXTURES),
                                      "--synthetic", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    detection = [row for row in rows if "figures" in row]
    assert {(row["subset"], row["hint"].split(" ")[0]) for row in detection} == {
        ("all", "none"), ("clear", "none"), ("all", "caption"), ("clear", "caption")}
    assert all(row["detector"] == "gutter" and row["set"] == "real" for row in detection)
    assert {row["figures"] for row in detection if row["subset"] == "all"} == {33}
    captions = rows[-1]
    assert captions["captions"] == 111 and captions["clear_exact_match"] >= 0.9
    assert "| real | all | gutter | none | 33 |" in result.output
    assert "caption splitter: exact match" in result.output


def test_eval_subfigures_names_a_missing_labels_folder(tmp_path):
    from typer.testing import CliRunner

    from biomedica.cli.eval import app

    result = CliRunner().invoke(app, ["subfigures", "--labels", str(tmp_path / "nowhere"), "--fixtures", str(FIXTURES)])
    assert result.exit_code != 0
    assert "nowhere" in result.output and "Traceback" not in result.output


def test_the_gutter_detector_keeps_its_measured_quality_on_the_real_figures():
    """A regression floor at today's measured numbers (README, issue 12 note): a change that separates fewer
    hand-labelled real figures correctly, or splits captions worse, fails here rather than in a user's archive."""
    from biomedica.curate.subfigures.evaluate import real_figures

    figures = real_figures(LABELS / "real_panels.json", FIXTURES)
    plain = evaluate_detector(GutterDetector(), figures, "real", hints=False)
    hinted = evaluate_detector(GutterDetector(), figures, "real", hints=True)
    assert plain.report.figures == 33 and hinted.hints == 5
    assert plain.report.figure_accuracy >= 23 / 33 - 1e-9
    assert hinted.report.figure_accuracy >= 25 / 33 - 1e-9
    assert hinted.clear.figure_accuracy >= 23 / 27 - 1e-9
    captions = evaluate_captions(LABELS / "real_captions.json")
    assert captions.clear_exact >= 91 and captions.exact >= 102
