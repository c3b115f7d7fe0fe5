"""BIOMEDICA-breadth tasks load stand-ins built in exactly the publisher's layout.

uBench (Micro-Bench): the folder `load_dataset("jnirschl/uBench", split="test").save_to_disk(...)` writes, with
the real column names (github.com/yeung-lab/Micro-Bench README) and the real ClassLabel names in their published
order (jnirschl/uBench perception/0.1.0/dataset_info.json). DSAD: `<structure>/<surgery nn>/imageNN.png` with
`maskNN.png` beside it (figshare 21702600, as torch_em's dsad loader globs it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from biomedica.eval.adapters import load_dataset
from biomedica.eval.adapters.registry import DatasetInvalid
from biomedica.eval.runner import _label_indices
from biomedica.eval.tasks import parse_task, resolve_tasks

# The first 65 ClassLabel names of uBench's `label` feature, in the published order (dataset_info.json).
UBENCH_LABELS = [
    "lymphocyte", "neutrophil", "basophil", "monocyte", "eosinophil", "platelet", "erythroblast",
    "immature granulocyte", "irregular_contours", "intermediate", "smooth_contours", "elongated_shape",
    "round_shape", "coarse_texture", "fine_texture", "very_weak", "moderate", "weak", "strong",
    "leishmania_haptomonad", "hela_metaphase", "tobacco_leaf_chloroplast", "cardiac_muscle", "zebrafish_retina",
    "metaphase", "g2", "anaphase", "g1", "s", "prophase", "telophase", "golgi_twin", "diffuse", "interphase",
    "partly_disassembled", "prometaphase", "late_anaphase", "early_anaphase", "apoptosis", "binucleate",
    "bipolar_spindle", "aster", "midbody", "low-grade-lsil", "negative-nilm", "high-grade-hsil", "carcinoma-scc",
    "alnus_normal", "corylus_avellana_normal", "corylus_avellana_abnormal", "non_pollen", "debris", "adipose",
    "stroma", "lympho", "tumor", "complex", "mucosa", "empty", "background", "smooth_muscle", "normal_mucosa",
    "cancer_stroma", "lymphocytes", "mucus",
]
UBENCH_TASKS = [
    "ubench-cell-cycle", "ubench-staining-intensity", "ubench-em-specimen", "ubench-pap-smear", "ubench-pollen",
    "ubench-blood-cells",
]
TASKS = Path(__file__).resolve().parents[2] / "src" / "biomedica" / "eval" / "tasks"


def _png(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (24, 24, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _load(task, data_dir: Path):
    """The task's (first) layout through the adapter registry, as the runner loads it."""
    spec = task.dataset_layouts[0] if hasattr(task, "dataset_layouts") else task.dataset
    return load_dataset(spec.adapter, spec.resolve_root(data_dir), spec.options)


@pytest.fixture(scope="module")
def ubench_dir(tmp_path_factory):
    """Two images per uBench label, saved the way `save_to_disk` writes the real test split."""
    datasets = pytest.importorskip("datasets")
    folder = tmp_path_factory.mktemp("ubench-data")
    rows = {k: [] for k in ("image_id", "image", "label", "label_name", "dataset", "domain", "institution", "license")}
    for index, name in enumerate(UBENCH_LABELS):
        for copy in range(2):
            rows["image_id"].append(f"{name}_{copy}")
            rows["image"].append(str(_png(folder / "src" / f"{index}_{copy}.png", index * 2 + copy)))
            rows["label"].append(index)
            rows["label_name"].append(name)
            rows["dataset"].append(f"source-{index // 8}")
            rows["domain"].append("biology")
            rows["institution"].append("stand-in")
            rows["license"].append("CC BY-SA 4.0")
    features = datasets.Features({
        "image_id": datasets.Value("string"), "image": datasets.Image(),
        "label": datasets.ClassLabel(names=UBENCH_LABELS), "label_name": datasets.Value("string"),
        "dataset": datasets.Value("string"), "domain": datasets.Value("string"),
        "institution": datasets.Value("string"), "license": datasets.Value("string"),
    })
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(folder / "ubench"))
    return folder


@pytest.mark.parametrize("name", UBENCH_TASKS)
def test_ubench_task_keeps_exactly_its_classes(ubench_dir, name):
    (task,) = resolve_tasks(name)
    assert task.data.license.startswith("CC BY-SA 4.0")
    assert set(task.class_labels) <= set(UBENCH_LABELS), "class labels must be uBench's ClassLabel names"
    dataset = _load(task, ubench_dir)
    assert len(dataset.images) == 2 * len(UBENCH_LABELS)
    kept, labels = _label_indices(task, dataset)
    assert len(kept) == 2 * len(task.class_labels)
    assert sorted(set(labels.tolist())) == list(range(len(task.class_labels)))
    assert {dataset.labels[i] for i in kept} == set(task.class_labels)


def test_ubench_tasks_cover_cell_and_molecular_biology():
    domains = {t.domain for t in resolve_tasks(",".join(UBENCH_TASKS))}
    assert {"cell_biology", "molecular_biology", "pathology", "hematology"} <= domains


def _dsad(root: Path) -> Path:
    structures = ["abdominal_wall", "colon", "liver", "stomach"]
    for s_index, structure in enumerate(structures):
        for surgery in ("01", "02"):
            for frame in ("00", "01"):
                _png(root / structure / surgery / f"image{frame}.png", s_index * 10 + int(frame))
                Image.fromarray(np.zeros((24, 24), dtype=np.uint8)).save(root / structure / surgery / f"mask{frame}.png")
    _png(root / "multilabel" / "01" / "image00.png", 99)
    return root


def test_dsad_task_reads_images_not_masks_and_groups_by_surgery(tmp_path):
    path = TASKS / "dresden-surgical-anatomy.yaml"
    data = yaml.safe_load(path.read_text())
    assert data["domain"] == "surgery" and "38494425" in data["data"]["source"]
    root = _dsad(tmp_path / "DSAD")
    # Without `include:` every PNG below a class folder is read: the masks would be scored as images.
    plain = load_dataset("imagefolder", root, {"extensions": [".png"]})
    assert sum(Path(str(img.path)).name.startswith("mask") for img in plain.images) == 16
    task = parse_task(data, path)
    dataset = _load(task, tmp_path)
    assert len(dataset.images) == 17 and all(Path(str(i.path)).name.startswith("image") for i in dataset.images)
    # one group per surgery number, across structures (the same patient), so a probe never splits a patient
    assert sorted(set(dataset.groups)) == ["01", "02"]
    kept, _ = _label_indices(task, dataset)
    assert len(kept) == 16  # multilabel/ is not a task class


def test_imagefolder_group_level_deeper_than_the_layout_is_one_clear_error(tmp_path):
    _png(tmp_path / "root" / "liver" / "image00.png", 1)
    with pytest.raises(DatasetInvalid, match="group_folder_level 1 needs the image 1 folder"):
        load_dataset("imagefolder", tmp_path / "root", {"group_folder_level": 1})
    with pytest.raises(DatasetInvalid, match=r"no images matching \['nothing\*'\]"):
        load_dataset("imagefolder", tmp_path / "root", {"include": ["nothing*"]})
