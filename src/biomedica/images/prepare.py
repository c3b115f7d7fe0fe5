"""Turn one figure file's bytes into the image stored in a shard: verified, sized, hashed.

JPEG and PNG bytes are stored unchanged (re-encoding a JPEG loses quality and changes its
hash); everything else Pillow decodes (TIFF, GIF, BMP, WebP, JPEG 2000, ...) becomes a PNG,
losslessly, or a JPEG when the user asks for lossy output. The format is sniffed from the
bytes, never trusted from the extension. Each file is decoded once: JPEGs at reduced scale
(libjpeg DCT scaling), which still reads every entropy-coded byte, so truncation is caught.
TIFFs Pillow cannot read (64-bit float, ...) go through tifffile when it is installed.

Bad input raises ImageError with a short `kind` and a message that names the file and the
fix; Pillow's decompression-bomb warning and error become `image-too-large`.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageCms,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
)

from biomedica.images.depth import grey_for_png, to_8_bit
from biomedica.images.errors import (
    IMAGE_CORRUPT,
    IMAGE_EMPTY,
    IMAGE_TOO_SMALL,
    IMAGE_UNSUPPORTED,
    ImageError,
    too_large_error,
)
from biomedica.images.phash import JPEG_DRAFT_SIDE, perceptual_hash
from biomedica.images.scientific_tiff import decode_first_page, first_page_shape
from biomedica.images.sniff import sniff_format
from biomedica.io.redact import redact

# Pillow formats whose bytes are stored as they are, and their tar member extension.
_KEPT_FORMATS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png"}  # MPO: a JPEG with extra views
# Formats Pillow identifies but cannot rasterise on its own.
_VECTOR_FORMATS = frozenset({"EPS", "PDF"})
# Modes a PNG holds as they are; everything else is converted first (see _png_ready).
_PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I;16B"})
PNG_COMPRESS_LEVEL = 6  # fixed so the same input always gives the same bytes


@dataclass(frozen=True)
class ImageConfig:
    """How figure images are stored and which ones are refused."""

    lossy_format: bool = False  # False: TIFF/GIF/BMP/other -> PNG (lossless); True -> JPEG
    jpeg_quality: int = 95  # only when lossy_format; chroma is never subsampled (figures hold text)
    max_pixels: int = 178_956_970  # refuse bigger (decompression bomb): Pillow's own hard limit
    min_side: int = 1  # refuse images narrower or lower than this

    def __post_init__(self) -> None:
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"ImageConfig.jpeg_quality must be 1..100, got {self.jpeg_quality}")
        if self.max_pixels < 1 or self.min_side < 1:
            raise ValueError(
                f"ImageConfig.max_pixels and min_side must be >= 1, got {self.max_pixels} and {self.min_side}"
            )


@dataclass(frozen=True)
class StoredImage:
    """The image as it goes into the shard, with what the figure record needs about it."""

    data: bytes  # bytes to store in the shard (original bytes for JPEG/PNG)
    format: str  # "jpg" | "png" (the tar member extension)
    width: int
    height: int
    sha256: str  # hex of `data`
    phash: str  # 64-bit perceptual hash as 16 hex digits (see phash.py for the bit order)
    converted_from: str | None  # Pillow's format name lower-cased ("tiff", "gif"); None when kept


# The Pillow reader to ask for its reason when bytes with a known header fail to open.
_READERS: dict[str, type[Image.Image]] = {
    "jpeg": JpegImagePlugin.JpegImageFile,
    "png": PngImagePlugin.PngImageFile,
    "gif": GifImagePlugin.GifImageFile,
    "tiff": TiffImagePlugin.TiffImageFile,
    "bmp": BmpImagePlugin.BmpImageFile,
}
_UNSUPPORTED_HINTS = ("unknown pixel mode", "unsupported", "not supported")


def _reader_reason(data: bytes, format_name: str) -> str:
    """Why Pillow's reader for `format_name` refuses `data` (Image.open only says 'cannot identify')."""
    reader = _READERS.get(format_name)
    if reader is None:
        return "no reader in this Pillow build"
    try:
        reader(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any reader failure is the reason we report
        return redact(str(exc)) or type(exc).__name__
    return "unknown reason"


def _unidentified(data: bytes, name: str) -> ImageError:
    """Explain bytes that no Pillow plugin accepts."""
    sniffed = sniff_format(data)
    if sniffed is None:
        return ImageError(
            IMAGE_CORRUPT,
            f"'{name}' is not an image file (its first bytes match no image format); the file is damaged or "
            "mislabelled: fetch it again from the source",
        )
    if sniffed.name == "html":
        return ImageError(
            IMAGE_CORRUPT,
            f"'{name}' is an HTML page, not an image: the server sent an error or login page "
            "instead of the file; fetch it again",
        )
    if sniffed.is_raster:
        reason = _reader_reason(data, sniffed.name)
        if any(hint in reason.lower() for hint in _UNSUPPORTED_HINTS):
            return ImageError(
                IMAGE_UNSUPPORTED,
                f"'{name}' is a {sniffed.name.upper()} whose pixel layout Pillow cannot decode ({reason}; "
                "e.g. 64-bit float samples); convert it to an 8- or 16-bit PNG, or install tifffile, "
                "which reads such TIFFs",
            )
        return ImageError(
            IMAGE_CORRUPT,
            f"'{name}' has a {sniffed.name.upper()} header but does not open ({reason}); the file is "
            "damaged or truncated: fetch it again",
        )
    return ImageError(
        IMAGE_UNSUPPORTED,
        f"'{name}' is a {sniffed.name.upper()} file, not a raster image; PMC packages usually hold a "
        ".jpg/.gif rendition of the figure beside it: use that, or convert this file to PNG",
    )


def _check_size(size: tuple[int, int], name: str, config: ImageConfig) -> None:
    width, height = size
    if width * height > config.max_pixels:
        raise too_large_error(name, width * height, config.max_pixels)
    if min(width, height) < config.min_side:
        raise ImageError(
            IMAGE_TOO_SMALL,
            f"'{name}' is {width}x{height} pixels, below the minimum side of {config.min_side}; "
            "lower ImageConfig.min_side to keep such images",
        )


def _scientific_tiff(data: bytes, name: str, config: ImageConfig) -> Image.Image | None:
    """A TIFF Pillow refused, decoded by tifffile when installed (see scientific_tiff.py)."""
    size = first_page_shape(data)
    if size is None:
        return None
    _check_size(size, name, config)
    return decode_first_page(data)


def _open(data: bytes, name: str, config: ImageConfig) -> Image.Image:
    """Open (header only) and check the size limits before any pixel is decoded."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise too_large_error(name, None, config.max_pixels) from None
    except UnidentifiedImageError:
        raise _unidentified(data, name) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(IMAGE_CORRUPT, f"'{name}' cannot be opened ({redact(str(exc))}); fetch the file again") from None
    _check_size(image.size, name, config)
    if image.format in _VECTOR_FORMATS:
        raise ImageError(
            IMAGE_UNSUPPORTED,
            f"'{name}' is {image.format}, which Pillow cannot rasterise without Ghostscript; PMC "
            "packages usually hold a .jpg/.gif rendition of the figure beside it: use that",
        )
    return image


def _load(image: Image.Image, name: str, config: ImageConfig) -> None:
    """Decode the pixels; a truncated or damaged file or a missing codec becomes an ImageError."""
    try:
        image.load()
    except Image.DecompressionBombError:
        raise too_large_error(name, None, config.max_pixels) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        reason = redact(str(exc))
        if "not available" in reason or "Ghostscript" in reason:
            raise ImageError(
                IMAGE_UNSUPPORTED,
                f"'{name}' is {image.format} encoded in a way this Pillow build cannot decode ({reason}); "
                "convert it to PNG, or install a Pillow built with that codec",
            ) from None
        raise ImageError(
            IMAGE_CORRUPT,
            f"'{name}' is a {image.format} file that does not decode ({reason}); it is damaged or "
            "truncated: fetch it again",
        ) from None


def _stored(data: bytes, fmt: str, size: tuple[int, int], phash: str, converted_from: str | None) -> StoredImage:
    return StoredImage(
        data=data,
        format=fmt,
        width=size[0],
        height=size[1],
        sha256=hashlib.sha256(data).hexdigest(),
        phash=phash,
        converted_from=converted_from,
    )


def _keep(data: bytes, image: Image.Image, name: str, config: ImageConfig) -> StoredImage:
    """Check a JPEG/PNG decodes, then store its bytes unchanged."""
    size = image.size
    if image.format == "PNG":
        # Pillow's load() skips the CRCs of image data chunks; verify() checks every chunk.
        try:
            image.verify()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(
                IMAGE_CORRUPT, f"'{name}' is a PNG file that fails its checksums ({redact(str(exc))}); fetch it again"
            ) from None
        image = Image.open(io.BytesIO(data))  # verify() leaves the image unusable
    else:
        # JPEG: Pillow's verify() checks nothing, the (reduced-scale) load below does.
        image.draft("L", (JPEG_DRAFT_SIDE, JPEG_DRAFT_SIDE))
    _load(image, name, config)
    return _stored(data, _KEPT_FORMATS[image.format], size, perceptual_hash(image), None)


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    """CMYK to RGB through the embedded ICC profile when there is one (colours as printed)."""
    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            rgb = None  # a broken profile: fall back to the plain formula
        if rgb is not None:
            return _untagged(rgb)
    return _untagged(image.convert("RGB"))


def _untagged(image: Image.Image) -> Image.Image:
    """Drop an ICC profile that described the old colour space (untagged RGB reads as sRGB)."""
    image.info.pop("icc_profile", None)
    return image


def _png_ready(image: Image.Image) -> Image.Image:
    """The same pixels in a mode PNG stores: alpha, palette and 16-bit depth are kept."""
    mode = image.mode
    if mode in _PNG_MODES:
        return image
    if mode in ("I;16L", "I;16N"):
        return image.convert("I;16")
    if mode in ("I", "F"):  # 32-bit int / float grey: PNG has no such samples
        return grey_for_png(np.asarray(image))
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode == "LAB":
        lab_to_srgb = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
        return _untagged(ImageCms.applyTransform(image, lab_to_srgb))
    if mode in ("PA", "RGBa"):
        return image.convert("RGBA")
    if mode == "La":
        return image.convert("LA")
    return image.convert("RGB")  # YCbCr, HSV, RGBX and the rest


def _jpeg_ready(image: Image.Image) -> Image.Image:
    """8-bit L or RGB for JPEG: transparency laid on white, high depth scaled down."""
    if image.mode in ("I;16", "I;16L", "I;16N", "I;16B", "I", "F"):
        return Image.fromarray(to_8_bit(np.asarray(image)))
    image = _png_ready(image)
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("1",):
        return image.convert("L")
    has_alpha = image.mode in ("LA", "RGBA") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _encode(image: Image.Image, config: ImageConfig) -> tuple[bytes, str]:
    """Encode with fixed settings, so the same pixels always give the same bytes."""
    buffer = io.BytesIO()
    # Keep the ICC profile only when the colour space is unchanged (CMYK/LAB became sRGB).
    icc = image.info.get("icc_profile") if image.mode in ("L", "LA", "RGB", "RGBA", "P") else None
    if config.lossy_format:
        image.save(buffer, "JPEG", quality=config.jpeg_quality, subsampling=0, optimize=False, icc_profile=icc)
        return buffer.getvalue(), "jpg"
    image.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False, icc_profile=icc)
    return buffer.getvalue(), "png"


def _convert(image: Image.Image, name: str, config: ImageConfig, source_format: str) -> StoredImage:
    """Decode the first frame/page and store it as PNG (or JPEG when lossy)."""
    _load(image, name, config)  # frame 0: the first page of a TIFF, the first frame of a GIF
    ready = _jpeg_ready(image) if config.lossy_format else _png_ready(image)
    data, fmt = _encode(ready, config)
    return _stored(data, fmt, ready.size, perceptual_hash(ready), source_format)


def prepare_image(data: bytes, name: str, config: ImageConfig = ImageConfig()) -> StoredImage:
    """Verify one figure file and return what to store; raises ImageError for bad input.

    `name` is only used in error messages (the file's name or path in its package).
    Pillow's warnings are silenced with warnings.catch_warnings, which is process-wide: call
    this from one thread per process (the ingest pool uses processes).
    """
    if not data:
        raise ImageError(
            IMAGE_EMPTY,
            f"'{name}' is empty (0 bytes): the download or package extraction was cut short; fetch it again",
        )
    with warnings.catch_warnings():
        # The size check in _open replaces Pillow's bomb warning; Pillow's data-quality warnings
        # (corrupt EXIF, odd TIFF tags) would flood the log over millions of images.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            image = _open(data, name, config)
        except ImageError as refused:
            sniffed = sniff_format(data)
            fallback = None
            if refused.kind == IMAGE_UNSUPPORTED and sniffed is not None and sniffed.name == "tiff":
                fallback = _scientific_tiff(data, name, config)
            if fallback is None:
                raise
            return _convert(fallback, name, config, "tiff")
        if image.format in _KEPT_FORMATS:
            return _keep(data, image, name, config)
        return _convert(image, name, config, (image.format or "unknown").lower())
