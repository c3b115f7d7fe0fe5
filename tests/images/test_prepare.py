"""prepare_image on real figure files (kept, converted) and on generated bad input."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biomedica.images import ImageConfig, ImageError, prepare_image

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
PACKAGE = FIXTURES / "pmc_packages" / "PMC10802347"
ELIFE_TIF = FIXTURES / "pmc_packages" / "elife-00353" / "elife-00353-fig1-v1.tif"
SKIMAGE = FIXTURES / "images" / "skimage"


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def png_bytes_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height and whose image data is a few bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.jpg")) + [SKIMAGE / "retina.jpg"], ids=lambda p: p.name)
def test_jpeg_bytes_are_kept_identical(path: Path):
    data = path.read_bytes()
    stored = prepare_image(data, path.name)
    with Image.open(path) as image:
        assert (stored.width, stored.height) == image.size
    assert stored.data is data or stored.data == data
    assert stored.format == "jpg"
    assert stored.converted_from is None
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert len(stored.phash) == 16 and int(stored.phash, 16) > 0


@pytest.mark.parametrize("name", ["cell.png", "ihc.png", "microaneurysms.png", "phantom.png"])
def test_png_bytes_are_kept_identical(name: str):
    data = (SKIMAGE / name).read_bytes()
    stored = prepare_image(data, name)
    assert stored.data == data
    assert stored.format == "png"
    assert stored.converted_from is None
    assert (stored.width, stored.height) == Image.open(SKIMAGE / name).size


def test_format_comes_from_the_bytes_not_the_extension():
    jpeg = (SKIMAGE / "retina.jpg").read_bytes()
    png = (SKIMAGE / "cell.png").read_bytes()
    assert prepare_image(jpeg, "retina.png").format == "jpg"
    stored = prepare_image(png, "cell.jpg")
    assert (stored.format, stored.data == png) == ("png", True)


def test_elife_lzw_tiff_becomes_pixel_identical_png_with_its_icc_profile():
    data = ELIFE_TIF.read_bytes()
    stored = prepare_image(data, ELIFE_TIF.name)
    assert stored.format == "png"
    assert stored.converted_from == "tiff"
    assert (stored.width, stored.height) == (797, 914)
    original = Image.open(ELIFE_TIF)
    converted = Image.open(io.BytesIO(stored.data))
    assert converted.format == "PNG" and converted.mode == original.mode == "RGB"
    assert np.array_equal(np.asarray(converted), np.asarray(original))
    assert converted.info["icc_profile"] == original.info["icc_profile"]
    assert stored.sha256 == hashlib.sha256(stored.data).hexdigest()


def test_conversion_is_deterministic():
    data = ELIFE_TIF.read_bytes()
    assert prepare_image(data, "a.tif").data == prepare_image(data, "b.tif").data


def test_gif_thumbnail_becomes_png_keeping_palette():
    path = PACKAGE / "nihpp-2023.12.31.573776v1-f0001.gif"
    stored = prepare_image(path.read_bytes(), path.name)
    assert (stored.format, stored.converted_from) == ("png", "gif")
    converted = Image.open(io.BytesIO(stored.data))
    original = Image.open(path)
    assert converted.mode == "P"
    assert np.array_equal(np.asarray(converted.convert("RGB")), np.asarray(original.convert("RGB")))


def test_animated_gif_keeps_the_first_frame():
    path = SKIMAGE / "no_time_for_that_tiny.gif"
    original = Image.open(path)
    assert original.n_frames > 1
    first = np.asarray(original.convert("RGBA"))
    stored = prepare_image(path.read_bytes(), path.name)
    assert (stored.width, stored.height) == (14, 25)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored.data)).convert("RGBA")), first)


def test_transparent_gif_keeps_its_transparency():
    path = FIXTURES / "images" / "pmc_package_figures" / "PMC1175969" / "gb-2005-6-6-r49-i5.gif"
    stored = prepare_image(path.read_bytes(), path.name)
    converted = Image.open(io.BytesIO(stored.data))
    assert converted.info.get("transparency") == Image.open(path).info["transparency"] == 16


def test_multipage_tiff_stores_the_first_page():
    skimage_data = pytest.importorskip("skimage.data")
    path = Path(skimage_data.__file__).parent / "multipage.tif"
    original = Image.open(path)
    assert original.n_frames == 2
    first = np.asarray(original).copy()
    original.seek(1)
    assert not np.array_equal(first, np.asarray(original))
    stored = prepare_image(path.read_bytes(), path.name)
    assert (stored.format, stored.converted_from, stored.width, stored.height) == ("png", "tiff", 10, 15)
    assert np.array_equal(pixels(stored.data), first)


def test_sixteen_bit_greyscale_stays_sixteen_bit():
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array  # real 16-bit CT values
    values = (ct.astype(np.int32) - ct.min()).astype(np.uint16)
    assert values.max() > 255
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "TIFF")
    stored = prepare_image(buffer.getvalue(), "ct.tif")
    converted = Image.open(io.BytesIO(stored.data))
    assert converted.mode == "I;16"
    assert np.array_equal(np.asarray(converted), values)


@pytest.mark.parametrize(("pillow_format", "options"), [("WEBP", {"lossless": True}), ("BMP", {}), ("JPEG2000", {})])
def test_other_formats_become_pixel_identical_png(pillow_format: str, options: dict):
    original = Image.open(SKIMAGE / "retina.jpg").crop((500, 500, 756, 756))  # small: the encoders are slow
    buffer = io.BytesIO()
    original.save(buffer, pillow_format, **options)
    stored = prepare_image(buffer.getvalue(), "retina.img")
    assert (stored.format, stored.converted_from) == ("png", pillow_format.lower())
    assert np.array_equal(pixels(stored.data), np.asarray(Image.open(buffer)))


def test_cmyk_jpeg_is_kept_as_it_is():
    buffer = io.BytesIO()
    Image.open(SKIMAGE / "retina.jpg").convert("CMYK").save(buffer, "JPEG", quality=90)
    stored = prepare_image(buffer.getvalue(), "retina-cmyk.jpg")
    assert (stored.format, stored.data, stored.width) == ("jpg", buffer.getvalue(), 1411)


def test_cmyk_becomes_rgb_png():
    buffer = io.BytesIO()
    Image.open(SKIMAGE / "ihc.png").convert("CMYK").save(buffer, "TIFF")
    stored = prepare_image(buffer.getvalue(), "ihc-cmyk.tif")
    converted = Image.open(io.BytesIO(stored.data))
    assert (converted.mode, converted.size) == ("RGB", (512, 512))
    assert "icc_profile" not in converted.info


def test_lossy_option_gives_jpeg_for_converted_images_only():
    config = ImageConfig(lossy_format=True, jpeg_quality=90)
    stored = prepare_image(ELIFE_TIF.read_bytes(), ELIFE_TIF.name, config)
    assert (stored.format, stored.converted_from) == ("jpg", "tiff")
    decoded = Image.open(io.BytesIO(stored.data))
    assert decoded.format == "JPEG" and decoded.size == (797, 914)
    difference = np.abs(np.asarray(decoded, dtype=np.int16) - np.asarray(Image.open(ELIFE_TIF), dtype=np.int16))
    assert difference.mean() < 3
    png = (SKIMAGE / "cell.png").read_bytes()
    assert prepare_image(png, "cell.png", config).data == png
    gif = prepare_image((PACKAGE / "nihpp-2023.12.31.573776v1-f0001.gif").read_bytes(), "f1.gif", config)
    assert Image.open(io.BytesIO(gif.data)).mode == "RGB"


def expect_error(data: bytes, name: str, kind: str, config: ImageConfig = ImageConfig()) -> ImageError:
    with pytest.raises(ImageError) as caught:
        prepare_image(data, name, config)
    assert caught.value.kind == kind
    assert name in str(caught.value)
    return caught.value


def test_empty_file():
    error = expect_error(b"", "fig1.jpg", "image-empty")
    assert "0 bytes" in str(error)


def test_truncated_jpeg():
    data = (SKIMAGE / "retina.jpg").read_bytes()
    expect_error(data[: len(data) // 2], "retina.jpg", "image-corrupt")
    expect_error(data[:-10], "retina.jpg", "image-corrupt")
    expect_error(data[:200], "retina.jpg", "image-corrupt")


def test_png_with_damaged_image_data_fails_its_checksum():
    data = bytearray((SKIMAGE / "cell.png").read_bytes())
    data[len(data) // 2] ^= 0xFF
    error = expect_error(bytes(data), "cell.png", "image-corrupt")
    assert "fetch it again" in str(error)


def test_random_bytes_and_html_pages_are_corrupt():
    noise = random.Random(7).randbytes(4096)
    expect_error(noise, "fig2.jpg", "image-corrupt")
    error = expect_error(b"<!DOCTYPE html><html><body>Not Found</body></html>", "fig3.jpg", "image-corrupt")
    assert "HTML page" in str(error)


def test_vector_and_medical_formats_are_unsupported():
    error = expect_error(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "fig1.pdf", "image-unsupported")
    assert "PDF" in str(error)
    dicom = (FIXTURES / "images" / "pydicom" / "CT_small.dcm").read_bytes()
    assert "DICOM" in str(expect_error(dicom, "CT_small.dcm", "image-unsupported"))


def test_tiff_with_float64_planar_samples_goes_through_tifffile():
    tifffile = pytest.importorskip("tifffile")
    path = SKIMAGE / "multipage_rgb.tif"  # 2 pages of planar float64 RGB in [0, 1]: Pillow cannot read it
    stored = prepare_image(path.read_bytes(), path.name)
    assert (stored.format, stored.converted_from, stored.width, stored.height) == ("png", "tiff", 10, 10)
    first_page = np.moveaxis(tifffile.imread(path, key=0), 0, -1)
    assert np.array_equal(pixels(stored.data), np.rint(first_page * 255).astype(np.uint8))


def test_tiff_with_float64_grey_becomes_16_bit_png():
    tifffile = pytest.importorskip("tifffile")
    grey = np.asarray(Image.open(SKIMAGE / "microaneurysms.png"), dtype=np.float64) / 255.0
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, grey)
    stored = prepare_image(buffer.getvalue(), "grey.tif")
    converted = Image.open(io.BytesIO(stored.data))
    assert converted.mode == "I;16"
    assert np.array_equal(np.asarray(converted), np.rint(grey * 65535).astype(np.uint16))


def test_tiff_pillow_cannot_read_is_unsupported_without_tifffile(monkeypatch):
    monkeypatch.setitem(sys.modules, "tifffile", None)  # import tifffile now raises ImportError
    data = (SKIMAGE / "multipage_rgb.tif").read_bytes()
    error = expect_error(data, "multipage_rgb.tif", "image-unsupported")
    assert "unknown pixel mode" in str(error) and "tifffile" in str(error)


def test_tifffile_path_applies_the_size_limits():
    pytest.importorskip("tifffile")
    data = (SKIMAGE / "multipage_rgb.tif").read_bytes()
    expect_error(data, "multipage_rgb.tif", "image-too-large", ImageConfig(max_pixels=99))


def test_decompression_bomb_header_is_refused_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning escaping prepare_image fails the test
        error = expect_error(png_bytes_with_header(100_000, 100_000), "bomb.png", "image-too-large")
        assert "max_pixels" in str(error)
        # 10000 x 10000 is under our limit but over Pillow's warning threshold: no warning, and
        # the missing pixel data is reported as damage
        expect_error(png_bytes_with_header(10_000, 10_000), "big.png", "image-corrupt")


def test_max_pixels_and_min_side_come_from_the_config():
    data = (SKIMAGE / "retina.jpg").read_bytes()
    error = expect_error(data, "retina.jpg", "image-too-large", ImageConfig(max_pixels=1_000_000))
    assert "1,990,921 pixels" in str(error)
    gif = (SKIMAGE / "no_time_for_that_tiny.gif").read_bytes()
    expect_error(gif, "tiny.gif", "image-too-small", ImageConfig(min_side=20))


def test_config_rejects_impossible_values():
    with pytest.raises(ValueError, match="jpeg_quality"):
        ImageConfig(jpeg_quality=0)
    with pytest.raises(ValueError, match="min_side"):
        ImageConfig(min_side=0)
