"""Lazy references to evaluation images (files, bytes, tar members, arrays, DICOM frames) that load as RGB.

A dataset adapter lists references, not decoded pixels, so a 30k-image benchmark costs no
memory until it is embedded, and each reference has a stable identity for the cache key.
Encoded images decode through `biomedica.models.decode_image`, as curate's do; `load(side)`
with the model's input side allows the same reduced-scale JPEG decode (arrays and DICOM ignore it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from biomedica.models.decode import decode_image, scale_to_uint8, to_rgb  # noqa: F401 - to_rgb re-exported


def array_to_rgb(pixels: np.ndarray) -> Image.Image:
    """An image from an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array of any numeric dtype."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.dtype != np.uint8:
        pixels = scale_to_uint8(pixels)
    return Image.fromarray(pixels).convert("RGB")


@dataclass(frozen=True)
class FileImage:
    """An image file on disk."""

    path: Path

    def load(self, side: int | None = None) -> Image.Image:
        return decode_image(self.path, side)

    def identity(self) -> str:
        stat = self.path.stat()
        return f"file:{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


@dataclass(frozen=True)
class BytesImage:
    """Encoded image bytes held in memory (a Parquet cell, a Hugging Face row)."""

    data: bytes
    name: str

    def load(self, side: int | None = None) -> Image.Image:
        return decode_image(self.data, side)

    def identity(self) -> str:
        import hashlib

        return f"bytes:{self.name}:{hashlib.sha1(self.data).hexdigest()}"


@dataclass(frozen=True)
class FileSliceImage:
    """Encoded image bytes at an offset inside a file (a tar member), read with one seek."""

    path: Path
    offset: int
    size: int
    name: str

    def load(self, side: int | None = None) -> Image.Image:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read(self.size)
        if len(data) != self.size:
            raise ValueError(f"{self.path}: member {self.name} is truncated; re-download or rebuild the shard")
        return BytesImage(data, self.name).load(side)

    def identity(self) -> str:
        stat = self.path.stat()
        return f"slice:{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{self.offset}:{self.size}"


@dataclass(frozen=True, eq=False)
class ArrayImage:
    """One image of an in-memory array (a MedMNIST .npz row)."""

    pixels: np.ndarray
    name: str

    def load(self, side: int | None = None) -> Image.Image:
        return array_to_rgb(self.pixels)

    def identity(self) -> str:
        return f"array:{self.name}"


def dicom_frame_to_rgb(dataset, pixels: np.ndarray) -> Image.Image:
    """One decoded DICOM frame as 8-bit RGB: VOI LUT/window for grey images, palette LUTs applied.

    pydicom's pixel_array already converts YBR colour to RGB, so colour frames only need scaling.
    """
    from pydicom.pixels import apply_color_lut, apply_voi_lut

    photometric = str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2"))
    if photometric.startswith("MONOCHROME"):
        try:
            pixels = apply_voi_lut(pixels, dataset)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):
            pass
        grey = scale_to_uint8(pixels)
        if photometric == "MONOCHROME1":
            grey = 255 - grey
        return Image.fromarray(grey).convert("RGB")
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, dataset)
        if pixels.dtype != np.uint8:  # 16-bit LUT entries: keep the palette's own scale, no stretching
            return Image.fromarray((pixels.astype(np.uint32) >> 8).astype(np.uint8)).convert("RGB")
    return array_to_rgb(pixels)


@dataclass(frozen=True)
class DicomImage:
    """One frame of a DICOM file, windowed to 8 bits (VOI LUT / window tags when present)."""

    path: Path
    frame: int | None = None

    def load(self, side: int | None = None) -> Image.Image:
        import pydicom

        dataset = pydicom.dcmread(self.path)
        pixels = dataset.pixel_array
        if int(getattr(dataset, "NumberOfFrames", 1) or 1) > 1:
            pixels = pixels[self.frame or 0]
        return dicom_frame_to_rgb(dataset, pixels)

    def identity(self) -> str:
        stat = self.path.stat()
        return f"dicom:{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{self.frame}"


ImageRef = FileImage | BytesImage | FileSliceImage | ArrayImage | DicomImage
