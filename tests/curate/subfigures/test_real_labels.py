"""Sanity checks of the hand-labelled real panel boxes (tests/data/subfigures/real_panels.json).

The labels are evaluation ground truth, so a typo in them would silently skew every reported metric:
every labelled image must exist in ../shared/fixtures with the recorded size, boxes must lie inside it
(or inside the figure_box of a whole page), panels must not overlap much, and single figures must be one
whole-image box. ../shared is present in CI, so a missing image fails instead of skipping.
"""

import itertools
import json
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
LABELS = ROOT / "tests" / "data" / "subfigures" / "real_panels.json"
FIXTURES = ROOT / ".." / "shared" / "fixtures"
MAX_OVERLAP = 0.05  # of the smaller box's area

Image.MAX_IMAGE_PIXELS = None  # the supplementary TIFF page is 2250x3250

DATA = json.loads(LABELS.read_text())
FIGURES = DATA["figures"]


def _area(box):
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def _intersection(a, b):
    return _area([max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])])


def test_header_and_every_real_figure_image_is_labelled():
    assert DATA["made_by"] and DATA["convention"]
    labelled = {entry["image"] for entry in FIGURES}
    assert len(labelled) == len(FIGURES), "an image is labelled twice"
    expected = {str(p.relative_to(FIXTURES)) for p in (FIXTURES / "images" / "pmc_package_figures").glob("*/*.jpg")}
    expected |= {str(p.relative_to(FIXTURES)) for p in (FIXTURES / "images" / "pmc_package_figures").glob("*/*.tif")}
    expected |= {str(p.relative_to(FIXTURES)) for p in (FIXTURES / "pmc_packages").glob("*/*.jpg")}
    expected |= {str(p.relative_to(FIXTURES)) for p in (FIXTURES / "pmc_packages").glob("*/*.tif")}
    expected |= {str(p.relative_to(FIXTURES)) for p in (FIXTURES / "images" / "publaynet").glob("*.jpg")}
    assert expected, f"no fixture images under {FIXTURES}: is ../shared checked out?"
    assert expected <= labelled, f"unlabelled real figures: {sorted(expected - labelled)}"


@pytest.mark.parametrize("entry", FIGURES, ids=[Path(e["image"]).name for e in FIGURES])
def test_entry_matches_its_image_and_boxes_are_sane(entry):
    path = FIXTURES / entry["image"]
    assert path.is_file(), f"{path} is missing"
    with Image.open(path) as image:
        assert image.size == (entry["width"], entry["height"])
    width, height = entry["width"], entry["height"]
    panels = entry["panels"]
    assert isinstance(entry["ambiguous"], bool) and isinstance(entry["notes"], str)
    if entry.get("no_figure"):
        assert panels == [] and entry["figure_box"] is None and not entry["single"]
        return
    frame = entry["figure_box"] or [0, 0, width, height]
    assert 0 <= frame[0] < frame[2] <= width and 0 <= frame[1] < frame[3] <= height
    if entry["single"]:
        assert [p["box"] for p in panels] == [frame]
        return
    assert len(panels) >= 2, "a multi-panel figure needs at least two panels"
    for panel in panels:
        x0, y0, x1, y1 = box = panel["box"]
        assert all(isinstance(v, int) for v in box)
        assert frame[0] <= x0 < x1 <= frame[2] and frame[1] <= y0 < y1 <= frame[3], box
        assert panel["label"] is None or (isinstance(panel["label"], str) and 0 < len(panel["label"]) <= 4)
    for i, a in enumerate(panels):
        for b in panels[i + 1 :]:
            overlap = _intersection(a["box"], b["box"]) / min(_area(a["box"]), _area(b["box"]))
            assert overlap <= MAX_OVERLAP, (a, b, round(overlap, 3))
    # reading order: each panel starts at or below the rows before it, or to the right within its row
    for a, b in itertools.pairwise(panels):
        same_row = b["box"][1] < a["box"][3] and a["box"][1] < b["box"][3]
        assert (same_row and b["box"][0] >= a["box"][0]) or b["box"][1] >= a["box"][1], (a, b)


def test_caption_sources_point_at_a_real_caption():
    for entry in FIGURES:
        source = entry.get("caption_source")
        if not source:
            continue
        text = (FIXTURES / source["file"]).read_text()
        key = source.get("figure_id") or source.get("fig_id")
        assert f'"{key}"' in text, (entry["image"], source)


def test_recorded_captions_are_what_the_pipeline_stores():
    """`caption` (what the evaluation hands the detector) equals biomedica's parse / the unescaped metadata caption."""
    import html

    from biomedica.ingest.jats import parse_articles

    for entry in FIGURES:
        source = entry.get("caption_source")
        assert bool(source) == ("caption" in entry), entry["image"]
        if not source:
            continue
        path = FIXTURES / source["file"]
        if path.suffix == ".json":
            rows = {row["figure_id"]: row["caption"] for row in json.loads(path.read_text(encoding="utf-8"))}
            assert entry["caption"] == html.unescape(rows[source["figure_id"]])
        else:
            parsed = parse_articles(path.read_bytes(), source["file"])
            captions = {fig.fig_id: fig.caption for article in parsed.articles for fig in article.figures}
            assert entry["caption"] == captions[source["fig_id"]], entry["image"]
