"""The synthetic compound-figure generator: boxes exactly where panels were pasted, labels drawn, seeded."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from biomedica.curate.subfigures.boxes import reading_order
from biomedica.curate.subfigures.synthetic import (
    SyntheticConfig,
    SyntheticFigure,
    draw_plot,
    generate_figure,
    label_text,
    pool_split_of,
    single_panel_pool,
)

PLAIN = SyntheticConfig(single_prob=0.0, plot_prob=0.0, label_prob=0.0, inset_prob=0.0, frame_prob=0.0)


def _colour_pool(n: int = 16) -> list[Image.Image]:
    """Solid images of distinct colours, none near white, black or grey (the gutter colours)."""
    rng = random.Random(7)
    pool = []
    while len(pool) < n:
        colour = (rng.randint(30, 225), rng.randint(30, 225), rng.randint(30, 225))
        if max(colour) - min(colour) > 40 and all(sum(abs(a - b) for a, b in zip(colour, img.getpixel((0, 0)))) > 30 for img in pool):
            pool.append(Image.new("RGB", (rng.randint(40, 200), rng.randint(40, 200)), colour))
    return pool


@pytest.mark.parametrize("seed", range(12))
def test_boxes_are_exactly_the_pasted_panels(seed):
    pool = _colour_pool()
    figure = generate_figure(pool, random.Random(seed), PLAIN)
    pixels = np.asarray(figure.image).astype(int)
    height, width, _ = pixels.shape
    colours = {img.getpixel((0, 0)) for img in pool}
    covered = np.zeros((height, width), dtype=bool)
    assert len(figure.boxes) >= 2 and figure.boxes == reading_order(figure.boxes)
    for box in figure.boxes:
        assert 0 <= box.x0 < box.x1 <= width and 0 <= box.y0 < box.y1 <= height
        region = pixels[box.y0:box.y1, box.x0:box.x1].reshape(-1, 3)
        first = tuple(region[0])
        assert first in colours and (region == first).all(), f"box {box} is not one pasted panel"
        # the ring just outside the box is not this panel (a gutter or another panel's colour)
        if box.x1 < width:
            assert (pixels[box.y0:box.y1, box.x1] != first).any(axis=1).all()
        if box.y1 < height:
            assert (pixels[box.y1, box.x0:box.x1] != first).any(axis=1).all()
        if box.x0 > 0:
            assert (pixels[box.y0:box.y1, box.x0 - 1] != first).any(axis=1).all()
        if box.y0 > 0:
            assert (pixels[box.y0 - 1, box.x0:box.x1] != first).any(axis=1).all()
        assert not covered[box.y0:box.y1, box.x0:box.x1].any(), "panels overlap"
        covered[box.y0:box.y1, box.x0:box.x1] = True
    outside = pixels[~covered]
    if outside.size:  # everything outside the panels is the one gutter colour
        assert (outside == outside[0]).all() and tuple(outside[0]) not in colours


def test_same_seed_same_figure_other_seed_other_figure():
    pool = _colour_pool()
    a, b = (generate_figure(pool, random.Random(3)) for _ in range(2))
    c = generate_figure(pool, random.Random(4))
    assert a.boxes == b.boxes and a.labels == b.labels and a.image.tobytes() == b.image.tobytes()
    assert (c.boxes, c.image.size) != (a.boxes, a.image.size)


def test_labels_are_drawn_and_named_in_reading_order():
    pool = _colour_pool()
    config = SyntheticConfig(single_prob=0.0, plot_prob=0.0, label_prob=1.0, inset_prob=0.0, frame_prob=0.0)
    seen_styles = set()
    for seed in range(30):
        figure = generate_figure(pool, random.Random(seed), config)
        plain = generate_figure(pool, random.Random(seed), config.__class__(**{**config.__dict__, "label_prob": 0.0}))
        assert all(label for label in figure.labels)
        seen_styles.add(figure.labels[0])
        if figure.labels[0] in ("a", "A", "(a)", "(A)", "1"):
            assert figure.labels[1] == label_text({"a": "a", "A": "A", "(a)": "(a)", "(A)": "(A)", "1": "1"}[figure.labels[0]], 1, 0, 1)
        # the labelled figure differs from the same figure without labels only by the drawn text
        assert figure.image.size == plain.image.size
    assert len(seen_styles) >= 4
    assert label_text("A1", 4, 1, 2) == "B3" and label_text("(a)", 27, 0, 0) == "(ab)"


def test_labels_change_pixels():
    pool = _colour_pool()
    config = SyntheticConfig(single_prob=0.0, plot_prob=0.0, label_prob=1.0, inset_prob=0.0, frame_prob=0.0)
    figure = generate_figure(pool, random.Random(1), config)
    plain = generate_figure(pool, random.Random(1), SyntheticConfig(**{**config.__dict__, "label_prob": 0.0}))
    assert figure.boxes == plain.boxes
    diff = np.asarray(figure.image).astype(int) - np.asarray(plain.image).astype(int)
    assert np.abs(diff).sum() > 0


def test_single_figures_are_one_whole_image_box_and_insets_are_not_boxes():
    pool = _colour_pool()
    single = generate_figure(pool, random.Random(0), SyntheticConfig(single_prob=1.0))
    assert single.layout == "single" and single.labels == [None]
    assert [b.as_tuple() for b in single.boxes] == [(0, 0, *single.image.size)]
    config = SyntheticConfig(single_prob=0.0, inset_prob=1.0, plot_prob=0.0, label_prob=0.0)
    with_inset = [f for f in (generate_figure(pool, random.Random(s), config) for s in range(20)) if f.extras.get("inset")]
    assert with_inset
    for figure in with_inset:
        x0, y0, x1, y1 = figure.extras["inset"]
        hosts = [b for b in figure.boxes if b.x0 <= x0 and b.y0 <= y0 and x1 <= b.x1 and y1 <= b.y1]
        assert len(hosts) == 1 and (hosts[0].x1 - hosts[0].x0) > (x1 - x0)  # inside one panel, not a box


def test_plots_and_an_empty_pool():
    plot = draw_plot(random.Random(0), 300, 200)
    grey = np.asarray(plot.convert("L"))
    assert plot.width <= 300 and (grey < 128).any() and (grey > 240).mean() > 0.4  # dark marks on white
    figure = generate_figure([], random.Random(5), SyntheticConfig(single_prob=0.0))
    assert isinstance(figure, SyntheticFigure) and len(figure.boxes) >= 2


def test_single_panel_pool_splits_by_article(curation_archive):
    train = single_panel_pool(curation_archive, "train")
    held = single_panel_pool(curation_archive, "eval")
    every = single_panel_pool(curation_archive, "all")
    assert train and held and len(train) + len(held) == len(every)
    assert all(img.mode == "RGB" and min(img.size) >= 32 for img in every)
    assert len(single_panel_pool(curation_archive, "all", limit=3)) == 3
    assert pool_split_of("PMC9000001") == pool_split_of("PMC9000001")
    assert {pool_split_of(f"PMC{n}") for n in range(100)} == {"train", "eval"}


def test_single_panel_pool_refuses_a_folder_that_is_no_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match="biomedica ingest"):
        single_panel_pool(tmp_path, "train")
