"""Real medical images that installed packages ship (pydicom, scikit-image), as small 8-bit pictures.

The demo must run offline, so every picture comes from files already on disk: pydicom's test
files (and the pydicom-data package beside it) and the images bundled in the scikit-image
wheel. Nothing here downloads: pydicom is asked with `download=False`, and scikit-image files
are read from the wheel's `data/` folder directly, never through its pooch fetchers. A source
whose package or file is missing is skipped, and the caller is told which and why.

Each source carries the facts a truthful caption needs (modality, body part or specimen,
plane, stain) as data, so captions never describe what the picture does not show.
"""

from __future__ import annotations

import importlib.util
import random
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Decoded sources are cut down to this side once, before any per-figure crop.
_BASE_MAX_SIDE = 640


@dataclass(frozen=True)
class DisplayWindow:
    """A CT display window in Hounsfield units, named as radiologists name it."""

    name: str  # "brain", "bone", "soft-tissue"
    level: int
    width: int


@dataclass(frozen=True)
class ImageSource:
    """One real image file shipped by an installed package, with what it shows."""

    name: str  # stable id, e.g. "ct-head"
    modality: str  # coarse class counted by the demo: ct, mri, xray, ultrasound, ...
    package: str  # "pydicom" | "scikit-image"
    files: tuple[str, ...]  # file names to try in order (the first one found is used)
    subject: str  # what is imaged, e.g. "the head", "colonic glands"
    technique: str  # how, e.g. "non-contrast CT", "colour Doppler ultrasound"
    topic: str = ""  # short noun phrase for titles and keywords, e.g. "head CT"
    discipline: str = ""  # the article subject it suits, e.g. "Radiology"
    plane: str | None = None  # axial, coronal, frontal, ... when known
    windows: tuple[DisplayWindow, ...] = ()  # CT only: one is picked per figure
    frames: bool = False  # multi-frame: one frame is picked per figure
    may_flip: bool = True  # False where a mirror image would make the caption false
    may_rotate: bool = False  # microscopy has no up
    min_crop: float = 0.78  # smallest kept fraction of each side, so the subject stays in view
    credit: str = ""  # the file and its author, for an attribution sentence in some captions


@dataclass(frozen=True)
class RenderedImage:
    """A picture ready to save, with the facts of this particular rendering."""

    image: Image.Image
    source: ImageSource
    window: DisplayWindow | None = None
    frame: int | None = None
    flipped: bool = False
    rotated: int = 0  # degrees, multiple of 90


@dataclass(frozen=True)
class SourceCatalogue:
    """The sources found on this machine, and the ones skipped with the reason."""

    sources: tuple[ImageSource, ...]
    skipped: tuple[str, ...] = field(default_factory=tuple)


_CT_BRAIN = DisplayWindow("brain", 40, 80)
_CT_BONE = DisplayWindow("bone", 400, 2000)
_CT_SOFT = DisplayWindow("soft-tissue", 40, 400)
_CT_SUBDURAL = DisplayWindow("subdural", 50, 350)

