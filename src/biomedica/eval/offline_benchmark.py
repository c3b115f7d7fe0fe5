"""Build the offline real benchmark: imaging-modality classification from images that installed packages ship.

Sources (no download): pydicom-data's test files, labelled by their DICOM Modality tag (CT,
MR, US, CR/DX = X-ray, NM), and scikit-image's bundled fundus photographs (retina,
microaneurysms), IHC slide and phase-contrast cell image. Each source frame gives several
seeded square crops, resized, so a few hundred images come from ~40 distinct pictures.
Exact and near duplicates (J2K lossy/lossless copies of one image) are merged first.
Output: an ImageFolder `images/<class>/<nnn>.png`, `provenance.csv` (source, frame, crop box
of every image) and `task.yaml` pointing at it.
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from biomedica.eval.images import dicom_frame_to_rgb

MODALITY_CLASSES: dict[str, str] = {"CT": "ct", "MR": "mr", "US": "us", "CR": "xray", "DX": "xray", "NM": "nm"}
SKIMAGE_SOURCES: dict[str, list[str]] = {
    "fundus": ["retina.jpg", "microaneurysms.png"],
    "ihc": ["ihc.png"],
    "microscopy": ["cell.png"],
}
CLASS_NAMES: dict[str, list[str]] = {
    "ct": ["CT scan", "computed tomography image"],
    "mr": ["MRI scan", "magnetic resonance image"],
    "us": ["ultrasound image", "sonogram"],
    "xray": ["X-ray radiograph", "chest X-ray"],
    "nm": ["nuclear medicine scan", "scintigraphy image"],
    "fundus": ["retinal fundus photograph", "fundus image of the eye"],
    "ihc": ["immunohistochemistry slide", "IHC stained tissue section"],
    "microscopy": ["light microscopy image of cells", "phase contrast micrograph"],
}
TEMPLATES = ["a {c}.", "an image of a {c}.", "a medical image showing a {c}.", "this is a {c}."]


@dataclass(frozen=True)
class OfflineBenchmarkConfig:
    """How many images per class, their size, the smallest usable source side, and the seed."""

    images_per_class: int = 40
    image_size: int = 96
    min_source_side: int = 48
    max_frames_per_file: int = 4
    max_source_side: int = 512  # sources are shrunk to this first: crops are small, decoding is the cost
    seed: int = 0


@dataclass
class SourceFrame:
    label: str
    source: str
    frame: int | None
    image: Image.Image


@dataclass
class OfflineBenchmark:
    root: Path
    task_file: Path
    counts: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)


def _near_duplicate_key(image: Image.Image) -> str:
    small = np.asarray(image.convert("L").resize((12, 12), Image.Resampling.BILINEAR), dtype=np.int16) // 24
    return hashlib.sha1(small.tobytes()).hexdigest()


def _shrink(image: Image.Image, max_side: int) -> Image.Image:
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


@lru_cache(maxsize=2)
def _cached_sources(min_source_side: int, max_frames_per_file: int, max_source_side: int) -> tuple[SourceFrame, ...]:
    """Decoded, de-duplicated source frames; cached per process because decoding is most of a build."""
    config = OfflineBenchmarkConfig(
        min_source_side=min_source_side, max_frames_per_file=max_frames_per_file, max_source_side=max_source_side
    )
    frames = dicom_frames(config) + skimage_frames()
    return tuple(_unique([SourceFrame(f.label, f.source, f.frame, _shrink(f.image, max_source_side)) for f in frames]))


def dicom_frames(config: OfflineBenchmarkConfig) -> list[SourceFrame]:
    """Decodable frames of pydicom's test files whose Modality is one of MODALITY_CLASSES."""
    import pydicom
    from pydicom.data import get_testdata_files

    frames: list[SourceFrame] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(get_testdata_files(), key=lambda p: Path(p).name):
            try:
                header = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:  # noqa: BLE001 - not every test file is valid DICOM
                continue
            label = MODALITY_CLASSES.get(str(header.get("Modality", "")).strip())
            rows, columns = int(header.get("Rows", 0) or 0), int(header.get("Columns", 0) or 0)
            if label is None or min(rows, columns) < config.min_source_side:
                continue
            try:
                dataset = pydicom.dcmread(path)
                pixels = dataset.pixel_array
            except Exception:  # noqa: BLE001 - compressed syntaxes without a decoder plugin
                continue
            n_frames = int(dataset.get("NumberOfFrames", 1) or 1)
            indices = [None] if n_frames == 1 else sorted(
                {int(i) for i in np.linspace(0, n_frames - 1, min(n_frames, config.max_frames_per_file))}
            )
            for index in indices:
                try:
                    image = dicom_frame_to_rgb(dataset, pixels if index is None else pixels[index])
                except Exception:  # noqa: BLE001 - odd LUTs; the file is skipped
                    continue
                frames.append(SourceFrame(label, Path(path).name, index, image))
    return frames


