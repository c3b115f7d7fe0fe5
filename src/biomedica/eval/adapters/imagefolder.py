"""ImageFolder adapter: `root/<class>/**/<image>`; the class is the first folder below root."""

from __future__ import annotations

from pathlib import Path

from biomedica.eval.adapters.registry import (
    AdapterOptions,
    DatasetInvalid,
    DatasetMissing,
    EvalDataset,
    register_adapter,
)
from biomedica.eval.images import FileImage

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp")


class ImageFolderOptions(AdapterOptions):
    split: str | None = None  # a subfolder holding the class folders, e.g. "test"
    extensions: list[str] = list(IMAGE_SUFFIXES)


@register_adapter("imagefolder", ImageFolderOptions)
def load_imagefolder(root: Path, options: ImageFolderOptions) -> EvalDataset:
    """Folders named after classes, images anywhere below them (sorted, so order is stable)."""
    base = root / options.split if options.split else root
    if not base.is_dir():
        raise DatasetMissing(f"split folder {base} not found")
    suffixes = {s.lower() if s.startswith(".") else f".{s.lower()}" for s in options.extensions}
    images, labels = [], []
    for class_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(class_dir.rglob("*")):
            if path.suffix.lower() in suffixes and path.is_file():
                images.append(FileImage(path))
                labels.append(class_dir.name)
    if not images:
        raise DatasetInvalid(
            f"{base}: no images in class folders; expected {base}/<class name>/<image>{sorted(suffixes)[0]}"
        )
    return EvalDataset(images=images, labels=labels)
