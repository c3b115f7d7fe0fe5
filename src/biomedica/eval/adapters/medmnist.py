"""MedMNIST(+) adapter: the npz files, or the PNG folders `python -m medmnist save` writes.

Checked against MedMNIST/MedMNIST v3.0.2 (medmnist/dataset.py, medmnist/utils.py, medmnist/info.py):
- npz: `<flag>[_<size>].npz` (size suffix blank for 28, e.g. `pathmnist_224.npz`), from
  `python -m medmnist download --size=224` (every flag, into ~/.medmnist) or the Zenodo record
  10519652; arrays `<split>_images` / `<split>_labels` for split train, val, test.
- PNG folders: `python -m medmnist save --flag=pathmnist --folder=DIR --size=224` writes
  `DIR/pathmnist_224/<split><i>_<labels joined by _>.png` and `DIR/pathmnist_224.csv`, headerless
  rows `TRAIN|VALIDATION|TEST,<file name>,<label>[,<label>...]` (one label column for single-label
  sets, one 0/1 column per class for chestmnist). The CSV is opened in append mode, so a second
  `save` repeats every row: repeated file names are read once and counted in `notes`.
Labels of shape (n, 1) give single-label classes "0".."C-1"; (n, C) multi-hot gives multilabel.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from biomedica.eval.adapters.registry import (
    AdapterOptions,
    DatasetInvalid,
    DatasetMissing,
    EvalDataset,
    register_adapter,
)
from biomedica.eval.images import ArrayImage, FileImage

CSV_SPLITS = {"train": "TRAIN", "val": "VALIDATION", "test": "TEST"}  # medmnist.utils.SPLIT_DICT


class MedMNISTOptions(AdapterOptions):
    file: str  # "pathmnist_224.npz", or the CSV `medmnist save` writes ("pathmnist_224.csv"), relative to root
    split: str = "test"  # train | val | test


def _labels(raw: np.ndarray) -> list:
    raw = raw.reshape(len(raw), -1)
    if raw.shape[1] == 1:
        return [str(int(v)) for v in raw[:, 0]]
    return [[str(c) for c in np.flatnonzero(row)] for row in raw]


def _load_npz(path: Path, split: str) -> EvalDataset:
    with np.load(path) as archive:
        image_key, label_key = f"{split}_images", f"{split}_labels"
        if image_key not in archive.files or label_key not in archive.files:
            raise DatasetInvalid(
                f"{path}: arrays {image_key}/{label_key} not found (has {', '.join(archive.files)}); "
                "use split: train, val or test"
            )
        pixels, raw = archive[image_key], archive[label_key]
    if len(pixels) != len(raw):
        raise DatasetInvalid(f"{path}: {len(pixels)} images but {len(raw)} labels")
    stat = path.stat()
    prefix = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{split}"
    return EvalDataset(images=[ArrayImage(pixels[i], f"{prefix}:{i}") for i in range(len(pixels))], labels=_labels(raw))


def _load_saved_csv(path: Path, split: str) -> EvalDataset:
    if split not in CSV_SPLITS:
        raise DatasetInvalid(f"{path}: split {split!r} unknown; use train, val or test")
    folder = path.with_suffix("")  # pathmnist_224.csv -> pathmnist_224/
    if not folder.is_dir():
        raise DatasetMissing(f"image folder {folder} (written by `python -m medmnist save` next to {path.name}) not found")
    names, rows, repeated = [], [], 0
    seen: set[str] = set()
    with open(path, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.reader(handle), 1):
            if not row:
                continue
            if len(row) < 3 or row[0] not in CSV_SPLITS.values():
                raise DatasetInvalid(f"{path}:{line}: expected SPLIT,file,label[,label...] as `medmnist save` writes it")
            if row[0] != CSV_SPLITS[split]:
                continue
            if row[1] in seen:
                repeated += 1
                continue
            seen.add(row[1])
            names.append(row[1])
            try:
                rows.append([int(v) for v in row[2:]])
            except ValueError:
                raise DatasetInvalid(f"{path}:{line}: labels {row[2:]} are not integers") from None
    if len({len(r) for r in rows}) > 1:
        raise DatasetInvalid(f"{path}: rows have different numbers of label columns")
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetInvalid(f"{folder}: {len(missing)} image(s) listed in {path.name} are absent, e.g. {missing[0]}")
    notes = [f"{path.name}: {repeated} repeated rows ignored (medmnist save appends to the CSV)"] if repeated else []
    labels = _labels(np.array(rows, dtype=np.int64)) if rows else []
    return EvalDataset(images=[FileImage(folder / n) for n in names], labels=labels, notes=notes)


@register_adapter("medmnist", MedMNISTOptions)
def load_medmnist(root: Path, options: MedMNISTOptions) -> EvalDataset:
    """One split of a MedMNIST set from its npz, or from the CSV + PNG folder of `medmnist save`."""
    path = root / options.file if not Path(options.file).is_absolute() else Path(options.file)
    if not path.is_file():
        raise DatasetMissing(f"{path} not found")
    if path.suffix.lower() == ".csv":
        return _load_saved_csv(path, options.split)
    return _load_npz(path, options.split)
