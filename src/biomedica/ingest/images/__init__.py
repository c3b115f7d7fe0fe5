"""Moved: pixels to `biomedica.images`, graphic file lookup to `biomedica.ingest.resolve_images`.

This old import path stays as an alias for one release.
"""

from biomedica.images import ImageConfig, ImageError, StoredImage, perceptual_hash, phash_distance, prepare_image
from biomedica.ingest.resolve_images import resolve_graphic

__all__ = [
    "ImageConfig",
    "ImageError",
    "StoredImage",
    "perceptual_hash",
    "phash_distance",
    "prepare_image",
    "resolve_graphic",
]
