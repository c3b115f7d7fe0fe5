"""Decode the first page of TIFFs Pillow cannot read (64-bit float, float colour) with tifffile.

Microscopy and analysis tools write such files. Grey stays 16-bit where it fits, colour
becomes 8-bit (rules in depth.py). tifffile is optional (it comes with scikit-image);
without it such files stay `image-unsupported`.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from biomedica.images.depth import grey_for_png, to_8_bit

_CHANNEL_MODES = {2: "LA", 3: "RGB", 4: "RGBA"}


def first_page_shape(data: bytes) -> tuple[int, int] | None:
    """(width, height) of the first page, read from the header only; None if unreadable."""
    try:
        import tifffile
    except ImportError:
        return None
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            page = tiff.pages[0]
            return int(page.imagewidth), int(page.imagelength)
    except Exception:  # noqa: BLE001 - any tifffile failure means "cannot help"
        return None


def decode_first_page(data: bytes) -> Image.Image | None:
    """The first page as a Pillow image PNG can store; None without tifffile or for layouts it cannot map."""
    try:
        import tifffile
    except ImportError:
        return None
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            page = tiff.pages[0]
            values, axes = page.asarray(), page.axes
    except Exception:  # noqa: BLE001 - a damaged file: the caller reports Pillow's reason
        return None
    if axes == "SYX":  # planar colour: samples first
        values, axes = np.moveaxis(values, 0, -1), "YXS"
    if axes == "YXS" and values.shape[-1] == 1:
        values, axes = values[..., 0], "YX"
    if axes == "YX" and values.ndim == 2:
        return grey_for_png(values)
    if axes == "YXS" and values.ndim == 3 and values.shape[-1] in _CHANNEL_MODES:
        return Image.fromarray(np.ascontiguousarray(to_8_bit(values)))  # LA / RGB / RGBA from the shape
    return None
