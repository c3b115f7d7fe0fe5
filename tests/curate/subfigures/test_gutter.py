"""The gutter detector on generated compound figures with known boxes, and on real PMC figures."""

import io
import random
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from biomedica.curate.subfigures.boxes import Box
from biomedica.curate.subfigures.gutter import GutterConfig, GutterDetector
from biomedica.curate.subfigures.metrics import figure_boxes, figure_correct, match_boxes

FIGURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "images" / "pmc_package_figures"


def _photo(rng: random.Random, w: int, h: int) -> Image.Image:
    """A photo-like panel: smooth random colour field plus grain."""
    gen = np.random.default_rng(rng.randrange(1 << 30))
    small = gen.integers(0, 200, size=(max(2, h // 40), max(2, w // 40), 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR), dtype=np.int16)
    grain = gen.integers(-25, 25, size=field.shape)
    return Image.fromarray(np.clip(field + grain, 0, 230).astype(np.uint8))


def _plot(rng: random.Random, w: int, h: int) -> Image.Image:
    """A white-background line plot filling its panel: y tick labels beside the axis, x tick labels, a curve."""
    image = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(image)
    left, bottom = 22, h - 14
    draw.line([left, 2, left, bottom, w - 2, bottom], fill="black", width=2)
    for i in range(5):
        x = left + i * (w - left - 8) // 4
        draw.line([x, bottom, x, bottom + 3], fill="black")
        draw.text((min(x - 3, w - 8), bottom + 2), str(i), fill="black")
        y = bottom - i * (bottom - 10) // 4
        draw.line([left - 3, y, left, y], fill="black")
        draw.text((2, max(0, y - 5)), str(i * 5), fill="black")
    points = [(left + 2 + k * (w - left - 6) // 20, 4 + int((bottom - 8) * rng.random())) for k in range(21)]
    draw.line(points, fill=(rng.randrange(200), 60, 160), width=2)
    return image


def _compound(layout: list[list[int]], gutter: int, rng: random.Random, page=(255, 255, 255),
              kinds=("photo", "plot"), panel_h: int = 240) -> tuple[Image.Image, list[Box]]:
    """Rows of panels: `layout` is the panel widths of each row; returns the image and its exact boxes."""
    width = max(sum(row) + gutter * (len(row) - 1) for row in layout) + 2 * gutter
    height = len(layout) * panel_h + (len(layout) + 1) * gutter
    canvas = Image.new("RGB", (width, height), page)
    boxes = []
    y = gutter
    for row in layout:
        x = gutter
        for w in row:
            kind = rng.choice(kinds)
            panel = _photo(rng, w, panel_h) if kind == "photo" else _plot(rng, w, panel_h)
            canvas.paste(panel, (x, y))
            boxes.append(Box(x, y, x + w, y + panel_h))
            x += w + gutter
        y += panel_h + gutter
    return canvas, boxes


def _jpeg(image: Image.Image, quality: int = 85) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _grid(rows: int, columns: int, width: int = 800) -> list[list[int]]:
    return [[width // columns - 10] * columns for _ in range(rows)]


CASES = [
    # (layout, gutter px, page colour, panel kinds)
    (_grid(1, 2), 12, (255, 255, 255), ("photo",)),
    (_grid(2, 2), 2, (255, 255, 255), ("photo",)),
    (_grid(2, 3), 30, (255, 255, 255), ("plot",)),
    (_grid(3, 3, 760), 8, (255, 255, 255), ("photo", "plot")),
    (_grid(2, 2), 4, (0, 0, 0), ("photo",)),
    (_grid(1, 3), 20, (0, 0, 0), ("photo", "plot")),
    ([[500, 260], [240, 280, 230]], 10, (255, 255, 255), ("photo", "plot")),  # irregular rows
    ([[760], [370, 380]], 16, (255, 255, 255), ("plot", "photo")),  # a wide panel over two
    (_grid(2, 3), 2, (255, 255, 255), ("plot",)),
    (_grid(3, 2, 600), 6, (0, 0, 0), ("photo", "plot")),
    ([[300, 460], [460, 300], [250, 250, 250]], 5, (255, 255, 255), ("photo",)),
]


@pytest.mark.parametrize(("layout", "gutter", "page", "kinds"), CASES)
@pytest.mark.parametrize("quality", [75, 95])
def test_generated_compound_figures_are_split_exactly(layout, gutter, page, kinds, quality):
    rng = random.Random(zlib.crc32(repr((layout, gutter, page)).encode()))
    image, truth = _compound(layout, gutter, rng, page, kinds)
    boxes = GutterDetector().detect(_jpeg(image, quality))
    assert figure_correct(figure_boxes(boxes, *image.size), truth), (boxes, truth)
    # boxes are tight: each truth box matched well, in the stored image's pixels
    assert min(iou for _, _, iou in match_boxes(boxes, truth)) > 0.85


def test_panel_letters_and_axis_titles_join_their_panels():
    rng = random.Random(3)
    image, truth = _compound(_grid(2, 2), 24, rng, kinds=("plot",))
    draw = ImageDraw.Draw(image)
    for box, letter in zip(truth, "ABCD", strict=True):
        draw.text((box.x0 - 18, box.y0 - 20), letter, fill="black")  # alone in the gutter corner
        draw.text((box.x0 + 60, box.y1 + 6), "Time [h]", fill="black")  # axis title under the plot
    boxes = GutterDetector().detect(_jpeg(image))
    assert len(boxes) == 4
    assert figure_correct(boxes, truth)


def test_single_figures_stay_single():
    rng = random.Random(5)
    detector = GutterDetector()
    assert detector.detect(_jpeg(_photo(rng, 640, 480))) == []
    assert detector.detect(_jpeg(_plot(rng, 640, 480))) == []
    # a bar chart: white gaps between bars, but the x axis crosses every gap
    chart = Image.new("RGB", (600, 400), "white")
    draw = ImageDraw.Draw(chart)
    for i in range(5):
        draw.rectangle([60 + i * 105, 80 + i * 30, 130 + i * 105, 349], fill=(60, 90, 200))
    draw.line([50, 350, 590, 350], fill="black", width=2)
    draw.line([50, 20, 50, 350], fill="black", width=2)
    assert detector.detect(_jpeg(chart)) == []
    # a lone text line below a photo is a sliver, not a panel
    page = Image.new("RGB", (640, 560), "white")
    page.paste(_photo(rng, 600, 480), (20, 10))
    ImageDraw.Draw(page).text((20, 520), "Scale bar 10 um", fill="black")
    assert detector.detect(_jpeg(page)) == []
    assert detector.detect(Image.new("RGB", (8, 8), "white")) == []


def test_png_palette_and_large_images_map_back_to_full_pixels():
    rng = random.Random(11)
    image, truth = _compound(_grid(1, 2, 1600), 40, rng, kinds=("photo",), panel_h=900)
    boxes = GutterDetector(GutterConfig(side=256)).detect(image.convert("P"))  # reduced by 6, then mapped back
    assert figure_correct(boxes, truth)
    assert all(0 <= b.x0 < b.x1 <= image.width and 0 <= b.y0 < b.y1 <= image.height for b in boxes)


@pytest.mark.parametrize(
    ("figure", "panels"),
    [
        ("PMC1175969/gb-2005-6-6-r49-4.jpg", 8),  # eight scatter plots (a)-(h), 4 rows x 2, white gutters
        ("PMC11286954/41420_2024_2111_Fig1_HTML.jpg", 3),  # heatmap A over plots B and C
        ("PMC10487465/ijms-24-13282-g003.jpg", 0),  # one reaction scheme with white space between structures
        ("PMC10118017/fpls-14-1154535-g002.jpg", 0),  # one flow chart of text and arrows
        ("PMC1064083/bcr936-1.jpg", 0),  # one pathway diagram on a green ellipse
    ],
)
def test_real_figures_counted_as_seen(figure, panels):
    with Image.open(FIGURES / figure) as image:
        assert len(GutterDetector().detect(image)) == panels


def _grouped(rng: random.Random, groups: tuple[int, int] = (2, 2), parts: int = 3, gap: int = 4, gutter: int = 36,
             part_w: int = 110, part_h: int = 200) -> tuple[Image.Image, list[Box], list[Box]]:
    """Lettered panels each made of `parts` photos side by side with `gap` px between them, `gutter` px between panels.

    Returns the image, the panels' boxes and the sub-plots' boxes.
    """
    rows, columns = groups
    group_w = parts * part_w + (parts - 1) * gap
    canvas = Image.new("RGB", (columns * group_w + (columns + 1) * gutter, rows * part_h + (rows + 1) * gutter), "white")
    panels, subplots = [], []
    for r in range(rows):
        for c in range(columns):
            x, y = gutter + c * (group_w + gutter), gutter + r * (part_h + gutter)
            panels.append(Box(x, y, x + group_w, y + part_h))
            for k in range(parts):
                x0 = x + k * (part_w + gap)
                canvas.paste(_photo(rng, part_w, part_h), (x0, y))
                subplots.append(Box(x0, y, x0 + part_w, y + part_h))
    return canvas, panels, subplots


def test_count_hint_chooses_the_coarser_reading_of_nested_panels():
    image, panels, subplots = _grouped(random.Random(21))
    jpeg = _jpeg(image)
    detector = GutterDetector()
    # the image alone: every sub-plot is a panel (the gaps between them are gutters too)
    assert figure_correct(detector.detect(jpeg), subplots)
    # the caption names A-D: only the wide gutters cut, each lettered panel comes out whole
    hinted = detector.detect(jpeg, expected_panels=4)
    assert figure_correct(hinted, panels), hinted
    assert min(iou for _, _, iou in match_boxes(hinted, panels)) > 0.85
    # a hint that agrees with the image changes nothing; one no reading gives keeps the image's own
    assert figure_correct(detector.detect(jpeg, expected_panels=12), subplots)
    assert figure_correct(detector.detect(jpeg, expected_panels=7), subplots)


def test_count_hint_never_adds_panels():
    rng = random.Random(23)
    image, truth = _compound(_grid(2, 2), 12, rng, kinds=("photo", "plot"))
    jpeg = _jpeg(image)
    detector = GutterDetector()
    for hint in (None, 1, 4, 5, 9):
        assert figure_correct(detector.detect(jpeg, expected_panels=hint), truth), hint
    assert detector.detect(_jpeg(_photo(rng, 640, 480)), expected_panels=3) == []


def test_count_hint_confirms_a_split_of_sparse_panels():
    """Four panels of which only one is photo-like: alone the split looks like a diagram's pieces, the caption's
    count of 4 confirms it."""
    rng = random.Random(29)
    image = Image.new("RGB", (760, 560), "white")
    draw = ImageDraw.Draw(image)
    truth = [Box(20, 20, 370, 270), Box(390, 20, 740, 270), Box(20, 290, 370, 540), Box(390, 290, 740, 540)]
    image.paste(_photo(rng, 350, 250), (20, 20))
    for box in truth[1:]:  # sparse drawings: a diagonal arrow between outlines, text; no axes, little ink
        draw.line([box.x0, box.y0, box.x1 - 1, box.y1 - 1], fill="black", width=2)
        draw.ellipse([box.x0 + 20, box.y0 + 10, box.x0 + 160, box.y0 + 120], outline="black", width=2)
        draw.text((box.x0 + 170, box.y0 + 90), "a label", fill="black")
    jpeg = _jpeg(image)
    assert GutterDetector().detect(jpeg) == []
    assert figure_correct(GutterDetector().detect(jpeg, expected_panels=4), truth)


# -- single medical images: what gutters are not ------------------------------------------------

SHARED_IMAGES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "images"


def _speckle(gen: np.random.Generator, h: int, w: int, low: int, high: int) -> np.ndarray:
    """Grainy anatomy-like texture: a smooth field between low and high plus per-pixel noise."""
    small = gen.uniform(low, high, size=(max(2, h // 12), max(2, w // 12)))
    field = np.asarray(Image.fromarray(small.astype(np.float32)).resize((w, h), Image.BILINEAR))
    return np.clip(field + gen.normal(0, (high - low) / 6, size=(h, w)), 0, 255)


def test_a_bright_textured_column_is_no_gutter():
    """A chest X-ray's spine: brighter than the white tolerance from top to bottom, but textured, not flat page."""
    gen = np.random.default_rng(31)
    grey = _speckle(gen, 300, 260, 90, 170)
    grey[:, 125:137] = _speckle(gen, 300, 12, 222, 248)  # within 40 of white on every row
    grey[:12, :] = _speckle(gen, 12, 260, 220, 250)  # a bright (not flat) top edge, like the neck
    image = Image.fromarray(grey.astype(np.uint8)).convert("RGB")
    assert GutterDetector().detect(_jpeg(image)) == []
    assert GutterDetector().detect(image) == []


def test_a_bright_edge_that_is_not_flat_is_no_page():
    """Textured light-grey edges (an X-ray's): not a page colour, so a flat column of their median grey cuts nothing."""
    gen = np.random.default_rng(37)
    grey = _speckle(gen, 260, 260, 80, 180)
    grey[:10, :], grey[-10:, :] = _speckle(gen, 10, 260, 200, 255), _speckle(gen, 10, 260, 200, 255)
    grey[:, :10], grey[:, -10:] = _speckle(gen, 260, 10, 200, 255), _speckle(gen, 260, 10, 200, 255)
    ring = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    grey[:, 126:134] = np.median(ring)  # a "gutter" if that grey were the page
    assert GutterDetector().detect(Image.fromarray(grey.astype(np.uint8))) == []


def _ultrasound(gen: np.random.Generator, shadow: bool = True) -> Image.Image:
    """An ultrasound frame: black surround, burned-in text blocks at the top, a speckle image with an acoustic shadow."""
    grey = np.zeros((300, 400))
    grey[60:250, 20:380] = _speckle(gen, 190, 360, 40, 140)
    if shadow:  # a dark band (fluid, a shadow) from the top of the image to its bottom
        grey[60:250, 190:215] = _speckle(gen, 190, 25, 4, 22)
    image = Image.fromarray(grey.astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(["MED CTR", "630P630", "70F70", "44C43"]):
        draw.text((6, 4 + 11 * i), line, fill="white")
        draw.text((320, 4 + 11 * i), line[::-1], fill="white")
    draw.text((150, 8), "+2:09:04", fill="white")
    draw.text((170, 265), "LYMPH NODE", fill="white")
    draw.line([60, 285, 140, 285], fill="white")  # a scale bar
    return image


def test_an_ultrasound_frame_on_black_is_single():
    """Black page: a gutter must be flatter (dark anatomy is near black too) and only solid pieces are panels
    (burned-in text and a speckle image with black patches are not evidence of a layout)."""
    for seed in (41, 43):
        gen = np.random.default_rng(seed)
        for shadow in (True, False):
            image = _ultrasound(gen, shadow)
            assert GutterDetector().detect(_jpeg(image)) == [], (seed, shadow)
            assert GutterDetector().detect(image) == [], (seed, shadow)


def test_a_text_block_joins_its_panel():
    """Lines of text taller than a sliver (a title block, burned-in labels) are no panel: they join the nearest one."""
    rng = random.Random(47)
    page = Image.new("RGB", (640, 420), "white")
    draw = ImageDraw.Draw(page)
    for i in range(6):
        draw.text((30, 10 + 12 * i), f"Patient 12, series 4, slice {i} of 30", fill="black")
    page.paste(_photo(rng, 580, 300), (30, 100))
    assert GutterDetector().detect(_jpeg(page)) == []
    # beside two real panels it still joins one of them: two boxes, not three
    two = Image.new("RGB", (900, 420), "white")
    draw = ImageDraw.Draw(two)
    for i in range(6):
        draw.text((30, 10 + 12 * i), f"Patient 12, series 4, slice {i} of 30", fill="black")
    truth = [Box(30, 100, 430, 400), Box(470, 100, 870, 400)]
    for box in truth:
        two.paste(_photo(rng, box.x1 - box.x0, box.y1 - box.y0), (box.x0, box.y0))
    boxes = GutterDetector().detect(_jpeg(two))
    assert len(boxes) == 2, boxes
    assert figure_correct(boxes, truth)


def test_every_curation_archive_image_is_single(curation_archive):
    """The demo corpus writes one picture per graphic (DICOM frames, scikit-image pictures, charts): no panels."""
    from biomedica.archive.reader import iter_shard, live_shards

    detector = GutterDetector()
    split, seen = [], 0
    for _group, shard, exclude in live_shards(curation_archive):
        for record, data in iter_shard(shard, exclude):
            seen += 1
            with Image.open(io.BytesIO(data)) as image:
                boxes = detector.detect(image)
            if boxes:
                split.append((record["key"], len(boxes)))
    assert seen > 30
    assert split == []


@pytest.mark.parametrize("name", sorted(p.name for p in (SHARED_IMAGES / "skimage").glob("*.*") if p.suffix in (".png", ".jpg")))
def test_scikit_image_pictures_are_single(name):
    with Image.open(SHARED_IMAGES / "skimage" / name) as image:
        assert GutterDetector().detect(image) == []


def _dicom_frames(path: Path) -> list[Image.Image]:
    """The frames of a DICOM file as 8-bit pictures, through the windows a viewer would show."""
    pydicom = pytest.importorskip("pydicom")
    from pydicom.pixels import apply_modality_lut

    dataset = pydicom.dcmread(path)
    try:
        pixels = dataset.pixel_array
    except (RuntimeError, NotImplementedError) as error:  # e.g. 12-bit lossy JPEG without a plugin for it
        pytest.skip(f"{path.name}: no decoder installed ({error})")
    values = apply_modality_lut(pixels, dataset).astype(np.float64)
    frames = values if values.ndim == 3 else values[None]
    windows = [tuple(np.percentile(values, [0.5, 99.5]))]
    if str(dataset.get("Modality", "")) == "CT":
        windows += [(0, 80), (-160, 240), (-600, 1400)]  # brain, soft tissue, bone
    pictures = []
    for frame in frames[:4]:
        for low, high in windows:
            scaled = np.clip((frame - low) / max(high - low, 1e-9), 0, 1)
            pictures.append(Image.fromarray(np.round(scaled * 255).astype(np.uint8)))
    return pictures


@pytest.mark.parametrize("name", sorted(p.name for p in (SHARED_IMAGES / "pydicom").glob("*.dcm")))
def test_dicom_frames_are_single(name):
    for picture in _dicom_frames(SHARED_IMAGES / "pydicom" / name):
        assert GutterDetector().detect(picture) == []
        assert GutterDetector().detect(_jpeg(picture.convert("RGB"))) == []
