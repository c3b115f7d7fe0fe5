"""Image bytes for the web apps: thumbnails, and one responder for `GET /api/image/{key}?size=thumb|full`.

Why here: annotate and serve show the same archive images, so both answer the image route the
same way (keys only, never paths; 404 for an unknown key, 400 for a bad size) and share one
thumbnail rule. `full` is the stored bytes as they are (JPEG or PNG, never re-encoded);
`thumb` is a JPEG (quality 85) no larger than `max_side`, made by Pillow from any stored image:
8/16-bit grey, palette, transparency (flattened on white), CMYK. Thumbnails never upscale, and
an image whose header claims more than `max_pixels` is refused before it is decoded (a
decompression bomb in a shard cannot take the server's memory). Thumbnails are kept in an LRU
bounded by bytes, so a grid scrolled twice is decoded once.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from biomedica.web.guard import shorten as _shorten

DEFAULT_THUMB_SIDE = 256
DEFAULT_MAX_PIXELS = 100_000_000  # ~300 MB as RGB; larger figures exist but are not real figures
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
JPEG_QUALITY = 85
SIZES = ("thumb", "full")

ImageSize = Literal["thumb", "full"]
Lookup = Callable[[str], tuple[bytes, str]]  # key -> (stored bytes, media type); KeyError when unknown


class ImageError(ValueError):
    """An image that cannot be made into a thumbnail (unreadable, or over the pixel cap); one-line message."""


class ImageTooLarge(ImageError):
    """The image's header claims more pixels than the cap allows; it is never decoded."""


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS):
    """A lazily opened PIL image of `data`, refused (ImageTooLarge) when its header claims over `max_pixels`.

    Only the header is read here; the caller decodes (`load`) knowing the size is bounded.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own cap below decides
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"image over the {max_pixels:,}-pixel cap; it is not decoded") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"not a readable image ({type(exc).__name__})") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(f"image of {width}x{height} pixels is over the {max_pixels:,}-pixel cap; it is not decoded")
    if width < 1 or height < 1:
        raise ImageError(f"image of {width}x{height} pixels has no content")
    return image


def _to_rgb_or_grey(image):
    """An 'RGB' or 'L' image of any mode: alpha flattened on white, 16-bit and float stretched to 8 bits."""
    from PIL import Image

    mode = image.mode
    if mode in ("RGB", "L"):
        return image
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I") or mode == "F":  # 16/32-bit grey: stretch its own range to 0..255
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        return Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...


def thumbnail(data: bytes, max_side: int = DEFAULT_THUMB_SIDE, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """JPEG bytes (quality 85) of `data` scaled to fit `max_side` x `max_side`; never upscaled.

    Raises ImageError (one line) for bytes Pillow cannot read, ImageTooLarge over `max_pixels`.
    """
    from PIL import Image, ImageOps

    if max_side < 1:
        raise ValueError(f"thumbnail side must be positive, got {max_side}")
    image = open_image(data, max_pixels)
    try:
        if image.format == "JPEG":
            image.draft(image.mode if image.mode in ("RGB", "L") else None, (max_side, max_side))  # DCT scaling
        image.load()
        image = ImageOps.exif_transpose(image)  # as a browser shows the full image
        image = _to_rgb_or_grey(image)
        if max(image.size) > max_side:
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, MemoryError) as exc:
        raise ImageError(f"image could not be decoded ({type(exc).__name__})") from None
    return out.getvalue()


class ImageNotFound(KeyError):
    """No sample with this key (the message names it, shortened)."""


class BadImageSize(ValueError):
    """`size` is not one of thumb|full."""


@dataclass(frozen=True)
class ImageReply:
    data: bytes
    media_type: str


class ImageResponder:
    """Answers `GET /api/image/{key}?size=thumb|full` from a key -> (bytes, media type) lookup.

    Thumbnails are cached (LRU, at most `cache_bytes` of JPEG); full images are read each time
    (the OS page cache holds the shards). Safe to share between request threads.
    """

    def __init__(self, lookup: Lookup, max_side: int = DEFAULT_THUMB_SIDE, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.lookup = lookup
        self.max_side = max_side
        self.cache_bytes = cache_bytes
        self.max_pixels = max_pixels
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()

    @property
    def cached(self) -> tuple[int, int]:
        """(thumbnails, bytes) held in the cache now."""
        with self._lock:
            return len(self._cache), self._cached_bytes

    def _stored(self, key: str) -> tuple[bytes, str]:
        try:
            return self.lookup(key)
        except KeyError:
            raise ImageNotFound(f"no sample {_shorten(key)!r} in this archive") from None

    def get(self, key: str, size: str = "full") -> ImageReply:
        """The reply bytes; ImageNotFound (unknown key), BadImageSize, ImageError (a thumbnail that cannot be made)."""
        if size not in SIZES:
            raise BadImageSize(f"size must be thumb or full, not {_shorten(str(size), 20)!r}")
        if size == "full":
            return ImageReply(*self._stored(key))
        with self._lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
                return ImageReply(data, "image/jpeg")
        data = thumbnail(self._stored(key)[0], self.max_side, self.max_pixels)
        self._remember(key, data)
        return ImageReply(data, "image/jpeg")

    def _remember(self, key: str, data: bytes) -> None:
        if len(data) > self.cache_bytes:
            return
        with self._lock:
            old = self._cache.pop(key, None)
            if old is not None:
                self._cached_bytes -= len(old)
            self._cache[key] = data
            self._cached_bytes += len(data)
            while self._cached_bytes > self.cache_bytes:
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= len(dropped)

    def respond(self, key: str, size: str = "full"):
        """A Starlette Response: the image (cacheable), or a one-line JSON error (404, 400, 422)."""
        from starlette.responses import JSONResponse, Response

        try:
            reply = self.get(key, size)
        except ImageNotFound as exc:
            return JSONResponse({"detail": exc.args[0]}, status_code=404)
        except BadImageSize as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        except ImageError as exc:
            return JSONResponse({"detail": f"image {_shorten(key)!r}: {exc}"}, status_code=422)
        return Response(reply.data, media_type=reply.media_type,
                        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})
