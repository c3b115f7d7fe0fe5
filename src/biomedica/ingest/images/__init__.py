"""Figure images: find the file a graphic names, verify and store it, and hash it.

`resolve_graphic` picks the file, `prepare_image` returns the bytes to store (JPEG/PNG
unchanged, other formats as lossless PNG) with size, SHA-256 and perceptual hash.
"""

from biomedica.ingest.images.phash import perceptual_hash, phash_distance
from biomedica.ingest.images.prepare import ImageConfig, ImageError, StoredImage, prepare_image
from biomedica.ingest.images.resolve import resolve_graphic

__all__ = [
    "ImageConfig",
    "ImageError",
    "StoredImage",
    "perceptual_hash",
    "phash_distance",
    "prepare_image",
    "resolve_graphic",
]
