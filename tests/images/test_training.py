"""Training-ready copies: size rule, no upscaling, colour/depth normalisation, deterministic bytes, clear errors."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biomedica.images.errors import IMAGE_CORRUPT, IMAGE_EMPTY, ImageError
from biomedica.images.training import (
    TrainingImageSpec,
    load_training_pixels,
    make_training_image,
    target_size,
    training_image_from_pixels,
)

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
RETINA = FIXTURES / "images" / "skimage" / "retina.jpg"  # 1411x1411 RGB JPEG
GREY_FIGURE = FIXTURES / "images" / "pmc_package_figures" / "PMC1174970" / "ar1748-1.jpg"  # 600x907 L
ELIFE_TIFF = FIXTURES / "pmc_packages" / "elife-00353" / "elife-00353-fig1-v1.tif"  # 797x914 RGB, Adobe RGB ICC


def _encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None, None]
    rgb = np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                          np.full((height, width, 1), 128.0)], axis=2)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"size": 31}, "--image-size"),
        ({"size": True}, "--image-size"),
        ({"size": 256, "quality": 0}, "--quality"),
        ({"size": 256, "quality": 101}, "--quality"),
        ({"size": 256, "mode": "stretch"}, "--resize-mode"),
        ({"size": 256, "format": "png"}, "--image-format"),
    ],
)
def test_spec_refuses_bad_values_with_the_fix(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment) as raised:
        TrainingImageSpec(**kwargs)
    assert "\n" not in str(raised.value)


def test_spec_extension_and_dict():
    assert TrainingImageSpec(256).extension == "jpg"
    assert TrainingImageSpec(256, format="webp").extension == "webp"
    assert TrainingImageSpec(288, mode="center-crop", quality=85).to_dict() == {
        "size": 288, "mode": "center-crop", "format": "jpeg", "quality": 85,
    }


@pytest.mark.parametrize(
    "size, mode, expected",
    [
        ((1000, 500), "shorter-side", (512, 256)),
        ((500, 1000), "shorter-side", (256, 512)),
        ((1000, 500), "longer-side", (256, 128)),
        ((500, 1000), "longer-side", (128, 256)),
        ((1000, 500), "center-crop", (512, 256)),  # before the crop
        ((333, 1000), "shorter-side", (256, 769)),  # 768.77 rounds to 769
        ((1000, 3), "shorter-side", (1000, 3)),  # shorter side below the target: kept
        ((200, 100), "shorter-side", (200, 100)),  # no upscaling
        ((256, 256), "shorter-side", (256, 256)),
        ((300, 100), "longer-side", (256, 85)),  # 85.33
        ((100000, 300), "longer-side", (256, 1)),  # never 0
    ],
)
def test_target_size(size, mode, expected):
    assert target_size(*size, TrainingImageSpec(256, mode=mode)) == expected


def test_shorter_side_resize_of_a_real_jpeg_is_deterministic():
    data = RETINA.read_bytes()
    spec = TrainingImageSpec(256)
    copy = make_training_image(data, spec, "retina.jpg")
    assert (copy.extension, copy.width, copy.height) == ("jpg", 256, 256)
    image = _decoded(copy.data)
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (256, 256))
    assert len(copy.data) < len(data) / 5
    assert make_training_image(data, spec, "retina.jpg") == copy  # same bytes: resume relies on it


def test_aspect_is_kept_and_grey_stays_grey():
    copy = make_training_image(GREY_FIGURE.read_bytes(), TrainingImageSpec(224), "ar1748-1.jpg")
    assert copy.width == 224 and abs(copy.height - 907 * 224 / 600) <= 1
    assert _decoded(copy.data).mode == "L"


def test_longer_side_and_center_crop():
    data = GREY_FIGURE.read_bytes()  # 600x907
    longer = make_training_image(data, TrainingImageSpec(256, mode="longer-side"), "g")
    assert (longer.width, longer.height) == (169, 256)
    square = make_training_image(data, TrainingImageSpec(256, mode="center-crop"), "g")
    assert (square.width, square.height) == (256, 256) == _decoded(square.data).size


def test_center_crop_takes_the_middle():
    # left third red, middle green, right third blue: the square crop of a 3:1 image is the green band
    bands = np.zeros((300, 900, 3), np.uint8)
    bands[:, :300, 0] = bands[:, 300:600, 1] = bands[:, 600:, 2] = 255
    copy = make_training_image(_encoded(Image.fromarray(bands), "PNG"), TrainingImageSpec(128, mode="center-crop"), "b")
    pixels = np.asarray(_decoded(copy.data).convert("RGB"), dtype=np.int32)
    assert pixels.shape == (128, 128, 3)
    assert pixels[8:-8, 8:-8, 1].min() > 230 and pixels[8:-8, 8:-8, [0, 2]].max() < 25


def test_webp_output():
    copy = make_training_image(RETINA.read_bytes(), TrainingImageSpec(256, format="webp", quality=80), "retina.jpg")
    image = _decoded(copy.data)
    assert (copy.extension, image.format, image.size) == ("webp", "WEBP", (256, 256))
    assert make_training_image(RETINA.read_bytes(), TrainingImageSpec(256, format="webp", quality=80), "r") == copy


def test_small_jpeg_is_kept_byte_for_byte():
    data = _encoded(_gradient(200, 120), "JPEG", quality=80)
    copy = make_training_image(data, TrainingImageSpec(256), "small.jpg")
    assert copy.data == data and (copy.width, copy.height) == (200, 120)


def test_small_sources_that_need_work_are_re_encoded_at_their_own_size():
    jpeg = _encoded(_gradient(200, 120), "JPEG", quality=80)
    cropped = make_training_image(jpeg, TrainingImageSpec(256, mode="center-crop"), "small.jpg")
    assert (cropped.width, cropped.height) == (120, 120) and cropped.data != jpeg
    as_webp = make_training_image(jpeg, TrainingImageSpec(256, format="webp"), "small.jpg")
    assert _decoded(as_webp.data).format == "WEBP" and (as_webp.width, as_webp.height) == (200, 120)
    png = _encoded(_gradient(200, 120), "PNG")
    from_png = make_training_image(png, TrainingImageSpec(256), "small.png")
    assert _decoded(from_png.data).format == "JPEG" and (from_png.width, from_png.height) == (200, 120)


def test_exif_rotation_is_applied():
    # stored 400x200 (top half white, bottom black), orientation 6 = shown rotated 90 degrees clockwise
    pixels = np.zeros((200, 400), np.uint8)
    pixels[:100] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encoded(Image.fromarray(pixels), "JPEG", quality=95, exif=exif.tobytes())
    copy = make_training_image(data, TrainingImageSpec(100), "rotated.jpg")
    assert (copy.width, copy.height) == (100, 200)
    shown = np.asarray(_decoded(copy.data), dtype=np.int32)
    assert shown[:, :40].mean() < 30 and shown[:, 60:].mean() > 225  # the white half is now on the right


def test_sixteen_bit_grey_is_scaled_to_eight_bits():
    ramp = np.tile(np.linspace(0, 65535, 300).astype(np.uint16), (300, 1))
    copy = make_training_image(_encoded(Image.fromarray(ramp), "PNG"), TrainingImageSpec(64), "ramp16.png")
    image = _decoded(copy.data)
    assert image.mode == "L"
    row = np.asarray(image, dtype=np.int32)[32]
    assert row[:3].max() < 12 and row[-3:].min() > 243  # the full 16-bit range maps onto 0..255


def test_alpha_is_laid_on_white_and_palette_becomes_rgb():
    rgba = np.zeros((64, 64, 4), np.uint8)  # fully transparent black
    rgba[:, 32:] = (255, 0, 0, 255)  # right half opaque red
    copy = make_training_image(_encoded(Image.fromarray(rgba, "RGBA"), "PNG"), TrainingImageSpec(64), "alpha.png")
    pixels = np.asarray(_decoded(copy.data).convert("RGB"), dtype=np.int32)
    assert pixels[:, :24].min() > 240  # transparent -> white, not black
    assert pixels[:, 40:, 0].min() > 230 and pixels[:, 40:, 1:].max() < 30
    palette = Image.fromarray(rgba[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    from_palette = make_training_image(_encoded(palette, "PNG"), TrainingImageSpec(64), "palette.png")
    assert _decoded(from_palette.data).mode == "RGB"


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (300, 300), (0, 255, 255, 0))  # red ink
    copy = make_training_image(_encoded(cmyk, "JPEG", quality=95), TrainingImageSpec(64), "cmyk.jpg")
    image = _decoded(copy.data)
    assert image.mode == "RGB" and (copy.width, copy.height) == (64, 64)
    red, green, blue = (int(v) for v in np.asarray(image).reshape(-1, 3).mean(axis=0))
    assert red > 200 and green < 60 and blue < 60


def test_adobe_rgb_tiff_is_converted_to_srgb_without_a_profile():
    data = ELIFE_TIFF.read_bytes()
    copy = make_training_image(data, TrainingImageSpec(256), "elife-00353-fig1-v1.tif")
    image = _decoded(copy.data)
    assert (image.format, image.mode, copy.width) == ("JPEG", "RGB", 256) and abs(copy.height - 914 * 256 / 797) <= 1
    assert not image.info.get("icc_profile")
    untouched = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize(image.size, Image.Resampling.LANCZOS),
                           dtype=np.float64)
    # Adobe RGB -> sRGB changes saturated colours: the copy is not just the untagged pixels resized
    assert np.abs(np.asarray(image, dtype=np.float64) - untouched).mean() > 0.5


@pytest.mark.parametrize(
    "data, kind",
    [
        (b"", IMAGE_EMPTY),
        (b"not an image at all", IMAGE_CORRUPT),
        (RETINA.read_bytes()[:20000], IMAGE_CORRUPT),  # truncated JPEG
    ],
)
def test_undecodable_input_names_the_sample(data, kind):
    with pytest.raises(ImageError) as raised:
        make_training_image(data, TrainingImageSpec(256), "PMC1_000.jpg")
    assert raised.value.kind == kind
    assert "PMC1_000.jpg" in str(raised.value) and "\n" not in str(raised.value)


def test_pixels_path_gives_the_same_copy_and_takes_panel_crops():
    data = RETINA.read_bytes()
    spec = TrainingImageSpec(256)
    pixels = load_training_pixels(data, "retina.jpg", spec)
    assert pixels.mode == "RGB" and min(pixels.size) >= 512  # drafted to >= 2x the target, not to 256
    assert training_image_from_pixels(pixels, spec) == make_training_image(data, spec, "retina.jpg")
    full = load_training_pixels(data, "retina.jpg")
    assert full.size == (1411, 1411)
    panel = full.crop((100, 200, 700, 500))  # a subfigure: crop in the stored pixels, then resize
    copy = training_image_from_pixels(panel, spec)
    assert (copy.width, copy.height) == (512, 256)
    rgba = training_image_from_pixels(Image.new("RGBA", (40, 30), (0, 0, 0, 0)), spec)
    assert (rgba.width, rgba.height) == (40, 30) and np.asarray(_decoded(rgba.data)).min() > 240
