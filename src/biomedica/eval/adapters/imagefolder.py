"""ImageFolder adapter: `root/<class>/**/<image>`; the class is the first folder below root.

`near_copy_groups: true` sets EvalDataset.groups to clusters of near-copies, for datasets built by
augmenting a few originals (LC25000: 1,250 originals rotated and flipped into 25,000 images,
arXiv:1912.12142), so the linear probe never trains on one copy and tests on another. Two images
of the same class are linked when the pHash of one is within `near_copy_threshold` bits of the pHash
of the other under one of the 8 flips/quarter turns combined with a rotation of -50..50 degrees in
10-degree steps (the crop of the rotated image that stays inside it, as Augmentor crops);
groups are the connected components. Measured on 16 originals cut from a real IHC slide
(scikit-image `immunohistochemistry`), each augmented like LC25000 (rotation U(-25, 25) degrees with
inscribed crop, flips p=0.5, JPEG q90): see near_copy_threshold below.
"""

from __future__ import annotations

import fnmatch
import math
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import Field

from biomedica.eval.adapters.registry import (
    AdapterOptions,
    DatasetInvalid,
    DatasetMissing,
    EvalDataset,
    register_adapter,
)
from biomedica.eval.images import FileImage

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp")
# Measured (see module doc): pure flips/quarter turns are 0 bits apart; two augmented copies of one
# original are linked directly in about 40% of pairs at 10 bits, unrelated patches of the same slide
# were never within 10 bits (0 of 4,320 pairs; closest 12); copies of one original are 20 per
# original in LC25000, so the components join them through chains. Components measured with 20 such
# copies per original: 9 originals from disjoint areas of the slide -> 9 groups, none mixed; 36
# originals from half-overlapping areas (neighbours share half their tissue) -> 32 groups, 3 of them
# joining neighbours, no original split. Cost: ~25 ms per image on one core (88 pHashes).
NEAR_COPY_THRESHOLD = 10
_ANGLES = tuple(range(-50, 51, 10))
_THUMB = 128


class ImageFolderOptions(AdapterOptions):
    split: str | None = None  # a subfolder holding the class folders, e.g. "test"
    extensions: list[str] = list(IMAGE_SUFFIXES)
    include: list[str] = []  # file-name globs an image must match, e.g. ["image*.png"] (DSAD keeps masks beside images)
    # groups = the name of the folder this many levels below the class folder (DSAD: 1 = the surgery
    # number, the same patient across all structure folders), so the linear probe splits by patient
    group_folder_level: int | None = Field(default=None, ge=1)
    near_copy_groups: bool = False  # groups = clusters of flipped/rotated copies (LC25000)
    near_copy_threshold: int = NEAR_COPY_THRESHOLD


def _thumbnail(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.draft("RGB", (2 * _THUMB, 2 * _THUMB))  # JPEG: decode at reduced scale
        return image.convert("RGB").resize((_THUMB, _THUMB), Image.Resampling.BILINEAR)


def _rotated(image: Image.Image, angle: float) -> Image.Image:
    """Rotate, keep the largest centred square inside the rotated picture, scale back (Augmentor style)."""
    if angle == 0:
        return image
    turned = image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    theta = math.radians(abs(angle))
    side = image.width / (math.cos(theta) + math.sin(theta))
    cx, cy = turned.width / 2, turned.height / 2
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    return turned.crop(tuple(round(v) for v in box)).resize(image.size, Image.Resampling.BILINEAR)


def near_copy_keys(image: Image.Image) -> np.ndarray:
    """pHashes (uint64) of the image under every flip/quarter turn x rotation in _ANGLES; element 0 is the image's own."""
    from biomedica.images import perceptual_hash

    keys = []
    for angle in _ANGLES if 0 in _ANGLES else (0, *_ANGLES):
        turned = _rotated(image, angle)
        for quarter in (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270):
            base = turned if quarter is None else turned.transpose(quarter)
            keys += [perceptual_hash(base), perceptual_hash(base.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]
    own = perceptual_hash(image)
    values = [int(own, 16)] + [int(k, 16) for k in keys if k != own]
    return np.array(values, dtype=np.uint64)


def group_near_copies(keys: list[np.ndarray], labels: list[str], threshold: int) -> list[int]:
    """Connected components (as the index of each component's first image) of the near-copy links within a class."""
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    for members in by_class.values():
        own = np.array([keys[i][0] for i in members], dtype=np.uint64)
        for row, i in enumerate(members):
            distances = np.bitwise_count(keys[i][:, None] ^ own[None, :]).min(axis=0)
            for col in np.flatnonzero(distances <= threshold):
                a, b = find(i), find(members[col])
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return [find(i) for i in range(len(keys))]


@register_adapter("imagefolder", ImageFolderOptions)
def load_imagefolder(root: Path, options: ImageFolderOptions) -> EvalDataset:
    """Folders named after classes, images anywhere below them (sorted, so order is stable)."""
    base = root / options.split if options.split else root
    if not base.is_dir():
        raise DatasetMissing(f"split folder {base} not found")
    suffixes = {s.lower() if s.startswith(".") else f".{s.lower()}" for s in options.extensions}
    if options.near_copy_groups and options.group_folder_level is not None:
        raise DatasetInvalid("imagefolder: choose one of near_copy_groups and group_folder_level")
    images, labels, groups = [], [], []
    for class_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(class_dir.rglob("*")):
            if path.suffix.lower() not in suffixes or not path.is_file():
                continue
            if options.include and not any(fnmatch.fnmatchcase(path.name, g) for g in options.include):
                continue
            if options.group_folder_level is not None:
                parts = path.relative_to(class_dir).parts[:-1]
                if len(parts) < options.group_folder_level:
                    raise DatasetInvalid(
                        f"{path}: group_folder_level {options.group_folder_level} needs the image "
                        f"{options.group_folder_level} folder(s) below its class folder {class_dir.name}/"
                    )
                groups.append(parts[options.group_folder_level - 1])
            images.append(FileImage(path))
            labels.append(class_dir.name)
    if not images:
        wanted = f" matching {options.include}" if options.include else ""
        raise DatasetInvalid(
            f"{base}: no images{wanted} in class folders; expected {base}/<class name>/<image>{min(suffixes)}"
        )
    if options.group_folder_level is not None:
        notes = [f"groups: {len(set(groups))} folder names {options.group_folder_level} level(s) below the class folders"]
        return EvalDataset(images=images, labels=labels, groups=groups, notes=notes)
    if not options.near_copy_groups:
        return EvalDataset(images=images, labels=labels)
    try:
        keys = [near_copy_keys(_thumbnail(image.path)) for image in images]
    except OSError as exc:
        raise DatasetInvalid(f"{base}: cannot read an image for near-copy grouping ({exc})") from None
    roots = group_near_copies(keys, labels, options.near_copy_threshold)
    groups = [images[r].path.relative_to(base).as_posix() for r in roots]
    sizes = np.unique(roots, return_counts=True)[1]
    notes = [(f"near-copy groups: {len(sizes)} for {len(images)} images (largest {sizes.max()}, "
             f"threshold {options.near_copy_threshold} bits)")]
    return EvalDataset(images=images, labels=labels, groups=groups, notes=notes)
