"""Training-ready copies of archive images: decoded once, resized, re-encoded small (`select --image-size`).

The archive keeps figures as published (multi-megapixel JPEGs and lossless PNGs), which costs a
training loader most of its time in decode and resize. OpenCLIP's train transform is
RandomResizedCrop(224, scale=(0.9, 1.0)) on the decoded image, so a copy whose shorter side is a
little above 224 gives the crop nearly the same pixels at a fraction of the decode cost and bytes.

Defaults picked by measurement (`python benchmarks/training_images.py`, 33 real fixture figures as
the archive stores them, 120.9 kB/sample, 20 RandomResizedCrop(224, scale=(0.9, 1), ratio=(3/4, 4/3))
boxes each, applied to the original and to the copy): median PSNR (dB) of the copy's 224x224 crop
vs the original's, and mean kB per sample; "resize" = the resized pixels before encoding.

    size  resize  jpeg q75    q80         q85         q90         q95         q90 4:2:0   webp q90
    224   42.0    36.2 12.7   37.0 14.0   37.9 15.9   39.1 19.0   41.1 25.1   36.5 16.7   37.4 10.7
    256   41.4    36.9 16.1   37.6 17.7   38.2 20.0   39.4 23.6   40.7 30.8   37.9 20.2   38.4 12.8
    288   43.8    38.9 18.9   39.6 20.7   40.5 23.4   41.6 27.6   42.9 36.0   39.9 23.7   40.5 15.0
    320   45.5    40.0 21.6   40.9 23.8   42.0 26.9   43.1 31.8   44.5 41.6   41.1 27.3   41.7 17.3
    384   50.4    42.2 28.9   43.1 31.4   44.5 35.0   46.2 40.7   48.4 52.3   42.0 34.3   43.0 21.7

(jpeg columns 4:4:4.) Chosen: 288 px shorter side, JPEG q85 4:4:4 - the smallest size whose median
reaches ~40 dB / SSIM 0.98 at the fewest bytes: 40.5 dB, SSIM median 0.994 (5th percentile 37.8 dB /
0.969), 23.4 kB/sample (5.2x fewer than the originals), decode + crop ~2 ms vs ~10-14 ms for the
originals on one core. Why 288: the crop's shorter side is at least sqrt(0.9 * 3/4) = 0.82 of the
image's, so from ~273 px up no crop is ever upsampled (the 5th-percentile resize-only PSNR jumps
from 37.5 dB at 256 to 40.4 at 288); 224/256 need q95 and more bytes for the same median. 320 q80 is
as good per byte but has 23% more pixels to decode. WebP q90 at 288: same fidelity at 64% of the
bytes, but ~2x the encode and ~1.4x the decode time: choose it when bandwidth, not CPU, is the bound.

Stage-free: Pillow and numpy only; the select stage calls `make_training_image` per sample.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, get_args

from PIL import Image, ImageCms, ImageOps

from biomedica.images.errors import IMAGE_EMPTY, IMAGE_UNSUPPORTED, ImageError
from biomedica.images.prepare import ImageConfig, _jpeg_ready, _load, _open, _scientific_tiff
from biomedica.images.sniff import sniff_format

ResizeMode = Literal["shorter-side", "longer-side", "center-crop"]
TrainingFormat = Literal["jpeg", "webp"]

DEFAULT_SIZE = 288  # measured: see the module docstring
DEFAULT_QUALITY = 85
MIN_SIZE = 32
MAX_SIZE = 16384  # WebP's own limit; far above any training resolution
WEBP_METHOD = 4  # libwebp effort 0..6: 4 is libwebp's own default (speed/size balance)
# JPEG chroma: 4:4:4 (Pillow's subsampling=0) at every quality. Measured: at equal bytes it beats 4:2:0
# by 0.5-1.5 dB median and ~2.5 dB at the 5th percentile on figures (coloured text and lines), e.g. 288 px
# q85 4:4:4 23.4 kB 40.5 dB vs q90 4:2:0 23.7 kB 39.9 dB. The archive's lossy path never subsamples either.
JPEG_SUBSAMPLING = 0
_EXTENSIONS = {"jpeg": "jpg", "webp": "webp"}
_KEEPABLE_FORMATS = {"jpeg": "JPEG", "webp": "WEBP"}  # Pillow's format name whose bytes may be kept
_DRAFT_FORMATS = frozenset({"JPEG", "MPO"})
_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that turn the image by 90 degrees
_DECODE_LIMITS = ImageConfig()  # the archive's decompression-bomb guard
RESIZE_REDUCING_GAP = 3.0  # Pillow: box-reduce first while >= 3x the target, then LANCZOS (near-exact, faster)


@dataclass(frozen=True)
class TrainingImageSpec:
    """What a training-ready copy looks like: its size rule and encoding (recorded in selection.json)."""

    size: int  # pixels, >= 32: the shorter side (shorter-side, center-crop) or longer side (longer-side)
    mode: ResizeMode = "shorter-side"
    format: TrainingFormat = "jpeg"
    quality: int = DEFAULT_QUALITY  # 1..100

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ValueError(
                f"image size must be a whole number of pixels in {MIN_SIZE}..{MAX_SIZE}, got {self.size!r}; "
                f"use e.g. --image-size {DEFAULT_SIZE}"
            )
        if self.mode not in get_args(ResizeMode):
            raise ValueError(
                f"resize mode must be one of {', '.join(get_args(ResizeMode))}, got {self.mode!r}; "
                "use e.g. --resize-mode shorter-side"
            )
        if self.format not in get_args(TrainingFormat):
            raise ValueError(
                f"image format must be one of {', '.join(get_args(TrainingFormat))}, got {self.format!r}; "
                "use e.g. --image-format jpeg"
            )
        if isinstance(self.quality, bool) or not isinstance(self.quality, int) or not 1 <= self.quality <= 100:
            raise ValueError(
                f"quality must be a whole number in 1..100, got {self.quality!r}; use e.g. --quality {DEFAULT_QUALITY}"
            )

    @property
    def extension(self) -> str:
        """The tar member extension: "jpg" | "webp" (OpenCLIP's loader reads jpg;png;jpeg;webp)."""
        return _EXTENSIONS[self.format]

    def to_dict(self) -> dict[str, object]:
        return {"size": self.size, "mode": self.mode, "format": self.format, "quality": self.quality}


@dataclass(frozen=True)
class TrainingImage:
    """The encoded copy and its pixel size (what the copy's FigureRecord fields describe)."""

    data: bytes
    extension: str  # "jpg" | "webp"
    width: int
    height: int


def _scaled(other: int, reference: int, size: int) -> int:
    """`other * size / reference`, rounded half up, at least 1 (integer arithmetic: no float ties)."""
    return max(1, (2 * other * size + reference) // (2 * reference))


def target_size(width: int, height: int, spec: TrainingImageSpec) -> tuple[int, int]:
    """Size after the resize step (before a center-crop), never larger than the source (no upscaling).

    shorter-side and center-crop scale the shorter side to `spec.size`, longer-side the longer side;
    the other side keeps the aspect ratio (rounded to the nearest pixel). A source whose reference
    side is already <= size keeps its size.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    by_longer = spec.mode == "longer-side"
    reference = max(width, height) if by_longer else min(width, height)
    if reference <= spec.size:
        return width, height
    if (width >= height) == by_longer:  # the width is the reference side
        return spec.size, _scaled(height, width, spec.size)
    return _scaled(width, height, spec.size), spec.size


def _cropped_size(width: int, height: int, spec: TrainingImageSpec) -> tuple[int, int]:
    if spec.mode != "center-crop":
        return width, height
    side = min(width, height)
    return side, side


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block means "no orientation", as browsers read it
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """RGB pixels tagged with a non-sRGB profile (Adobe RGB, Display P3, ...) converted to sRGB.

    Training loaders ignore ICC profiles, so the copy carries sRGB pixels and no profile. A profile
    that does not parse, or is not RGB, leaves the pixels as they are.
    """
    if not icc or image.mode != "RGB":
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if source.profile.xcolor_space.strip() != "RGB":
            return image
        if "srgb" in (source.profile.profile_description or "").lower():
            return image
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, AttributeError):
        return image


def _decodable(data: bytes, name: str) -> Image.Image:
    """Open (header only; size limits checked); a TIFF Pillow cannot read goes through tifffile."""
    try:
        return _open(data, name, _DECODE_LIMITS)
    except ImageError as refused:
        sniffed = sniff_format(data)
        if refused.kind == IMAGE_UNSUPPORTED and sniffed is not None and sniffed.name == "tiff":
            fallback = _scientific_tiff(data, name, _DECODE_LIMITS)
            if fallback is not None:
                return fallback
        raise


def encode_training_image(image: Image.Image, spec: TrainingImageSpec, *, subsampling: int | None = None) -> bytes:
    """Encode 8-bit L/RGB pixels with fixed settings (same pixels -> same bytes).

    JPEG: baseline (progressive off, optimize off: Huffman optimisation saves a few % bytes for more
    encode time), chroma 4:4:4 (JPEG_SUBSAMPLING); `subsampling` (Pillow's 0/1/2) overrides it, for the
    benchmark. WebP: lossy, method WEBP_METHOD.
    """
    buffer = io.BytesIO()
    if spec.format == "jpeg":
        image.save(
            buffer, "JPEG", quality=spec.quality, optimize=False, progressive=False,
            subsampling=JPEG_SUBSAMPLING if subsampling is None else subsampling,
        )
    else:
        image.save(buffer, "WEBP", quality=spec.quality, method=WEBP_METHOD, lossless=False, exact=False)
    return buffer.getvalue()


@contextmanager
def _decoding(data: bytes, name: str) -> Iterator[Image.Image]:
    """The opened (checked decodable) image, with Pillow's size and format warnings silenced while it is used."""
    if not data:
        raise ImageError(IMAGE_EMPTY, f"'{name}' is empty (0 bytes); rebuild its archive unit or leave the sample out")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield _decodable(data, name)


def load_training_pixels(data: bytes, name: str = "image", spec: TrainingImageSpec | None = None) -> Image.Image:
    """Decode stored bytes to upright 8-bit L or RGB sRGB pixels (the normalisation steps of make_training_image).

    With `spec`, a JPEG is decoded at reduced scale (libjpeg DCT scaling via Image.draft) to no less
    than twice the size `spec` asks for: the resize after it then sees enough pixels for a clean
    LANCZOS. Without, full resolution. Raises ImageError like make_training_image.
    """
    with _decoding(data, name) as image:
        return _normalised(image, name, spec)


def _normalised(image: Image.Image, name: str, spec: TrainingImageSpec | None) -> Image.Image:
    orientation = _orientation(image)
    swapped = orientation in _SWAPPING_ORIENTATIONS
    if spec is not None and image.format in _DRAFT_FORMATS:
        upright = (image.height, image.width) if swapped else image.size
        target = target_size(*upright, spec)
        if target != upright:
            stored_target = (target[1], target[0]) if swapped else target
            image.draft(None, (2 * stored_target[0], 2 * stored_target[1]))  # type: ignore[arg-type]
    _load(image, name, _DECODE_LIMITS)
    icc = image.info.get("icc_profile")
    source_mode = image.mode
    if orientation != 1:
        image = ImageOps.exif_transpose(image)
    ready = _jpeg_ready(image)
    if source_mode != "CMYK":  # _jpeg_ready already took CMYK through its profile
        ready = _to_srgb(ready, icc)
    return ready


def training_image_from_pixels(image: Image.Image, spec: TrainingImageSpec) -> TrainingImage:
    """Resize (by `target_size`, LANCZOS, reducing_gap 3), center-crop when asked, encode.

    `image`: pixels as load_training_pixels returns them, or any PIL image (e.g. a panel crop),
    which is first brought to 8-bit L/RGB (alpha on white, high depth scaled). Never upscales.
    """
    ready = image if image.mode in ("L", "RGB") else _jpeg_ready(image)
    target = target_size(ready.width, ready.height, spec)
    if ready.size != target:
        ready = ready.resize(target, Image.Resampling.LANCZOS, reducing_gap=RESIZE_REDUCING_GAP)
    final = _cropped_size(*target, spec)
    if final != target:
        left, top = (target[0] - final[0]) // 2, (target[1] - final[1]) // 2
        ready = ready.crop((left, top, left + final[0], top + final[1]))
    return TrainingImage(data=encode_training_image(ready, spec), extension=spec.extension,
                         width=ready.width, height=ready.height)


def make_training_image(data: bytes, spec: TrainingImageSpec, name: str = "image") -> TrainingImage:
    """Decode stored bytes, orient, bring to 8-bit sRGB, resize (no upscaling), optionally center-crop, encode.

    Input: jpg/png as the archive stores them, or anything Pillow (or tifffile) reads. Steps
    (load_training_pixels, then training_image_from_pixels): EXIF orientation applied; 8-bit RGB or L
    (16-bit and float scaled by their type's range, as a browser shows them; alpha laid on white;
    palette -> RGB; CMYK -> RGB through its profile; other ICC profiles -> sRGB, no profile kept);
    resize by `target_size` (JPEG: libjpeg DCT scaling via Image.draft to >= 2x the target first,
    then LANCZOS with reducing_gap 3); center-crop when asked; encode by `encode_training_image`.

    Kept bytes: when nothing would change the pixels - the source is already in the target format
    (JPEG for jpeg, WebP for webp), RGB or L, not larger than the target, with no EXIF rotation, no
    ICC profile and no crop to make - its bytes are returned unchanged (after checking they decode):
    re-encoding would only add loss. Every other source is re-encoded. Output is deterministic.

    Raises ImageError (kind image-empty / image-corrupt / image-unsupported / image-too-large; the
    message names `name` and the fix) on input that does not decode.
    """
    with _decoding(data, name) as image:
        orientation = _orientation(image)
        upright = (image.height, image.width) if orientation in _SWAPPING_ORIENTATIONS else image.size
        target = target_size(*upright, spec)
        if (
            image.format == _KEEPABLE_FORMATS[spec.format]
            and image.mode in ("RGB", "L")
            and target == upright
            and _cropped_size(*target, spec) == target
            and orientation == 1
            and not image.info.get("icc_profile")
        ):
            _load(image, name, _DECODE_LIMITS)  # a kept copy must decode too
            return TrainingImage(data=bytes(data), extension=spec.extension, width=image.width, height=image.height)
        return training_image_from_pixels(_normalised(image, name, spec), spec)
