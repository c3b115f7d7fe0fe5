"""Every image-set task loads a small stand-in built in exactly the publisher's layout (names, arrays, folders)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from biomedica.eval.adapters import load_dataset
from biomedica.eval.runner import load_task_dataset
from biomedica.eval.tasks import resolve_tasks

MEDMNIST = ["bloodmnist", "breastmnist", "chestmnist", "dermamnist", "octmnist", "organamnist", "pathmnist",
            "pneumoniamnist", "retinamnist", "tissuemnist"]


def _task(name):
    return resolve_tasks(name)[0]


def _image(path, value=0, size=(16, 16), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(np.full(shape, value, dtype=np.uint8)).save(path)


def _assert_labels_are_classes(task, dataset):
    values = {v for label in dataset.labels for v in (label if isinstance(label, list) else [label])}
    assert values <= set(task.class_labels), (task.name, values - set(task.class_labels))


def _labels_for(task, n):
    classes = [int(c) for c in task.class_labels]
    if task.kind == "multilabel":
        rows = np.zeros((n, len(classes)), dtype=np.uint8)
        rows[np.arange(n), np.arange(n) % len(classes)] = 1
        return rows
    return np.array([[classes[i % len(classes)]] for i in range(n)], dtype=np.uint8)


@pytest.mark.parametrize("name", MEDMNIST)
def test_medmnist_npz_layout(tmp_path, name):
    task = _task(name)
    npz = task.dataset_layouts[0].options["file"]
    assert npz == f"{name}_224.npz"
    channels = (3,) if name in ("bloodmnist", "dermamnist", "pathmnist", "retinamnist") else ()
    arrays = {}
    for split, n in (("train", 4), ("val", 3), ("test", 5)):
        arrays[f"{split}_images"] = np.zeros((n, 224, 224, *channels), dtype=np.uint8)
        arrays[f"{split}_labels"] = _labels_for(task, n)
    (tmp_path / "medmnist").mkdir()
    np.savez(tmp_path / "medmnist" / npz, **arrays)
    dataset, spec, _root = load_task_dataset(task, tmp_path)
    assert (spec.options["split"], len(dataset.images)) == ("test", 5)
    _assert_labels_are_classes(task, dataset)
    for extra, n in ((task.train, 4), (task.validation, 3)):
        assert len(load_dataset(extra.adapter, extra.resolve_root(tmp_path), extra.options).images) == n


@pytest.mark.parametrize("name", ["pathmnist", "chestmnist"])
def test_medmnist_saved_png_layout(tmp_path, name):
    """`python -m medmnist save --flag=<name> --folder=<data>/medmnist --size=224` (medmnist/utils.py save_fn)."""
    task = _task(name)
    folder = tmp_path / "medmnist" / f"{name}_224"
    lines = []
    for split, tag, n in (("train", "TRAIN", 2), ("test", "TEST", 3)):
        for i, label in enumerate(_labels_for(task, n).tolist()):
            file = f"{split}{i}_{'_'.join(map(str, label))}.png"
            _image(folder / file, 20 * i, (224, 224), "L")
            lines.append(f"{tag},{file},{','.join(map(str, label))}\n")
    (tmp_path / "medmnist" / f"{name}_224.csv").write_text("".join(lines))
    dataset, spec, _ = load_task_dataset(task, tmp_path)
    assert spec.options["file"] == f"{name}_224.csv" and len(dataset.images) == 3
    _assert_labels_are_classes(task, dataset)


def test_medmnist_licences_follow_medmnist_info():
    """medmnist v3.0.2 medmnist/info.py: every 2D flag is CC BY 4.0 except dermamnist, CC BY-NC 4.0."""
    for name in MEDMNIST:
        expected = "CC BY-NC 4.0" if name == "dermamnist" else "CC BY 4.0"
        assert _task(name).data.license.startswith(expected + " "), name


def test_pcam_official_h5_layout_with_train_and_valid_splits(tmp_path):
    h5py = pytest.importorskip("h5py")
    task = _task("pcam")
    for split, labels in (("test", [0, 1, 1]), ("train", [1, 0, 0, 1]), ("valid", [0, 1])):
        (tmp_path / "pcam").mkdir(exist_ok=True)
        with h5py.File(tmp_path / "pcam" / f"camelyonpatch_level_2_split_{split}_x.h5", "w") as f:
            f.create_dataset("x", data=np.zeros((len(labels), 96, 96, 3), dtype=np.uint8))
        with h5py.File(tmp_path / "pcam" / f"camelyonpatch_level_2_split_{split}_y.h5", "w") as f:
            f.create_dataset("y", data=np.array(labels, dtype=np.uint8).reshape(-1, 1, 1, 1))
    dataset, spec, _ = load_task_dataset(task, tmp_path)
    assert spec.adapter == "h5" and dataset.labels == ["0", "1", "1"]
    _assert_labels_are_classes(task, dataset)
    train = load_dataset(task.train.adapter, task.train.resolve_root(tmp_path), task.train.options)
    valid = load_dataset(task.validation.adapter, task.validation.resolve_root(tmp_path), task.validation.options)
    assert (train.labels, valid.labels) == (["1", "0", "0", "1"], ["0", "1"])


def test_pcam_png_folder_layout_is_the_fallback(tmp_path):
    task = _task("pcam")
    assert [s.adapter for s in task.dataset_layouts] == ["h5", "hf_disk", "imagefolder"]
    for label in ("0", "1"):
        _image(tmp_path / "pcam" / "test" / label / f"{label}.png", int(label) * 200, (96, 96))
    dataset, spec, _ = load_task_dataset(task, tmp_path)
    assert spec.adapter == "imagefolder" and dataset.labels == ["0", "1"]


@pytest.mark.parametrize(("name", "organ", "folders", "prefixes"), [
    ("lc25000-colon", "colon", ["colon_aca", "colon_n"], ["colonca", "colonn"]),
    ("lc25000-lung", "lung", ["lung_aca", "lung_n", "lung_scc"], ["lungaca", "lungn", "lungscc"]),
])
def test_lc25000_layout_with_near_copy_groups(tmp_path, name, organ, folders, prefixes):
    task = _task(name)
    base = tmp_path / "LC25000" / "lung_colon_image_set" / f"{organ}_image_sets"
    rng = np.random.default_rng(0)
    for folder, prefix in zip(folders, prefixes, strict=True):
        pattern = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8).repeat(12, 0).repeat(12, 1)
        for k, image in enumerate((pattern, pattern[::-1], pattern[:, ::-1])):  # one original and two flipped copies
            (base / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(image)).save(base / folder / f"{prefix}{k + 1}.jpeg", quality=95)
    dataset, _spec, _ = load_task_dataset(task, tmp_path)
    assert sorted(set(dataset.labels)) == sorted(task.class_labels) == sorted(folders)
    assert len(set(dataset.groups)) == len(folders)  # each class's three copies are one group


def test_nct_crc_he_layout(tmp_path):
    task = _task("nct-crc-he")
    for root in ("CRC-VAL-HE-7K", "NCT-CRC-HE-100K"):
        for label in task.class_labels:
            _image(tmp_path / root / label / f"{label}-AAAWMSFI.tif", 50)
    dataset, _, _ = load_task_dataset(task, tmp_path)
    assert sorted(dataset.labels) == sorted(task.class_labels)
    assert len(load_dataset("imagefolder", task.train.resolve_root(tmp_path), task.train.options).images) == 9


def test_malaria_cells_layout(tmp_path):
    task = _task("malaria-cells")
    for label in ("Parasitized", "Uninfected"):
        _image(tmp_path / "malaria" / "cell_images" / label / f"C100P61ThinF_IMG_20150918_144104_cell_{label}.png")
    dataset, _, _ = load_task_dataset(task, tmp_path)
    assert dataset.labels == ["Parasitized", "Uninfected"]


def test_retinal_oct_layout(tmp_path):
    task = _task("retinal-oct")
    for split in ("train", "test"):
        for label in task.class_labels:
            _image(tmp_path / "OCT2017" / split / label / f"{label}-1016042-1.jpeg", mode="L")
    dataset, _, _ = load_task_dataset(task, tmp_path)
    assert sorted(dataset.labels) == sorted(task.class_labels)
    assert len(load_dataset("imagefolder", task.train.resolve_root(tmp_path), task.train.options).images) == 4
