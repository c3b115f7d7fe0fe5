"""perceptual_hash: agreement with imagehash, robustness to re-encoding, bit order."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biomedica.images import perceptual_hash, phash_distance

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
SKIMAGE = FIXTURES / "images" / "skimage"
FIGURES = FIXTURES / "images" / "pmc_package_figures"
DISTINCT = [
    SKIMAGE / "retina.jpg",
    SKIMAGE / "cell.png",
    SKIMAGE / "ihc.png",
    SKIMAGE / "phantom.png",
    FIXTURES / "images" / "publaynet" / "PMC4527132_00004.jpg",
    FIGURES / "PMC10487465" / "ijms-24-13282-g001.jpg",
    FIGURES / "PMC1064083" / "bcr936-2.jpg",
    FIXTURES / "pmc_packages" / "elife-00353" / "elife-00353-fig1-v1.tif",
]


def loaded(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()  # full decode: no reduced-scale JPEG draft
    return image


@pytest.mark.parametrize("path", DISTINCT, ids=lambda p: p.name)
def test_equals_imagehash_on_fully_decoded_images(path: Path):
    imagehash = pytest.importorskip("imagehash")
    assert perceptual_hash(loaded(path)) == str(imagehash.phash(loaded(path)))


def test_reduced_scale_jpeg_decode_moves_at_most_two_bits():
    for path in sorted(FIGURES.glob("*/*.jpg")):
        assert phash_distance(perceptual_hash(Image.open(path)), perceptual_hash(loaded(path))) <= 2, path


def test_jpeg_reencoded_at_low_quality_stays_close():
    for path in DISTINCT[:1] + DISTINCT[4:7]:
        original = loaded(path).convert("RGB")
        buffer = io.BytesIO()
        original.save(buffer, "JPEG", quality=30)
        recoded = Image.open(io.BytesIO(buffer.getvalue()))
        assert phash_distance(perceptual_hash(original), perceptual_hash(recoded)) <= 6, path


def test_pmc_gif_thumbnail_hashes_close_to_its_full_size_jpeg():
    pairs = sorted(FIGURES.glob("*/*.jpg"))
    assert len(pairs) >= 20
    for jpg in pairs:
        gif = jpg.with_suffix(".gif")
        assert phash_distance(perceptual_hash(Image.open(jpg)), perceptual_hash(Image.open(gif))) <= 6, jpg


def test_different_images_differ_in_many_bits():
    hashes = [perceptual_hash(Image.open(path)) for path in DISTINCT]
    distances = [phash_distance(a, b) for a, b in itertools.combinations(hashes, 2)]
    assert min(distances) >= 16


def test_bit_order_row_major_dc_first():
    # brightness falling from top to bottom, constant across: only the vertical frequencies
    # (column 0 of the 8x8 block) are non-zero, and the odd ones are positive, as is DC
    ramp = np.repeat(np.linspace(255, 0, 64).astype(np.uint8)[:, None], 48, axis=1)
    bits = f"{int(perceptual_hash(Image.fromarray(ramp)), 16):064b}"
    assert [i for i, bit in enumerate(bits) if bit == "1"] == [0, 8, 24, 40, 56]
    assert perceptual_hash(Image.fromarray(ramp)) == "8080008000800080"
    # the transposed image sets the same coefficients in row 0 instead
    assert perceptual_hash(Image.fromarray(np.ascontiguousarray(ramp.T))) == "d500000000000000"


def test_flat_image_has_a_stable_hash():
    assert perceptual_hash(Image.new("L", (50, 40), 128)) == "8000000000000000"
    assert perceptual_hash(Image.new("RGB", (7, 300), (10, 200, 30))) == "8000000000000000"


def test_sixteen_bit_hash_matches_its_eight_bit_version():
    cell = np.asarray(loaded(SKIMAGE / "cell.png"), dtype=np.uint16)
    deep = Image.fromarray(cell * 257)  # same picture on the 16-bit scale
    assert deep.mode == "I;16"
    assert phash_distance(perceptual_hash(deep), perceptual_hash(loaded(SKIMAGE / "cell.png"))) <= 2
    as_float = Image.fromarray(cell.astype(np.float32) / 255.0)
    assert phash_distance(perceptual_hash(as_float), perceptual_hash(deep)) <= 2


def test_transparent_background_counts_as_white():
    cell = loaded(SKIMAGE / "cell.png").convert("RGBA")
    hidden_black = np.asarray(cell).copy()
    hidden_black[:, : hidden_black.shape[1] // 2] = (0, 0, 0, 0)  # left half transparent, black underneath
    shown_white = hidden_black.copy()
    shown_white[:, : shown_white.shape[1] // 2] = (255, 255, 255, 255)
    assert perceptual_hash(Image.fromarray(hidden_black)) == perceptual_hash(Image.fromarray(shown_white))


def test_distance():
    assert phash_distance("8000000000000000", "8000000000000000") == 0
    assert phash_distance("0000000000000000", "ffffffffffffffff") == 64
    assert phash_distance("8080008000800080", "8000000000000000") == 4
