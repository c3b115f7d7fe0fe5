"""High-depth pixels: exact where 16 bits hold them, range-scaled by documented rules otherwise."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from biomedica.images import ImageConfig, prepare_image
from biomedica.images.depth import grey_for_png, scaled, to_8_bit

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
CELL = FIXTURES / "images" / "skimage" / "cell.png"


def tiff_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "TIFF")
    return buffer.getvalue()


def test_float32_tiff_in_unit_range_maps_onto_16_bits():
    grey = np.asarray(Image.open(CELL), dtype=np.float32) / 255.0
    stored = prepare_image(tiff_bytes(Image.fromarray(grey)), "cell-float.tif")  # Pillow reads it as mode F
    converted = Image.open(io.BytesIO(stored.data))
    assert converted.mode == "I;16"
    assert np.array_equal(np.asarray(converted), np.rint(grey.astype(np.float64) * 65535).astype(np.uint16))


def test_signed_32_bit_grey_is_shifted_not_scaled():
    values = np.asarray(Image.open(CELL), dtype=np.int32) * 100 - 5000  # real pixels, range -5000..20500
    stored = prepare_image(tiff_bytes(Image.fromarray(values)), "cell-int.tif")
    converted = np.asarray(Image.open(io.BytesIO(stored.data)))
    assert np.array_equal(converted, (values + 5000).astype(np.uint16))


def test_16_bit_to_jpeg_keeps_the_appearance():
    cell = np.asarray(Image.open(CELL))
    deep = Image.fromarray(cell.astype(np.uint16) * 257)
    stored = prepare_image(tiff_bytes(deep), "cell16.tif", ImageConfig(lossy_format=True))
    decoded = np.asarray(Image.open(io.BytesIO(stored.data)), dtype=np.int16)
    assert stored.format == "jpg"
    assert np.abs(decoded - cell).mean() < 2


def test_scaling_rules():
    assert scaled(np.array([0, 65535], dtype=np.uint16), 255).tolist() == [0.0, 255.0]
    assert scaled(np.array([0.0, 0.5, 1.0]), 100).tolist() == [0.0, 50.0, 100.0]
    assert scaled(np.array([-2.0, 2.0, np.nan]), 4).tolist() == [0.0, 4.0, 2.0]  # NaN -> 0, then min..max
    assert to_8_bit(np.array([[0, 32768, 65535]], dtype=np.uint16)).tolist() == [[0, 128, 255]]
    assert grey_for_png(np.array([[0, 70000]], dtype=np.int64)).mode == "I;16"
    assert np.asarray(grey_for_png(np.array([[0, 70000]], dtype=np.int64))).tolist() == [[0, 65535]]
