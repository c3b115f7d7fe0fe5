"""64-bit DCT perceptual hash (pHash) of an image, for near-duplicate detection.

The algorithm is the one `imagehash.phash` uses, so values agree with it on ordinary
8-bit images (tested): greyscale, Lanczos resize to 32x32, 2-D DCT-II, keep the top-left
8x8 block (lowest frequencies, DC included), set a bit where the coefficient is above the
median of those 64.

Bit order: bit i (i = 0..63) is coefficient (row i // 8, column i % 8) of the 8x8 block,
row = vertical frequency; bit 0 is the most significant bit of the 16 hex digits.

Differences from imagehash, all on inputs where it gives poor or unstable hashes:
- the DCT runs in exact integer arithmetic (a fixed-point cosine table, 2^16 scale), so the
  hash does not depend on the BLAS/FFT library or CPU: a flat image gives `8000000000000000`
  everywhere instead of float noise;
- 16-bit and 32-bit greyscale keep their depth (Pillow's convert("L") would clip them);
- transparent images are laid on white first (figure PNGs often have a transparent
  background whose hidden colour is black);
- a JPEG not yet loaded is decoded at reduced scale (libjpeg DCT scaling via Image.draft),
  several times faster; on the fixtures this moves at most 2 of 64 bits against a full decode.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_BITS = 64
_BLOCK = 8  # low-frequency block side: 8x8 = 64 bits
_RESIZED = 32  # side of the greyscale thumbnail the DCT runs on
# JPEGs are decoded at the smallest libjpeg scale (1/2 .. 1/8) that keeps both sides >= this.
JPEG_DRAFT_SIDE = 256
_FIXED_POINT = 1 << 16

_HIGH_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def _dct_rows() -> np.ndarray:
    """First 8 rows of the unnormalised 32-point DCT-II matrix, as fixed-point integers."""
    k = np.arange(_BLOCK)[:, None]
    n = np.arange(_RESIZED)[None, :]
    cosines = np.cos(np.pi * k * (2 * n + 1) / (2 * _RESIZED))
    return np.rint(cosines * _FIXED_POINT).astype(np.int64)


_DCT_ROWS = _dct_rows()


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or (image.mode in ("P", "L", "RGB") and "transparency" in image.info)


def _high_depth_pixels(image: Image.Image) -> np.ndarray:
    """32x32 integer pixels of a 16/32-bit or float greyscale image, depth kept."""
    small = image.resize((_RESIZED, _RESIZED), Image.Resampling.LANCZOS)
    pixels = np.asarray(small)
    if image.mode.startswith("I;16"):
        return pixels.astype(np.int64)
    # 32-bit int or float: rescale the range onto 0..65535 (pHash ignores scale and offset
    # except through rounding, so this only keeps the integer DCT inside int64).
    values = np.nan_to_num(pixels.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.int64)
    return np.rint((values - low) * (65535.0 / (high - low))).astype(np.int64)


def _grey_pixels(image: Image.Image) -> np.ndarray:
    """The 32x32 greyscale pixels the DCT runs on, as int64."""
    if image.mode in _HIGH_DEPTH_MODES:
        return _high_depth_pixels(image)
    if _has_alpha(image):
        small = image.convert("RGBA").resize((_RESIZED, _RESIZED), Image.Resampling.LANCZOS)
        white = Image.new("RGBA", small.size, (255, 255, 255, 255))
        grey = Image.alpha_composite(white, small).convert("L")
    else:
        if image.mode == "LAB":
            grey_full = image.getchannel("L")
        elif image.mode in ("1", "P", "L", "RGB", "RGBX", "CMYK", "YCbCr", "HSV"):
            grey_full = image.convert("L")
        else:
            grey_full = image.convert("RGB").convert("L")
        grey = grey_full.resize((_RESIZED, _RESIZED), Image.Resampling.LANCZOS)
    return np.asarray(grey, dtype=np.int64)


def perceptual_hash(image: Image.Image) -> str:
    """Return the 64-bit DCT pHash of `image` as 16 hex digits (bit order in the module doc).

    A JPEG that is not yet loaded is switched to reduced-scale decoding first (Image.draft),
    which changes `image` in place; pass a copy if the full-size image is needed afterwards.
    """
    if image.format in ("JPEG", "MPO"):
        image.draft("L", (JPEG_DRAFT_SIDE, JPEG_DRAFT_SIDE))  # no-op once loaded
    pixels = _grey_pixels(image)
    low = _DCT_ROWS @ pixels @ _DCT_ROWS.T  # exact: |values| < 2^59
    flat = low.ravel()
    ordered = np.sort(flat)
    twice_median = ordered[HASH_BITS // 2 - 1] + ordered[HASH_BITS // 2]
    value = 0
    for bit in (2 * flat > twice_median).tolist():
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def phash_distance(first: str, second: str) -> int:
    """Hamming distance between two hashes from perceptual_hash (0 = same, 64 = opposite)."""
    return (int(first, 16) ^ int(second, 16)).bit_count()
