"""Bring high-depth pixels (32-bit int, float, 16-bit colour) into what PNG and JPEG hold.

PNG through Pillow holds at most 16-bit grey or 8-bit colour; JPEG 8 bits. Integer grey
keeps its values when they fit 0..65535 (shifted up when negative), else its min..max is
scaled onto 0..65535. Otherwise (colour, JPEG) values are scaled: integer types by their
type's full range (16-bit colour looks the same in 8 bits), floats in [0, 1] by that range
(the usual convention), other floats by their min..max. NaN and infinities become 0.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def scaled(values: np.ndarray, top: int) -> np.ndarray:
    """Map values onto 0..top (float64 result) by the rules in the module docstring."""
    if values.dtype == np.bool_:
        return values.astype(np.float64) * top
    if np.issubdtype(values.dtype, np.integer):
        info = np.iinfo(values.dtype)
        return (values.astype(np.float64) - info.min) * (top / (info.max - info.min))
    finite = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if float(finite.min()) >= 0.0 and float(finite.max()) <= 1.0:
        return finite * top
    return range_scaled(finite, top)


def range_scaled(values: np.ndarray, top: int) -> np.ndarray:
    """Map the values' own min..max onto 0..top (float64 result; all zeros when flat)."""
    as_float = values.astype(np.float64)
    low, high = float(as_float.min()), float(as_float.max())
    return (as_float - low) * (top / (high - low)) if high > low else np.zeros_like(as_float)


def to_8_bit(values: np.ndarray) -> np.ndarray:
    """uint8 pixels (any channel count) for JPEG or colour PNG."""
    if values.dtype == np.uint8:
        return values
    return np.rint(scaled(values, 255)).astype(np.uint8)


def grey_for_png(values: np.ndarray) -> Image.Image:
    """A 2-D grey array as an L or I;16 image, exact whenever the values fit 16 bits."""
    if values.dtype in (np.uint8, np.uint16):
        return Image.fromarray(np.ascontiguousarray(values))
    if np.issubdtype(values.dtype, np.integer):
        shifted = values.astype(np.int64) - min(int(values.min()), 0)
        if int(shifted.max()) <= 65535:
            return Image.fromarray(shifted.astype(np.uint16))
        return Image.fromarray(np.rint(range_scaled(values, 65535)).astype(np.uint16))
    return Image.fromarray(np.rint(scaled(values, 65535)).astype(np.uint16))
