"""Name a file's real format from its first bytes, to explain why an image was refused.

Pillow identifies the formats it can decode; this covers what it cannot, so the error says
"this is a PDF" or "this is an HTML error page" instead of "cannot identify image file".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sniffed:
    """What the leading bytes say a file is, and whether it is a raster image format."""

    name: str  # short format name: "jpeg", "png", "tiff", "pdf", "html", ...
    is_raster: bool  # a raster format Pillow normally decodes (so failure means damage)


_RASTER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "bigtiff"),
    (b"MM\x00+", "bigtiff"),
    (b"BM", "bmp"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "jpeg2000"),
    (b"\xff\x4f\xff\x51", "jpeg2000"),
)

_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "pdf"),
    (b"%!PS", "postscript"),
    (b"\xc5\xd0\xd3\xc6", "eps"),  # DOS EPS binary header
    (b"PK\x03\x04", "zip"),
    (b"\x1f\x8b", "gzip"),
)


def sniff_format(data: bytes) -> Sniffed | None:
    """Return the format the leading bytes show, or None when they match nothing known."""
    head = data[:512]
    if len(data) >= 132 and data[128:132] == b"DICM":  # before TIFF: many DICOM preambles are "II*\0"
        return Sniffed("dicom", is_raster=False)
    for magic, name in _RASTER_MAGIC:
        if head.startswith(magic):
            return Sniffed(name, is_raster=True)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Sniffed("webp", is_raster=True)
    for magic, name in _OTHER_MAGIC:
        if head.startswith(magic):
            return Sniffed(name, is_raster=False)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html")):
        return Sniffed("html", is_raster=False)
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return Sniffed("svg", is_raster=False)
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        return Sniffed("xml", is_raster=False)
    return None
