"""MedMNIST(+) adapter: the official `<name>[_size].npz` files with `<split>_images` / `<split>_labels` arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biomedica.eval.adapters.registry import (
    AdapterOptions,
    DatasetInvalid,
    DatasetMissing,
    EvalDataset,
    register_adapter,
)
from biomedica.eval.images import ArrayImage


class MedMNISTOptions(AdapterOptions):
    file: str  # e.g. "pathmnist_224.npz", relative to root
    split: str = "test"  # train | val | test


@register_adapter("medmnist", MedMNISTOptions)
def load_medmnist(root: Path, options: MedMNISTOptions) -> EvalDataset:
    """Labels of shape (n, 1) give single-label classes "0".."C-1"; (n, C) multi-hot gives multilabel."""
    path = root / options.file if not Path(options.file).is_absolute() else Path(options.file)
    if not path.is_file():
        raise DatasetMissing(f"{path} not found")
    with np.load(path) as archive:
        image_key, label_key = f"{options.split}_images", f"{options.split}_labels"
        if image_key not in archive.files or label_key not in archive.files:
            raise DatasetInvalid(
                f"{path}: arrays {image_key}/{label_key} not found (has {', '.join(archive.files)}); "
                "use split: train, val or test"
            )
        pixels, raw = archive[image_key], archive[label_key]
    if len(pixels) != len(raw):
        raise DatasetInvalid(f"{path}: {len(pixels)} images but {len(raw)} labels")
    raw = raw.reshape(len(raw), -1)
    stat = path.stat()
    prefix = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{options.split}"
    images = [ArrayImage(pixels[i], f"{prefix}:{i}") for i in range(len(pixels))]
    if raw.shape[1] == 1:
        labels: list = [str(int(v)) for v in raw[:, 0]]
    else:
        labels = [[str(c) for c in np.flatnonzero(row)] for row in raw]
    return EvalDataset(images=images, labels=labels)