IMAGE_SOURCES: tuple[ImageSource, ...] = (
    ImageSource(
        "ct-head", "ct", "pydicom", ("693_UNCR.dcm", "693_UNCI.dcm"),
        subject="the head", technique="non-contrast CT", plane="axial",
        windows=(_CT_BRAIN, _CT_BONE, _CT_SUBDURAL), may_flip=False,
        topic="head CT", discipline="Neuroradiology",
        credit="file 693_UNCR",
    ),
    ImageSource(
        "ct-spine", "ct", "pydicom", ("CT_small.dcm",),
        subject="a thoracic vertebral body and the paraspinal muscles", technique="CT", plane="axial",
        windows=(_CT_SOFT, _CT_BONE), may_flip=False,
        topic="spinal CT", discipline="Radiology",
        credit="file CT_small, from the NEMA WG04 CT1 set",
    ),
    ImageSource(
        "mri-abdomen", "mri", "pydicom", ("MR-SIEMENS-DICOM-WithOverlays.dcm", "examples_overlay.dcm"),
        subject="the upper abdomen at the level of the liver and both kidneys",
        technique="T1-weighted fat-suppressed gradient-echo (VIBE) MRI", plane="axial", may_flip=False,
        topic="abdominal MRI", discipline="Radiology",
        credit="an abdominal MR example file",
    ),
    ImageSource(
        "mri-shoulder", "mri", "pydicom", ("MR2_UNCR.dcm", "MR2_UNCI.dcm"),
        subject="the shoulder joint and proximal humerus", technique="T1-weighted spin-echo MRI",
        plane="coronal", topic="shoulder MRI", discipline="Musculoskeletal Imaging",
        credit="file MR2_UNCR, from the NEMA WG04 MR2 set",
    ),
    ImageSource(
        "xray-chest", "xray", "pydicom", ("RG1_UNCR.dcm", "RG1_UNCI.dcm"),
        subject="the chest", technique="computed radiography", plane="frontal", may_flip=False,
        topic="chest radiography", discipline="Radiology",
        credit="file RG1_UNCR, from the NEMA WG04 RG1 set",
    ),
    ImageSource(
        "xray-leg", "xray", "pydicom", ("RG3_UNCR.dcm", "RG3_UNCI.dcm"),
        subject="the distal tibia and fibula in a patient with a non-ossifying fibroma of the distal tibia",
        technique="computed radiography", may_flip=False,
        topic="bone tumours of the tibia", discipline="Musculoskeletal Imaging",
        credit="file RG3_UNCR, from the NEMA WG04 RG3 set",
    ),
    ImageSource(
        "nm-bone", "nuclear_medicine", "pydicom", ("JPEG2000_UNC.dcm",),
        subject="the skeleton", technique="whole-body planar bone scintigraphy",
        may_flip=False, topic="bone scintigraphy", discipline="Nuclear Medicine",
        credit="file JPEG2000_UNC",
    ),
    ImageSource(
        "us-lymph-node", "ultrasound", "pydicom", ("US1_UNCR.dcm", "examples_rgb_color.dcm"),
        subject="a lymph node", technique="colour Doppler ultrasound", may_flip=False,
        topic="lymph node ultrasound", discipline="Radiology",
        credit="a NEMA WG04 US1 example file",
    ),
    ImageSource(
        "us-tee", "ultrasound", "pydicom", ("color-pl.dcm",),
        subject="the heart", technique="colour Doppler transoesophageal echocardiography",
        may_flip=False, topic="transoesophageal echocardiography", discipline="Cardiology",
        credit="file color-pl",
    ),
    ImageSource(
        "us-echo", "ultrasound", "pydicom", ("examples_ybr_color.dcm",),
        subject="the heart in an apical view", technique="B-mode echocardiography", frames=True,
        may_flip=False, topic="echocardiography", discipline="Cardiology",
        credit="file examples_ybr_color",
    ),
    ImageSource(
        "us-pelvis", "ultrasound", "pydicom", ("gdcm-US-ALOKA-16.dcm",),
        subject="the pelvis in two side-by-side views", technique="B-mode ultrasound", may_flip=False,
        topic="pelvic ultrasound", discipline="Obstetrics and Gynaecology",
        credit="file gdcm-US-ALOKA-16",
    ),
    ImageSource(
        "fundus-retina", "fundus", "scikit-image", ("retina.jpg",),
        subject="a normal left eye with the optic disc, macula and retinal vessels",
        technique="colour fundus photography", may_flip=False, min_crop=0.93,
        topic="retinal imaging", discipline="Ophthalmology",
        credit="the retina image by M. Häggström (CC0)",
    ),
    ImageSource(
        "fundus-microaneurysms", "fundus", "scikit-image", ("microaneurysms.png",),
        subject="retinal vessels with microaneurysms in diabetic retinopathy (green channel detail)",
        technique="fundus photography",
        topic="diabetic retinopathy", discipline="Ophthalmology",
        credit="the microaneurysms crop of the HRF database (CC0)",
    ),
    ImageSource(
        "ihc-colon", "immunohistochemistry", "scikit-image", ("ihc.png",),
        subject="colonic glands with FHL2 protein revealed by DAB (brown) and a haematoxylin counterstain (blue)",
        technique="immunohistochemistry", may_rotate=True,
        topic="FHL2 in colonic epithelium", discipline="Pathology",
        credit="the immunohistochemistry image of the CMMI",
    ),
    ImageSource(
        "cell-phase", "microscopy", "scikit-image", ("cell.png",),
        subject="a single cell floating in saline", technique="quantitative phase microscopy",
        may_rotate=True, min_crop=0.92, topic="label-free cell imaging", discipline="Cell Biology",
        credit="the cell image by P. Müller et al. (CC0)",
    ),
)


