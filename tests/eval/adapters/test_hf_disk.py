"""Hugging Face save_to_disk adapter: real round trip when `datasets` is installed, a clean skip otherwise."""

from __future__ import annotations

import builtins

import pytest

from biomedica.eval.adapters import DatasetMissing, load_dataset


def test_without_the_datasets_package_the_task_is_skipped(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("no module named datasets")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(DatasetMissing, match="pip install datasets"):
        load_dataset("hf_disk", tmp_path, {})


def test_saved_dataset_round_trip(tmp_path, skimage_fixtures):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["cell", "ihc"])})
    saved = datasets.Dataset.from_dict(
        {"image": [str(skimage_fixtures / "cell.png"), str(skimage_fixtures / "ihc.png")], "label": [0, 1]},
        features=features,
    )
    datasets.DatasetDict({"test": saved}).save_to_disk(str(tmp_path / "hf"))
    dataset = load_dataset("hf_disk", tmp_path / "hf", {})
    assert dataset.labels == ["cell", "ihc"]
    assert dataset.images[1].load().size == (512, 512)
