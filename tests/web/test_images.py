"""Thumbnails from real images (../shared/fixtures and the demo archive) in every stored mode, and the image responder."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from biomedica.web.images import (
    BadImageSize,
    ImageError,
    ImageNotFound,
    ImageResponder,
    ImageTooLarge,
    open_image,
    thumbnail,
)

FIGURES = ["images/pmc_package_figures/PMC10118017/fpls-14-1154535-g001.jpg",  # JPEG L 679x244
           "images/pmc_package_figures/PMC10118017/fpls-14-1154535-g002.jpg",  # JPEG RGB 590x900
           "images/skimage/cell.png",  # PNG L 550x660
           "images/skimage/ihc.png"]  # PNG RGB 512x512


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize("name", FIGURES)
def test_thumbnails_of_stored_figures_fit_and_keep_their_shape(fixtures_dir, name):
    data = (fixtures_dir / name).read_bytes()
    original = _open(data)
    small = _open(thumbnail(data))
    assert small.format == "JPEG" and small.mode in ("RGB", "L")
    assert max(small.size) == 256
    assert abs(small.size[0] / small.size[1] - original.size[0] / original.size[1]) < 0.02
    # the picture survives: the thumbnail looks like the original scaled down
    expected = np.asarray(original.convert("L").resize(small.size, Image.Resampling.BOX), dtype=float)
    assert np.abs(np.asarray(small.convert("L"), dtype=float) - expected).mean() < 12


def test_small_images_are_never_upscaled(fixtures_dir):
    data = (fixtures_dir / "images/skimage/microaneurysms.png").read_bytes()  # 102 x 102
    assert _open(thumbnail(data)).size == (102, 102)
    assert _open(thumbnail(data, max_side=50)).size == (50, 50)


def test_sixteen_bit_grey_is_stretched_not_clipped(fixtures_dir):
    cell = Image.open(fixtures_dir / "images/skimage/cell.png")
    values = np.asarray(cell, dtype=np.uint16) * 16 + 1000  # a 12-bit range inside 16 bits, as scanners write
    deep = Image.fromarray(values.astype(np.uint16))
    assert deep.mode.startswith("I;16")
    small = _open(thumbnail(_encode(deep)))
    pixels = np.asarray(small, dtype=float)
    assert small.mode == "L" and pixels.min() < 20 and pixels.max() > 235  # the full 8-bit range, not all white
    expected = np.asarray(cell.resize(small.size, Image.Resampling.BOX), dtype=float)
    assert np.corrcoef(pixels.ravel(), expected.ravel())[0, 1] > 0.95


def test_transparency_and_palette_go_on_white(fixtures_dir):
    ihc = Image.open(fixtures_dir / "images/skimage/ihc.png").convert("RGB")
    rgba = ihc.convert("RGBA")
    alpha = np.full(rgba.size[::-1], 255, np.uint8)
    alpha[:, : rgba.size[0] // 2] = 0  # left half transparent
    rgba.putalpha(Image.fromarray(alpha))
    flat = np.asarray(_open(thumbnail(_encode(rgba))).convert("RGB"), dtype=int)
    assert flat[:, :100].min() > 245  # white where transparent, not black
    assert flat[:, 160:].mean() < 230  # the picture where opaque
    palette = ihc.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.info["transparency"] = 0
    assert _open(thumbnail(_encode(palette))).mode == "RGB"
    grey_alpha = Image.open(fixtures_dir / "images/skimage/cell.png").convert("LA")
    assert _open(thumbnail(_encode(grey_alpha))).size[1] == 256
    bilevel = Image.open(fixtures_dir / "images/skimage/cell.png").convert("1")
    assert _open(thumbnail(_encode(bilevel))).mode == "L"


def test_cmyk_jpeg_becomes_rgb(fixtures_dir):
    figure = Image.open(fixtures_dir / FIGURES[1])
    cmyk = _encode(figure.convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(cmyk)).mode == "CMYK"
    small = _open(thumbnail(cmyk))
    assert small.mode == "RGB"
    expected = np.asarray(figure.convert("RGB").resize(small.size, Image.Resampling.BOX), dtype=float)
    assert np.abs(np.asarray(small, dtype=float) - expected).mean() < 15


def _png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims `width` x `height` (what a decompression bomb's header says)."""
    data = bytearray(_encode(Image.new("L", (1, 1))))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_decompression_bombs_are_refused_before_decoding():
    with pytest.raises(ImageTooLarge, match="pixel cap"):
        thumbnail(_png_claiming(12_000, 12_000))  # 144 M pixels: over our cap, under Pillow's error
    with pytest.raises(ImageTooLarge, match="pixel cap"):
        thumbnail(_png_claiming(60_000, 60_000))  # over Pillow's own bomb limit too
    with pytest.raises(ImageTooLarge):
        open_image(_encode(Image.new("L", (300, 300))), max_pixels=50_000)
    with pytest.raises(ImageError, match="not a readable image") as caught:
        thumbnail(b"<html>not an image</html>" * 10)
    assert "html" not in str(caught.value)  # never echoes the bytes
    with pytest.raises(ImageError):
        thumbnail(_encode(Image.new("RGB", (64, 64)), "JPEG")[:200])  # truncated


