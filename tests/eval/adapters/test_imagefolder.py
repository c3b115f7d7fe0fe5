"""ImageFolder adapter on real fixture images arranged in class folders."""

from __future__ import annotations

import shutil

import pytest

from biomedica.eval.adapters import DatasetInvalid, DatasetMissing, load_dataset


def test_imagefolder_labels_come_from_class_folders(tmp_path, skimage_fixtures):
    for label, name in [("fundus", "retina.jpg"), ("fundus", "microaneurysms.png"), ("ihc", "ihc.png")]:
        (tmp_path / "test" / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(skimage_fixtures / name, tmp_path / "test" / label / name)
    (tmp_path / "test" / "ihc" / "notes.txt").write_text("not an image")
    dataset = load_dataset("imagefolder", tmp_path, {"split": "test"})
    assert dataset.labels == ["fundus", "fundus", "ihc"]
    assert [img.path.name for img in dataset.images] == ["microaneurysms.png", "retina.jpg", "ihc.png"]
    assert dataset.images[2].load().mode == "RGB"
    assert len(dataset.fingerprint) == 16


def test_imagefolder_fingerprint_changes_when_a_file_changes(tmp_path, skimage_fixtures):
    (tmp_path / "a").mkdir()
    shutil.copy(skimage_fixtures / "cell.png", tmp_path / "a" / "x.png")
    first = load_dataset("imagefolder", tmp_path, {}).fingerprint
    shutil.copy(skimage_fixtures / "ihc.png", tmp_path / "a" / "x.png")
    assert load_dataset("imagefolder", tmp_path, {}).fingerprint != first


def test_imagefolder_missing_root_and_empty_folders(tmp_path):
    with pytest.raises(DatasetMissing, match="not found"):
        load_dataset("imagefolder", tmp_path / "absent", {})
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DatasetInvalid, match="<class name>"):
        load_dataset("imagefolder", tmp_path, {})
