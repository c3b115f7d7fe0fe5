"""The one image decode for model input: 16-bit scaling, reduced-scale JPEG, RGB out."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from biomedica.models import decode_image


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    ramp = np.tile(np.linspace(1000, 60000, 100, dtype=np.uint16), (40, 1))  # every value above 255
    data = _encoded(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    assert np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).min() == 255  # what a plain convert gives
    image = decode_image(data)
    pixels = np.asarray(image)
    assert image.mode == "RGB" and image.size == (100, 40)
    assert pixels[0, 0, 0] == 0 and pixels[0, -1, 0] == 255 and len(np.unique(pixels[..., 0])) > 90
    (tmp_path / "ramp.png").write_bytes(data)
    assert np.array_equal(np.asarray(decode_image(tmp_path / "ramp.png")), pixels)  # a file decodes as its bytes


def test_float_tiff_and_palette_become_rgb():
    floats = Image.fromarray(np.linspace(-1.0, 3.0, 64 * 64, dtype=np.float32).reshape(64, 64))
    assert np.asarray(decode_image(_encoded(floats, "TIFF"))).max() == 255
    palette = Image.new("P", (8, 8), 3)
    assert decode_image(_encoded(palette, "PNG")).mode == "RGB"


def test_jpeg_is_decoded_at_reduced_scale_only_when_the_model_side_allows():
    rng = np.random.default_rng(0)
    data = _encoded(Image.fromarray(rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)), "JPEG", quality=90)
    assert decode_image(data).size == (800, 600)  # no side given: full decode
    assert decode_image(data, 64).size == (200, 150)  # 1/4 scale keeps at least twice the side (128)
    assert decode_image(data, 224).size == (800, 600)  # 1/2 would be under 448: full decode
    grey = _encoded(Image.new("L", (512, 512), 90), "JPEG")
    assert decode_image(grey, 64).mode == "RGB"