@pytest.fixture(scope="module")
def demo_lookup(demo_archive):
    """key -> (bytes, media type) over the demo archive, counting reads."""
    from biomedica.archive.reader import read_member, read_shard_index

    rows = {r["key"]: r for r in read_shard_index(
        demo_archive, columns=["key", "shard", "image_offset", "image_size", "image_format"]).to_pylist()}
    reads: list[str] = []

    def lookup(key: str) -> tuple[bytes, str]:
        row = rows[key]
        reads.append(key)
        data = read_member(demo_archive, row["group"], row["shard"], row["image_offset"], row["image_size"])
        return data, "image/jpeg" if row["image_format"] == "jpg" else "image/png"

    return lookup, sorted(rows), reads


def test_responder_serves_full_bytes_and_cached_thumbnails(demo_lookup):
    lookup, keys, reads = demo_lookup
    responder = ImageResponder(lookup)
    key = keys[0]
    full = responder.get(key, "full")
    assert full.data == lookup(key)[0] and full.media_type in ("image/jpeg", "image/png")
    reads.clear()
    first = responder.get(key, "thumb")
    second = responder.get(key, "thumb")
    assert first == second and first.media_type == "image/jpeg" and reads == [key]  # decoded once
    assert responder.cached == (1, len(first.data))
    with pytest.raises(ImageNotFound):
        responder.get("PMC0_000", "thumb")
    with pytest.raises(BadImageSize):
        responder.get(key, "large")


def test_thumbnail_cache_is_bounded_by_bytes(demo_lookup):
    lookup, keys, _ = demo_lookup
    sizes = {key: len(thumbnail(lookup(key)[0])) for key in keys[:8]}
    cap = sum(sorted(sizes.values())[:3])
    responder = ImageResponder(lookup, cache_bytes=cap)
    for key in keys[:8]:
        responder.get(key, "thumb")
        count, held = responder.cached
        assert held <= cap
    assert 1 <= count < 8
    assert responder.cached[1] == sum(sizes[k] for k in list(responder._cache))  # the newest kept, in order
    assert list(responder._cache)[-1] == keys[7]


def test_responder_replies(demo_lookup):
    pytest.importorskip("starlette")
    lookup, keys, _ = demo_lookup
    responder = ImageResponder(lookup)
    ok = responder.respond(keys[1], "thumb")
    assert ok.status_code == 200 and ok.media_type == "image/jpeg" and ok.body[:2] == b"\xff\xd8"
    assert responder.respond("PMC0_000" + "x" * 500, "full").status_code == 404
    assert b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" not in responder.respond(
        "PMC0_000" + "x" * 500).body
    assert responder.respond(keys[1], "medium").status_code == 400
    broken = ImageResponder(lambda key: (b"not an image at all", "image/png"))
    reply = broken.respond("PMC1_000", "thumb")
    assert reply.status_code == 422 and b"not a readable image" in reply.body