def find_image_sources() -> SourceCatalogue:
    """The sources whose files exist on this machine; the rest are listed with the fix."""
    found: list[ImageSource] = []
    skipped: list[str] = []
    for source in IMAGE_SOURCES:
        path = _locate(source)
        if path is None:
            skipped.append(f"{source.name}: {_missing_reason(source)}")
        else:
            found.append(source)
    return SourceCatalogue(tuple(found), tuple(skipped))


def render_image(source: ImageSource, rng: random.Random, max_side: int) -> RenderedImage:
    """One figure's picture: a window/frame, a crop and maybe a flip of the source, at most max_side."""
    window = rng.choice(source.windows) if source.windows else None
    n_frames = frame_count(source)
    frame = rng.randrange(n_frames) if n_frames > 1 else None
    base = source_picture(source, window, frame or 0)

    # Keep most of each side, so the subject stays in view and the caption stays true.
    width, height = base.size
    crop_w = max(8, int(width * rng.uniform(source.min_crop, 1.0)))
    crop_h = max(8, int(height * rng.uniform(source.min_crop, 1.0)))
    left = rng.randint(0, width - crop_w)
    top = rng.randint(0, height - crop_h)
    picture = base.crop((left, top, left + crop_w, top + crop_h))

    flipped = source.may_flip and rng.random() < 0.5
    if flipped:
        picture = ImageOps.mirror(picture)
    rotated = rng.choice((0, 90, 180, 270)) if source.may_rotate else 0
    if rotated:
        picture = picture.rotate(rotated, expand=True)

    side = rng.randint(max(32, int(max_side * 0.6)), max_side)
    picture = _fit(picture, side)
    return RenderedImage(picture, source, window, frame, flipped, rotated)


def _fit(picture: Image.Image, max_side: int) -> Image.Image:
    """Scale so the longer side is max_side; small sources are enlarged at most twice."""
    width, height = picture.size
    scale = min(max_side / max(width, height), 2.0)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == picture.size:
        return picture.copy()
    return picture.resize(size, Image.Resampling.LANCZOS)


def _locate(source: ImageSource) -> Path | None:
    for name in source.files:
        path = _locate_file(source.package, name)
        if path is not None:
            return path
    return None


@lru_cache(maxsize=None)
def _locate_file(package: str, name: str) -> Path | None:
    if package == "pydicom":
        if importlib.util.find_spec("pydicom") is None:
            return None
        from pydicom.data import get_testdata_file

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = get_testdata_file(name, download=False)  # never reach the network
        return Path(found) if isinstance(found, str) else None
    if package == "scikit-image":
        spec = importlib.util.find_spec("skimage")
        if spec is None or spec.origin is None:
            return None
        # Read the wheel's bundled file directly: skimage.data's loaders may route through pooch.
        path = Path(spec.origin).parent / "data" / name
        return path if path.is_file() else None
    raise ValueError(f"unknown image package {package!r}")


