"""HDF5 adapter: image arrays and labels in .h5 files, read lazily (PatchCamelyon's official files).

PCam (github.com/basveeling/pcam, README "Download" table; torchvision.datasets.PCAM reads the
same files) ships per split `camelyonpatch_level_2_split_{train,valid,test}_x.h5` holding
dataset `x` (N x 96 x 96 x 3 uint8) and `..._y.h5` holding `y` (N x 1 x 1 x 1 uint8, 1 = tumour
in the centre 32x32 px). The downloads are `.h5.gz`: gunzip them first. The test split alone is
~0.9 GB of pixels, so images stay in the file and each is read when embedded; h5py is optional
(the `eval` extra) and its absence skips the task with the install line.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biomedica.eval.adapters.registry import (
    AdapterOptions,
    DatasetInvalid,
    DatasetMissing,
    EvalDataset,
    register_adapter,
)
from biomedica.eval.images import array_to_rgb

_OPEN: dict[tuple[str, int], object] = {}  # (path, mtime_ns) -> open h5py.File, shared by loader threads
_OPEN_LOCK = threading.Lock()


def _h5py():
    try:
        import h5py
    except ImportError:
        raise DatasetMissing("reading .h5 files needs h5py: pip install 'biomedica[eval]'") from None
    return h5py


def _open(path: Path):
    """One read-only handle per file (h5py serialises access itself, so threads may share it)."""
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    with _OPEN_LOCK:
        handle = _OPEN.get(key)
        if handle is None:
            handle = _OPEN[key] = _h5py().File(path, "r")
        return handle


@dataclass(frozen=True)
class H5Image:
    """Row `index` of dataset `key` in an HDF5 file."""

    path: Path
    key: str
    index: int

    def load(self, side: int | None = None):
        return array_to_rgb(np.asarray(_open(self.path)[self.key][self.index]))

    def identity(self) -> str:
        stat = self.path.stat()
        return f"h5:{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{self.key}:{self.index}"


class H5Options(AdapterOptions):
    file: str  # the images file, relative to root, e.g. camelyonpatch_level_2_split_test_x.h5
    images_key: str = "x"
    labels_file: str | None = None  # default: the images file
    labels_key: str = "y"


def _resolve(root: Path, name: str) -> Path:
    path = root / name if not Path(name).is_absolute() else Path(name)
    if path.is_file():
        return path
    gz = path.with_name(path.name + ".gz")
    if gz.is_file():
        raise DatasetInvalid(f"{gz} is still gzipped; run `gunzip {gz}` (keeps the name without .gz)")
    raise DatasetMissing(f"{path} not found")


@register_adapter("h5", H5Options, "hdf5")
def load_h5(root: Path, options: H5Options) -> EvalDataset:
    """Images from `images_key` of `file`, integer labels ("0", "1", ...) from `labels_key` of `labels_file`."""
    images_path = _resolve(root, options.file)
    labels_path = _resolve(root, options.labels_file) if options.labels_file else images_path
    h5py = _h5py()
    try:
        images = _open(images_path)
        with h5py.File(labels_path, "r") as label_file:
            if options.labels_key not in label_file:
                raise DatasetInvalid(
                    f"{labels_path}: no dataset {options.labels_key!r} (has {', '.join(label_file.keys())}); set labels_key"
                )
            raw = np.asarray(label_file[options.labels_key])
    except OSError as exc:
        raise DatasetInvalid(f"{images_path}: not a readable HDF5 file ({exc}); re-download it") from None
    if options.images_key not in images:
        raise DatasetInvalid(f"{images_path}: no dataset {options.images_key!r} (has {', '.join(images.keys())}); set images_key")
    pixels = images[options.images_key]
    if pixels.ndim not in (3, 4):
        raise DatasetInvalid(f"{images_path}: {options.images_key} has shape {pixels.shape}; expected N x H x W [x C]")
    raw = raw.reshape(len(raw), -1)
    if len(raw) != pixels.shape[0] or raw.shape[1] != 1:
        raise DatasetInvalid(
            f"{labels_path}: {options.labels_key} has shape {raw.shape} for {pixels.shape[0]} images; "
            "expected one integer label per image"
        )
    return EvalDataset(
        images=[H5Image(images_path, options.images_key, i) for i in range(pixels.shape[0])],
        labels=[str(int(v)) for v in raw[:, 0]],
    )