def skimage_frames() -> list[SourceFrame]:
    """The bundled scikit-image pictures named in SKIMAGE_SOURCES (files inside the wheel only)."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    frames = []
    for label, names in SKIMAGE_SOURCES.items():
        for name in names:
            path = folder / name
            if path.is_file():
                with Image.open(path) as image:
                    frames.append(SourceFrame(label, f"skimage/{name}", None, image.convert("RGB")))
    return frames


def _unique(frames: list[SourceFrame]) -> list[SourceFrame]:
    seen: set[tuple[str, str]] = set()
    kept = []
    for frame in frames:
        key = (frame.label, _near_duplicate_key(frame.image))
        if key not in seen:
            seen.add(key)
            kept.append(frame)
    return kept


def _crop(image: Image.Image, rng: np.random.Generator, first: bool) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The whole image (centre square) for a source's first view, then random squares of 40-90% of the short side."""
    width, height = image.size
    short = min(width, height)
    side = short if first else int(short * rng.uniform(0.4, 0.9))
    left = (width - side) // 2 if first else int(rng.integers(0, width - side + 1))
    top = (height - side) // 2 if first else int(rng.integers(0, height - side + 1))
    box = (left, top, left + side, top + side)
    return image.crop(box), box


def build_offline_benchmark(out: Path, config: OfflineBenchmarkConfig = OfflineBenchmarkConfig()) -> OfflineBenchmark:
    """Write the ImageFolder, provenance.csv and task.yaml under `out`; returns the counts per class."""
    out = Path(out)
    images_dir = out / "images"
    if images_dir.exists() and any(images_dir.iterdir()):
        raise FileExistsError(f"{images_dir} is not empty; choose another --out or delete it")
    frames = _cached_sources(config.min_source_side, config.max_frames_per_file, config.max_source_side)
    by_label: dict[str, list[SourceFrame]] = {}
    for frame in frames:
        by_label.setdefault(frame.label, []).append(frame)
    if not by_label:
        raise RuntimeError("no source images found: install pydicom-data and scikit-image (`pip install 'biomedica[demo]'`)")
    rng = np.random.default_rng(config.seed)
    benchmark = OfflineBenchmark(root=images_dir, task_file=out / "task.yaml")
    rows = []
    for label in sorted(by_label):
        sources = by_label[label]
        (images_dir / label).mkdir(parents=True)
        for n in range(config.images_per_class):
            source = sources[n % len(sources)]
            crop, box = _crop(source.image, rng, first=n < len(sources))
            crop = crop.resize((config.image_size, config.image_size), Image.Resampling.BICUBIC)
            name = f"{label}_{n:03d}.png"
            crop.save(images_dir / label / name, optimize=False)
            rows.append([f"{label}/{name}", label, source.source, "" if source.frame is None else source.frame, *box])
        benchmark.counts[label] = config.images_per_class
        benchmark.sources[label] = len(sources)
    with open(out / "provenance.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "label", "source", "frame", "left", "top", "right", "bottom"])
        writer.writerows(rows)
    task = offline_task_dict(images_dir.resolve(), sorted(by_label))
    benchmark.task_file.write_text(yaml.safe_dump(task, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return benchmark


def offline_task_dict(root: Path | str, labels: list[str]) -> dict:
    """The task definition of the offline benchmark (also shipped as tasks/offline-modality.yaml)."""
    return {
        "name": "offline-modality",
        "domain": "multimodal",
        "kind": "classification",
        "description": "Imaging modality of real DICOM and microscopy images shipped by pydicom-data and "
        "scikit-image (crops); runs offline.",
        "dataset": {"adapter": "imagefolder", "root": str(root)},
        "classes": [{"label": label, "names": CLASS_NAMES[label]} for label in labels],
        "templates": TEMPLATES,
        "metric": "balanced_accuracy",
        "data": {
            "source": "biomedica eval make-offline-benchmark --out $BIOMEDICA_EVAL_DATA/offline-modality",
            "license": "pydicom-data test files (MIT and per-file notes); scikit-image data (BSD/CC0/CC BY, see "
            "skimage/data/README.txt)",
            "layout": "images/<class>/<class>_NNN.png with class in ct, mr, us, xray, nm, fundus, ihc, microscopy",
        },
    }
