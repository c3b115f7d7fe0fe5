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


def write_saved_folder(folder, flag: str, splits: dict[str, np.ndarray], side: int = 28, repeat: bool = False):
    """What `python -m medmnist save --flag=<flag> --folder=<folder>` writes (medmnist/utils.py save_fn)."""
    from PIL import Image

    images = folder / flag
    images.mkdir(parents=True, exist_ok=True)
    lines = []
    for split, labels in splits.items():
        for i, label in enumerate(labels):
            name = f"{split}{i}_{'_'.join(map(str, label))}.png"
            Image.fromarray(np.full((side, side), 10 * i, dtype=np.uint8)).save(images / name)
            lines.append(f"{ {'train': 'TRAIN', 'val': 'VALIDATION', 'test': 'TEST'}[split] },{name},{','.join(map(str, label))}\n")
    (folder / f"{flag}.csv").write_text("".join(lines * (2 if repeat else 1)))


def test_saved_png_folder_single_label(tmp_path):
    write_saved_folder(tmp_path, "bloodmnist_224", {"train": np.array([[1], [2]]), "test": np.array([[7], [0], [3]])},
                       repeat=True)
    dataset = load_dataset("medmnist", tmp_path, {"file": "bloodmnist_224.csv"})
    assert dataset.labels == ["7", "0", "3"]
    assert [img.path.name for img in dataset.images] == ["test0_7.png", "test1_0.png", "test2_3.png"]
    assert dataset.images[0].load().mode == "RGB"
    assert "3 repeated rows ignored" in dataset.notes[0]
    assert load_dataset("medmnist", tmp_path, {"file": "bloodmnist_224.csv", "split": "train"}).labels == ["1", "2"]


def test_saved_png_folder_multi_hot(tmp_path):
    labels = np.zeros((2, 14), dtype=int)
    labels[0, [1, 9]] = 1
    write_saved_folder(tmp_path, "chestmnist", {"test": labels})
    assert load_dataset("medmnist", tmp_path, {"file": "chestmnist.csv"}).labels == [["1", "9"], []]


def test_saved_csv_without_its_folder_is_missing(tmp_path):
    (tmp_path / "pathmnist_224.csv").write_text("TEST,test0_1.png,1\n")
    from biomedica.eval.adapters import DatasetMissing

    with pytest.raises(DatasetMissing, match="medmnist save"):
        load_dataset("medmnist", tmp_path, {"file": "pathmnist_224.csv"})