def _missing_reason(source: ImageSource) -> str:
    module = {"pydicom": "pydicom", "scikit-image": "skimage"}[source.package]
    if importlib.util.find_spec(module) is None:
        return f"{source.package} is not installed (pip install 'biomedica[demo]')"
    return f"none of {', '.join(source.files)} is bundled with the installed {source.package}" + (
        " (pydicom-data holds the larger files: pip install pydicom-data)" if source.package == "pydicom" else ""
    )


def _source_by_name(name: str) -> ImageSource:
    for source in IMAGE_SOURCES:
        if source.name == name:
            return source
    raise KeyError(name)


def frame_count(source: ImageSource) -> int:
    """How many frames a multi-frame source has (1 for single images)."""
    return int(_decoded(source.name).shape[0]) if source.frames else 1


def source_picture(source: ImageSource, window: DisplayWindow | None = None, frame: int = 0) -> Image.Image:
    """The whole source as an 8-bit picture (through a CT window, one frame), at most 640 px; cached.

    The returned picture is shared between calls: copy it before changing it in place.
    """
    return _source_picture(source.name, window, frame)


@lru_cache(maxsize=64)
def _source_picture(name: str, window: DisplayWindow | None, frame: int) -> Image.Image:
    source = _source_by_name(name)
    pixels = _decoded(name)
    if source.frames:
        pixels = pixels[frame]
    if pixels.dtype != np.uint8:
        pixels = _to_uint8(pixels, window, inverted=False)
    picture = Image.fromarray(np.ascontiguousarray(pixels))
    picture.thumbnail((_BASE_MAX_SIDE, _BASE_MAX_SIDE), Image.Resampling.LANCZOS)
    return picture


@lru_cache(maxsize=None)
def _decoded(name: str) -> np.ndarray:
    """Pixels of a source: uint8 (RGB or grey) when display-ready, else float (HU or raw values)."""
    source = _source_by_name(name)
    path = _locate(source)
    if path is None:
        raise FileNotFoundError(f"demo image source {name}: {_missing_reason(source)}")
    if source.package == "scikit-image":
        with Image.open(path) as picture:
            return np.asarray(picture.convert("RGB" if picture.mode not in ("L", "RGB") else picture.mode))
    return _decode_dicom(path)


def _decode_dicom(path: Path) -> np.ndarray:
    import pydicom
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array
    # Decimate very large images before any float work; the result is cut to _BASE_MAX_SIDE anyway.
    is_colour = int(dataset.get("SamplesPerPixel", 1)) == 3
    rows, columns = pixels.shape[-3:-1] if is_colour else pixels.shape[-2:]
    step = max(1, max(rows, columns) // (2 * _BASE_MAX_SIDE))
    if step > 1:
        pixels = pixels[..., ::step, ::step, :] if is_colour else pixels[..., ::step, ::step]
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, dataset)
        if rgb.dtype != np.uint8:  # 16-bit palettes
            rgb = (rgb.astype(np.float64) / 257.0).round().astype(np.uint8)
        return rgb
    if is_colour:  # RGB (pydicom converts YBR to RGB on decode)
        return pixels.astype(np.uint8)
    values = apply_modality_lut(pixels, dataset).astype(np.float64)
    if str(dataset.get("Modality", "")) != "CT":
        # No HU scale: use the file's own VOI window when it has one, else percentiles.
        if "WindowCenter" in dataset:
            values = apply_voi_lut(values, dataset, index=0).astype(np.float64)
        return _to_uint8(values, None, inverted=photometric == "MONOCHROME1")
    return values  # CT stays in HU: the figure's display window is applied later


def _to_uint8(values: np.ndarray, window: DisplayWindow | None, inverted: bool) -> np.ndarray:
    """Map to 0-255 through a CT window, or between the 0.5th and 99.5th percentiles."""
    if window is not None:
        low, high = window.level - window.width / 2, window.level + window.width / 2
    else:
        low, high = np.percentile(values, [0.5, 99.5])
    scaled = np.clip((values - low) / max(high - low, 1e-9), 0.0, 1.0)
    if inverted:
        scaled = 1.0 - scaled
    return np.round(scaled * 255.0).astype(np.uint8)
