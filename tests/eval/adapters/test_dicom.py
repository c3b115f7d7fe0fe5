"""DICOM folder adapter on pydicom-data's real test files, labelled by the Modality tag."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from biomedica.eval.adapters import load_dataset

pydicom = pytest.importorskip("pydicom")


def _copy(name: str, folder: Path, rename: str | None = None) -> None:
    from pydicom.data import get_testdata_file

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(get_testdata_file(name), folder / (rename or name))


def test_labels_from_modality_with_map_frames_and_extensionless_files(tmp_path):
    _copy("CT_small.dcm", tmp_path / "a")
    _copy("MR_small.dcm", tmp_path / "b", rename="IM0001")  # no extension: found by the DICM preamble
    _copy("emri_small.dcm", tmp_path / "b")  # 10-frame MR
    (tmp_path / "b" / "readme.txt").write_text("not dicom")
    dataset = load_dataset("dicom", tmp_path, {"label_map": {"MR": "mri"}, "frames": "all"})
    assert sorted(set(dataset.labels)) == ["CT", "mri"]
    assert dataset.labels.count("mri") == 11
    image = dataset.images[0].load()
    assert image.mode == "RGB" and image.size == (128, 128)
    middle = load_dataset("dicom", tmp_path, {"label_tag": "Modality"})
    assert len(middle.images) == 3
    assert {img.frame for img in middle.images if img.path.name == "emri_small.dcm"} == {5}


def test_only_labels_filters_files(tmp_path):
    _copy("CT_small.dcm", tmp_path)
    _copy("MR_small.dcm", tmp_path)
    dataset = load_dataset("dicom", tmp_path, {"only_labels": ["MR"]})
    assert dataset.labels == ["MR"]
