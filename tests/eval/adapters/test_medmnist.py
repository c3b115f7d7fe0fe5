"""MedMNIST .npz adapter on generated arrays in the official key layout."""

from __future__ import annotations

import numpy as np
import pytest

from biomedica.eval.adapters import DatasetInvalid, load_dataset


def test_single_label_npz(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "bloodmnist_28.npz", test_images=rng.integers(0, 255, (5, 28, 28, 3), dtype=np.uint8),
             test_labels=np.array([[0], [7], [3], [3], [1]]))
    dataset = load_dataset("medmnist", tmp_path, {"file": "bloodmnist_28.npz"})
    assert dataset.labels == ["0", "7", "3", "3", "1"]
    image = dataset.images[1].load()
    assert image.size == (28, 28) and image.mode == "RGB"


def test_multi_hot_labels_become_label_lists_and_grey_images_load(tmp_path):
    labels = np.zeros((3, 14), dtype=np.uint8)
    labels[0, [1, 9]] = 1
    labels[2, 13] = 1
    np.savez(tmp_path / "chestmnist.npz", test_images=np.zeros((3, 28, 28), dtype=np.uint8), test_labels=labels)
    dataset = load_dataset("medmnist", tmp_path, {"file": "chestmnist.npz"})
    assert dataset.labels == [["1", "9"], [], ["13"]]
    assert dataset.images[0].load().mode == "RGB"


def test_wrong_split_names_the_arrays(tmp_path):
    np.savez(tmp_path / "x.npz", train_images=np.zeros((1, 2, 2)), train_labels=np.zeros((1, 1)))
    with pytest.raises(DatasetInvalid, match="test_images/test_labels not found"):
        load_dataset("medmnist", tmp_path, {"file": "x.npz"})
