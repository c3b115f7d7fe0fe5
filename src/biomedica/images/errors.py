"""The error a figure file raises when it cannot be stored, and its kinds."""

from __future__ import annotations

# ImageError kinds (the `kind` column of errors/*.parquet).
IMAGE_EMPTY = "image-empty"
IMAGE_CORRUPT = "image-corrupt"
IMAGE_TOO_LARGE = "image-too-large"
IMAGE_TOO_SMALL = "image-too-small"
IMAGE_UNSUPPORTED = "image-unsupported"


class ImageError(Exception):
    """A figure file that cannot be stored; `kind` is short and machine-readable."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def too_large_error(name: str, pixels: int | None, limit: int) -> ImageError:
    size = f"{pixels:,} pixels" if pixels else "larger than Pillow's hard limit"
    return ImageError(
        IMAGE_TOO_LARGE,
        f"'{name}' is {size}, over the limit of {limit:,} pixels (decompression-bomb guard); if the "
        "image is genuine, raise ImageConfig.max_pixels (and PIL.Image.MAX_IMAGE_PIXELS when above "
        "twice its value)",
    )
