"""HDF5 adapter on generated files in PatchCamelyon's official layout (x: N x 96 x 96 x 3, y: N x 1 x 1 x 1)."""

from __future__ import annotations

import builtins
import gzip
import shutil

import numpy as np
import pytest

from biomedica.eval.adapters import DatasetInvalid, DatasetMissing, load_dataset

h5py = pytest.importorskip("h5py")


def write_pcam_split(folder, split: str, labels: list[int], seed: int = 0) -> None:
    """camelyonpatch_level_2_split_<split>_{x,y}.h5 as the publisher ships them (after gunzip)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with h5py.File(folder / f"camelyonpatch_level_2_split_{split}_x.h5", "w") as f:
        f.create_dataset("x", data=rng.integers(0, 255, (len(labels), 96, 96, 3), dtype=np.uint8))
    with h5py.File(folder / f"camelyonpatch_level_2_split_{split}_y.h5", "w") as f:
        f.create_dataset("y", data=np.array(labels, dtype=np.uint8).reshape(-1, 1, 1, 1))


def test_pcam_official_files_load_lazily_with_labels(tmp_path):
    write_pcam_split(tmp_path, "test", [0, 1, 1, 0])
    options = {"file": "camelyonpatch_level_2_split_test_x.h5", "labels_file": "camelyonpatch_level_2_split_test_y.h5"}
    dataset = load_dataset("h5", tmp_path, options)
    assert dataset.labels == ["0", "1", "1", "0"]
    image = dataset.images[2].load()
    assert image.size == (96, 96) and image.mode == "RGB"
    with h5py.File(tmp_path / "camelyonpatch_level_2_split_test_x.h5", "r") as f:
        assert np.array_equal(np.asarray(image), f["x"][2])
    assert len({img.identity() for img in dataset.images}) == 4


def test_gzipped_download_names_the_gunzip_fix(tmp_path):
    write_pcam_split(tmp_path, "test", [0, 1])
    source = tmp_path / "camelyonpatch_level_2_split_test_x.h5"
    with open(source, "rb") as raw, gzip.open(f"{source}.gz", "wb") as packed:
        shutil.copyfileobj(raw, packed)
    source.unlink()
    with pytest.raises(DatasetInvalid, match="gunzip"):
        load_dataset("h5", tmp_path, {"file": source.name, "labels_file": "camelyonpatch_level_2_split_test_y.h5"})


def test_missing_file_and_wrong_keys(tmp_path):
    with pytest.raises(DatasetMissing, match="not found"):
        load_dataset("h5", tmp_path, {"file": "camelyonpatch_level_2_split_test_x.h5"})
    write_pcam_split(tmp_path, "valid", [1, 0, 1])
    with pytest.raises(DatasetInvalid, match="no dataset 'images'.*has x"):
        load_dataset("h5", tmp_path, {"file": "camelyonpatch_level_2_split_valid_x.h5", "images_key": "images",
                                      "labels_file": "camelyonpatch_level_2_split_valid_y.h5"})
    with pytest.raises(DatasetInvalid, match="no dataset 'y'"):
        load_dataset("h5", tmp_path, {"file": "camelyonpatch_level_2_split_valid_x.h5"})


def test_without_h5py_the_task_is_skipped_with_the_install_line(tmp_path, monkeypatch):
    write_pcam_split(tmp_path, "test", [0])
    real_import = builtins.__import__

    def no_h5py(name, *args, **kwargs):
        if name == "h5py":
            raise ImportError("no module named h5py")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_h5py)
    with pytest.raises(DatasetMissing, match=r"pip install 'biomedica\[eval\]'"):
        load_dataset("h5", tmp_path, {"file": "camelyonpatch_level_2_split_test_x.h5"})
