"""Demo image sources: found offline, rendered to small 8-bit pictures the way their captions say."""

from __future__ import annotations

import random

import numpy as np
import pytest

from biomedica.testing.corpus.images import IMAGE_SOURCES, find_image_sources, frame_count, render_image, source_picture


def _source(name: str):
    return next(source for source in IMAGE_SOURCES if source.name == name)


def test_every_source_is_found_without_network():
    catalogue = find_image_sources()
    assert catalogue.skipped == ()
    assert [s.name for s in catalogue.sources] == [s.name for s in IMAGE_SOURCES]
    assert {s.modality for s in catalogue.sources} == {
        "ct", "mri", "xray", "ultrasound", "nuclear_medicine", "fundus", "immunohistochemistry", "microscopy",
    }


@pytest.mark.parametrize("source", IMAGE_SOURCES, ids=lambda s: s.name)
def test_render_is_small_8_bit_and_deterministic(source):
    first = render_image(source, random.Random(7), 128)
    second = render_image(source, random.Random(7), 128)
    assert first.image.mode in ("L", "RGB")
    assert max(first.image.size) <= 128
    assert first.image.tobytes() == second.image.tobytes()
    assert (first.window, first.frame, first.flipped, first.rotated) == (second.window, second.frame, second.flipped, second.rotated)
    pixels = np.asarray(first.image)
    assert pixels.dtype == np.uint8 and int(pixels.max()) - int(pixels.min()) > 40  # not blank
    assert first.window is None or first.window in source.windows
    if not source.may_flip:
        assert not first.flipped


def test_ct_windows_change_the_picture_as_named():
    head = _source("ct-head")
    brain = np.asarray(source_picture(head, head.windows[0]), dtype=np.float64)  # level 40, width 80
    bone = np.asarray(source_picture(head, head.windows[1]), dtype=np.float64)  # level 400, width 2000
    assert head.windows[0].name == "brain" and head.windows[1].name == "bone"
    # Brain tissue (~30 HU) sits mid-grey in the brain window and dark in the bone window.
    centre = (slice(200, 320), slice(220, 300))
    assert 60 < brain[centre].mean() < 200
    assert bone[centre].mean() < 110
    # The skull saturates in the brain window, far more pixels at 255 than in the bone window.
    assert (brain == 255).sum() > 3 * max(1, (bone == 255).sum())


def test_monochrome1_radiograph_is_inverted_for_display():
    chest = np.asarray(source_picture(_source("xray-chest")), dtype=np.float64)
    height, width = chest.shape
    # Displayed like a radiograph: the spine and mediastinum (centre column) brighter than the lungs.
    mediastinum = chest[height // 3 : height // 2, width // 2 - width // 20 : width // 2 + width // 20].mean()
    right_lung = chest[height // 3 : height // 2, width // 5 : width // 3].mean()
    assert mediastinum > right_lung + 30


def test_multi_frame_source_has_frames():
    echo = _source("us-echo")
    assert frame_count(echo) == 30
    assert frame_count(_source("ct-spine")) == 1
    frames = {render_image(echo, random.Random(seed), 64).frame for seed in range(8)}
    assert len(frames) > 1 and all(0 <= f < 30 for f in frames)
