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


def test_near_copy_groups_join_rotated_and_flipped_copies_of_one_original(tmp_path, skimage_fixtures):
    """LC25000-style copies (rotation up to 25 degrees with inscribed crop, flips, JPEG) of 4 patches of a real slide."""
    import math

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    slide = Image.open(skimage_fixtures / "ihc.png").convert("RGB")
    originals = [slide.crop((x, y, x + 256, y + 256)) for x in (0, 256) for y in (0, 256)]
    (tmp_path / "colon_aca").mkdir()
    truth = {}
    for i, original in enumerate(originals):
        for k in range(6):
            angle = float(rng.uniform(-25, 25))
            turned = original.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
            side = 256 / (math.cos(math.radians(abs(angle))) + math.sin(math.radians(abs(angle))))
            c = turned.width / 2
            copy = turned.crop((c - side / 2, c - side / 2, c + side / 2, c + side / 2)).resize((256, 256))
            if k % 2:
                copy = copy.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
            name = f"colonca{6 * i + k + 1}.jpeg"
            copy.save(tmp_path / "colon_aca" / name, quality=90)
            truth[name] = i
    dataset = load_dataset("imagefolder", tmp_path, {"near_copy_groups": True})
    by_group: dict[str, set[int]] = {}
    for image, group in zip(dataset.images, dataset.groups, strict=True):
        by_group.setdefault(group, set()).add(truth[image.path.name])
    assert all(len(members) == 1 for members in by_group.values())  # never two originals in one group
    assert len(by_group) <= 6  # copies of an original are joined (4 originals; chains may leave a stray copy)
    assert "near-copy groups" in dataset.notes[0]
    assert load_dataset("imagefolder", tmp_path, {}).groups is None
