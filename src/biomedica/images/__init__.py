"""Pixels shared by stages: sniff the real format, store an image as found or losslessly, hash it.

`prepare_image` returns the bytes to store (JPEG/PNG unchanged, other formats as lossless
PNG) with size, SHA-256 and perceptual hash; `perceptual_hash` is the one pHash every
stage compares. `make_training_image` makes the small training-ready copy `select --image-size` writes.
"""

from biomedica.images.phash import perceptual_hash, phash_distance
from biomedica.images.prepare import ImageConfig, ImageError, StoredImage, prepare_image
from biomedica.images.training import (
    TrainingImage,
    TrainingImageSpec,
    load_training_pixels,
    make_training_image,
    target_size,
    training_image_from_pixels,
)

__all__ = [
    "ImageConfig", "ImageError", "StoredImage", "TrainingImage", "TrainingImageSpec", "load_training_pixels",
    "make_training_image", "perceptual_hash", "phash_distance", "prepare_image", "target_size",
    "training_image_from_pixels",
]
