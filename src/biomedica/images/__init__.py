"""Pixels shared by stages: sniff the real format, store an image as found or losslessly, hash it.

`prepare_image` returns the bytes to store (JPEG/PNG unchanged, other formats as lossless
PNG) with size, SHA-256 and perceptual hash; `perceptual_hash` is the one pHash every
stage compares.
"""

from biomedica.images.phash import perceptual_hash, phash_distance
from biomedica.images.prepare import ImageConfig, ImageError, StoredImage, prepare_image

__all__ = ["ImageConfig", "ImageError", "StoredImage", "perceptual_hash", "phash_distance", "prepare_image"]
