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
    with pytest.raises(DatasetMissing, match=r"pip install .biomedica\[eval\]."):
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


def test_label_rule_bool_int_classlabel_and_float():
    """The values `datasets` yields for a bool column (1aurent/PatchCamelyon), int64, ClassLabel and float."""
    import numpy as np

    from biomedica.eval.adapters.hf_disk import label_text

    assert [label_text(v, None) for v in (True, False, np.bool_(True))] == ["1", "0", "1"]
    assert [label_text(v, None) for v in (0, 1, np.int64(7), 1.0)] == ["0", "1", "7", "1"]
    assert [label_text(v, ["normal", "tumor"]) for v in (0, 1)] == ["normal", "tumor"]
    assert label_text("lung_aca", None) == "lung_aca"


def test_label_map_maps_and_names_unmapped_values():
    from biomedica.eval.adapters import DatasetInvalid
    from biomedica.eval.adapters.hf_disk import map_labels

    assert map_labels(["no", "yes", ["yes"]], {"no": "0", "yes": "1"}, "x") == ["0", "1", ["1"]]
    assert map_labels(["a"], None, "x") == ["a"]
    with pytest.raises(DatasetInvalid, match=r"\['maybe'\] are not in options.label_map"):
        map_labels(["no", "maybe"], {"no": "0"}, "x")


def test_bool_labelled_copy_round_trip(tmp_path, skimage_fixtures):
    """A PCam-like copy whose label is a bool (as 1aurent/PatchCamelyon) gives the task's "0"/"1"."""
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("bool")})
    saved = datasets.Dataset.from_dict(
        {"image": [str(skimage_fixtures / "cell.png"), str(skimage_fixtures / "ihc.png")], "label": [False, True]},
        features=features,
    )
    datasets.DatasetDict({"test": saved}).save_to_disk(str(tmp_path / "hf"))
    assert load_dataset("hf_disk", tmp_path / "hf", {}).labels == ["0", "1"]
