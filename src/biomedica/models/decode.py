"""The one image decode for model input: encoded bytes or a file -> 8-bit RGB PIL image.

curate embed and every eval image reference decode through `decode_image`, so the same
archive gives the same embeddings in both. Given the model's input side, a JPEG is decoded
at reduced scale (PIL draft) to no less than twice that side: the model's resize then sees
the same detail at a fraction of the decode cost. 16-bit and float images (16-bit PNG grey is
kept by ingest) are scaled onto 0-255 by their 0.5th-99.5th percentile instead of clipped.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

DECODE_RULE = "jpeg-draft-2x+percentile-16bit"  # part of every model fingerprint: a new rule re-embeds caches
HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "F")


def decode_image(source: bytes | str | Path, side: int | None = None) -> Image.Image:
    """RGB pixels of encoded `source`; `side` (the model's input side) allows a reduced-scale JPEG decode."""
    with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source) as image:
        if side and image.format == "JPEG":
            image.draft("RGB", (2 * side, 2 * side))
        image.load()
        return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for any Pillow mode; 16-bit and float images are min-max scaled to 8 bits first."""
    if image.mode in HIGH_DEPTH_MODES:
        return Image.fromarray(scale_to_uint8(np.asarray(image))).convert("RGB")
    return image.convert("RGB")


def scale_to_uint8(pixels: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Map [low, high] (default: 0.5th-99.5th percentile) linearly onto 0-255."""
    pixels = np.asarray(pixels, dtype=np.float32)
    if low is None or high is None:
        low, high = (float(v) for v in np.percentile(pixels, [0.5, 99.5]))
    if high <= low:
        high = low + 1.0
    return (np.clip((pixels - low) / (high - low), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
