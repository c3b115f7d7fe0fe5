"""Alternative dataset layouts: the first present one is loaded and recorded; none present lists every one tried."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from biomedica.eval.adapters import DatasetMissing
from biomedica.eval.runner import load_task_dataset
from biomedica.eval.tasks import load_task_file, resolve_tasks


def _png(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


TWO_LAYOUTS = {
    "name": "two-layouts",
    "domain": "radiology",
    "kind": "classification",
    "dataset": [
        {"adapter": "table", "root": "official", "options": {"file": "labels.csv", "image_column": "path"}},
        {"adapter": "imagefolder", "root": "repack/images"},
    ],
    "classes": ["a", "b"],
    "templates": ["{c}."],
}


def test_first_present_layout_is_loaded_and_none_present_lists_all(tmp_path):
    task_file = tmp_path / "two-layouts.yaml"
    task_file.write_text(yaml.safe_dump(TWO_LAYOUTS))
    task = resolve_tasks(str(task_file))[0]
    assert [s.adapter for s in task.dataset_layouts] == ["table", "imagefolder"]
    data = tmp_path / "data"
    with pytest.raises(DatasetMissing) as caught:
        load_task_dataset(task, data)
    assert str(data / "official" / "labels.csv") in str(caught.value)
    assert str(data / "repack" / "images") in str(caught.value)
    for label in ("a", "b"):
        _png(data / "repack" / "images" / label / f"{label}.png")
    dataset, spec, root = load_task_dataset(task, data)
    assert (spec.adapter, root) == ("imagefolder", data / "repack" / "images")
    assert sorted(dataset.labels) == ["a", "b"]
    (data / "official").mkdir()  # the root alone is not enough when the layout names a file
    assert load_task_dataset(task, data)[1].adapter == "imagefolder"
    _png(data / "official" / "x.png")
    (data / "official" / "labels.csv").write_text("path,label\nx.png,a\n")
    dataset, spec, root = load_task_dataset(task, data)
    assert (spec.adapter, dataset.labels) == ("table", ["a"])
    assert task.present_layout(data)[0] == 0


def test_single_layout_is_a_list_of_one_and_empty_list_is_refused(tmp_path):
    single = load_task_file(_write(tmp_path, {**TWO_LAYOUTS, "dataset": TWO_LAYOUTS["dataset"][1]}))
    assert len(single.dataset_layouts) == 1 and single.dataset_layouts[0].adapter == "imagefolder"
    from biomedica.eval.tasks import TaskFileError

    with pytest.raises(TaskFileError, match="field 'dataset'"):
        load_task_file(_write(tmp_path, {**TWO_LAYOUTS, "dataset": []}))


def _write(tmp_path, data):
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# --- stand-ins in exactly the publishers' layouts, loaded through the shipped task files -----------------------

FINDINGS = ["No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
            "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
            "Fracture", "Support Devices"]  # CheXpert train.csv column order


def _shipped(name):
    return resolve_tasks(name)[0]


def test_roco_official_headerless_captions_txt_and_the_repackaging(tmp_path):
    radiology = tmp_path / "roco-dataset" / "data" / "test" / "radiology"
    radiology.mkdir(parents=True)
    # exactly as github.com/razorx89/roco-dataset: "<id>\t <caption>", mid-caption quotes, no header
    (radiology / "captions.txt").write_text(
        "ROCO_00001\t Axial MRI (coronal view).\n"
        'ROCO_06379\t The "floating gallbladder." Ultrasound image in Patient 2.\n'
        "ROCO_00016\t Axial source image from an intracranial magnetic resonance angiogram.\n"
    )
    _png(radiology / "images" / "ROCO_00001.jpg", 10)
    _png(radiology / "images" / "ROCO_06379.jpg", 20)  # ROCO_00016: fetch.py could not get it
    task = _shipped("roco-retrieval")
    dataset, spec, root = load_task_dataset(task, tmp_path)
    assert root == radiology and spec.options["file"] == "captions.txt"
    assert dataset.captions == [["Axial MRI (coronal view)."], ['The "floating gallbladder." Ultrasound image in Patient 2.']]
    assert [img.path.name for img in dataset.images] == ["ROCO_00001.jpg", "ROCO_06379.jpg"]
    assert any("1 of 3 images" in note for note in dataset.notes)

    repack = tmp_path / "repack" / "roco-dataset" / "all_data" / "test"
    repack.mkdir(parents=True)
    (repack / "radiologytestdata.csv").write_text(
        'id,name,caption\nROCO_00001,PMC4608653_cro-0008-0385-g01.jpg,Axial MRI (coronal view).\n'
        'ROCO_06379,PMC1_x.jpg,"The ""floating gallbladder."", image."\n'
    )
    _png(repack / "radiology" / "images" / "PMC4608653_cro-0008-0385-g01.jpg")
    _png(repack / "radiology" / "images" / "PMC1_x.jpg")
    dataset, spec, _ = load_task_dataset(task, tmp_path / "repack")
    assert task.dataset_layouts.index(spec) == 1
    assert dataset.captions[1] == ['The "floating gallbladder.", image.']


def _chexpert_rows():
    """(Path, view, {finding: value}) rows: clean positives, a lateral, an uncertain -1, a double positive."""
    rows = []
    for n, finding in enumerate(["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]):
        for k in range(3):
            rows.append((f"CheXpert-v1.0-small/train/patient{n}{k:04d}/study1/view1_frontal.jpg", "Frontal", {finding: "1.0"}))
    rows.append(("CheXpert-v1.0-small/train/patient90000/study1/view2_lateral.jpg", "Lateral", {"Edema": "1.0"}))
    rows.append(("CheXpert-v1.0-small/train/patient90001/study1/view1_frontal.jpg", "Frontal",
                 {"Edema": "1.0", "Atelectasis": "-1.0"}))
    rows.append(("CheXpert-v1.0-small/train/patient90002/study1/view1_frontal.jpg", "Frontal",
                 {"Edema": "1.0", "Cardiomegaly": "1.0"}))
    return rows


def _write_chexpert(root):
    lines = ["Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(FINDINGS)]
    for path, view, values in _chexpert_rows():
        cells = [values.get(f, "") for f in FINDINGS]  # blanks as in the real file
        lines.append(f"{path},Female,68,{view},{'AP' if view == 'Frontal' else ''}," + ",".join(cells))
        _png(root / path)
    (root / "CheXpert-v1.0-small").mkdir(parents=True, exist_ok=True)
    (root / "CheXpert-v1.0-small" / "train.csv").write_text("\n".join(lines) + "\n")


def test_chexpert_official_train_csv_with_drawn_keys(tmp_path):
    from biomedica.eval.keys import chexpert_5x200_keys, write_keys

    root = tmp_path / "chexpert"
    _write_chexpert(root)
    task = _shipped("chexpert-5x200")
    with pytest.raises(DatasetMissing, match="chexpert-5x200-keys.csv"):
        load_task_dataset(task, tmp_path)
    keys = chexpert_5x200_keys(root / "CheXpert-v1.0-small" / "train.csv", seed=0, per_class=2)
    assert len(keys) == 10 and all("patient9" not in k for k in keys)  # lateral, uncertain, double excluded
    assert keys == chexpert_5x200_keys(root / "CheXpert-v1.0-small" / "train.csv", seed=0, per_class=2)
    from biomedica.eval import keys as keys_module

    keys_module.DRAWERS["chexpert-5x200-test"] = (
        lambda source, seed: chexpert_5x200_keys(source, seed=seed, per_class=2), "Path", "train.csv")
    try:
        count, digest = write_keys("chexpert-5x200-test", root / "CheXpert-v1.0-small" / "train.csv",
                                   root / "chexpert-5x200-keys.csv")
    finally:
        del keys_module.DRAWERS["chexpert-5x200-test"]
    assert count == 10 and len(digest) == 64
    dataset, _spec, _ = load_task_dataset(task, tmp_path)
    assert [img.path for img in dataset.images] == [root / k for k in keys]  # the list's order
    assert dataset.labels == [lab for lab in task.class_labels for _ in range(2)]


def test_make_keys_never_replaces_another_list_without_overwrite(tmp_path):
    from biomedica.eval import keys as keys_module
    from biomedica.eval.keys import KeyDrawError, chexpert_5x200_keys, write_keys

    root = tmp_path / "chexpert"
    _write_chexpert(root)
    source, out = root / "CheXpert-v1.0-small" / "train.csv", root / "chexpert-5x200-keys.csv"
    out.write_text("Path\nCheXpert-v1.0-small/train/patient1/study1/view1_frontal.jpg\n")  # e.g. a GLoRIA-made list
    before = out.read_bytes()
    keys_module.DRAWERS["chexpert-5x200-test"] = (
        lambda source, seed: chexpert_5x200_keys(source, seed=seed, per_class=2), "Path", "train.csv")
    try:
        with pytest.raises(KeyDrawError, match="already holds another key list.*--overwrite"):
            write_keys("chexpert-5x200-test", source, out)
        assert out.read_bytes() == before
        write_keys("chexpert-5x200-test", source, out, overwrite=True)
        drawn = out.read_bytes()
        write_keys("chexpert-5x200-test", source, out)  # the same list again: nothing to refuse
        assert out.read_bytes() == drawn != before
        with pytest.raises(KeyDrawError, match="--overwrite"):
            write_keys("chexpert-5x200-test", source, out, seed=1)
    finally:
        del keys_module.DRAWERS["chexpert-5x200-test"]


def test_chexpert_gloria_made_file_with_pandas_index_column(tmp_path):
    root = tmp_path / "chexpert"
    lines = [",Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(FINDINGS) + ",Report Impression"]
    for i, (path, view, values) in enumerate(_chexpert_rows()[:15]):
        path = path.replace("CheXpert-v1.0-small", "CheXpert-v1.0")
        cells = [values.get(f, "0.0") for f in FINDINGS]
        lines.append(f'{i},{path},Male,50,{view},PA,' + ",".join(cells) + ',"1. No acute process, stable."')
        _png(root / path)
    (root / "CheXpert-v1.0" / "chexpert_8x200.csv").write_text("\n".join(lines) + "\n")
    dataset, spec, _ = load_task_dataset(_shipped("chexpert-5x200"), tmp_path)
    assert spec.options["file"] == "CheXpert-v1.0/chexpert_8x200.csv"
    assert sorted(set(dataset.labels)) == sorted(_shipped("chexpert-5x200").class_labels) and len(dataset.labels) == 15


def test_rsna_one_row_per_box_grouped_by_patient_with_gloria_keys(tmp_path):
    pytest.importorskip("pydicom")
    from biomedica.eval.keys import rsna_gloria_test_keys

    root = tmp_path / "rsna-pneumonia"
    root.mkdir()
    rows = ["patientId,x,y,width,height,Target"]
    patients = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(20)]
    for i, pid in enumerate(patients):
        if i % 3 == 0:  # two boxes
            rows += [f"{pid},264.0,152.0,213.0,379.0,1", f"{pid},562.0,152.0,256.0,453.0,1"]
        else:
            rows.append(f"{pid},,,,,0")
    (root / "stage_2_train_labels.csv").write_text("\n".join(rows) + "\n")
    _dicom_stand_ins(root / "stage_2_train_images", patients)
    keys = rsna_gloria_test_keys(root / "stage_2_train_labels.csv")
    assert len(keys) == 3  # ceil(0.3*20)=6 -> 6 - ceil(3) = 3
    (root / "rsna-pneumonia-keys.csv").write_text("# drawn for the test\npatientId\n" + "\n".join(keys) + "\n")
    dataset, _, _ = load_task_dataset(_shipped("rsna-pneumonia"), tmp_path)
    assert [img.path.stem for img in dataset.images] == keys
    assert dataset.labels == ["1" if patients.index(k) % 3 == 0 else "0" for k in keys]
    assert any("group_by patientId: 27 rows -> 20 images" in n for n in dataset.notes)
    dataset.images[0].load()


def test_rsna_split_equals_sklearns_train_test_split(tmp_path):
    model_selection = pytest.importorskip("sklearn.model_selection")
    from biomedica.eval.keys import rsna_gloria_test_keys

    patients = [f"p{i:04d}" for i in range(1, 538)][::-1]
    (tmp_path / "labels.csv").write_text("patientId,x,y,width,height,Target\n" + "".join(f"{p},,,,,0\n" for p in patients))
    ordered = sorted(patients)
    _, test_val = model_selection.train_test_split(ordered, test_size=0.3, random_state=0)
    expected, _ = model_selection.train_test_split(test_val, test_size=0.5, random_state=0)
    assert rsna_gloria_test_keys(tmp_path / "labels.csv") == expected


def _dicom_stand_ins(folder, names):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True)
    for name in names:
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        ds = FileDataset(str(folder / f"{name}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.PatientID, ds.Modality = name, "CR"
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = np.arange(64, dtype=np.uint8).tobytes()
        ds.save_as(folder / f"{name}.dcm", enforce_file_format=True)


HAM_ROWS = [("HAM_0000118", "ISIC_0027419", "bkl"), ("HAM_0000118", "ISIC_0025030", "bkl"),
            ("HAM_0002730", "ISIC_0026769", "mel"), ("HAM_0001466", "ISIC_0031633", "nv")]


def test_ham10000_dataverse_tab_with_quoted_strings_and_lesion_groups(tmp_path):
    root = tmp_path / "HAM10000"
    header = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset"]
    lines = ["\t".join(f'"{h}"' for h in header)]  # Dataverse's tabular export quotes strings
    for lesion, image, dx in HAM_ROWS:
        lines.append("\t".join([f'"{lesion}"', f'"{image}"', f'"{dx}"', '"histo"', "80.0", '"male"', '"scalp"',
                                '"vidir_modern"']))
        _png(root / "images" / f"{image}.jpg")
    (root / "HAM10000_metadata.tab").write_text("\n".join(lines) + "\n")
    dataset, spec, _ = load_task_dataset(_shipped("ham10000"), tmp_path)
    assert spec.options["file"] == "HAM10000_metadata.tab"
    assert dataset.labels == ["bkl", "bkl", "mel", "nv"]
    assert dataset.groups == ["HAM_0000118", "HAM_0000118", "HAM_0002730", "HAM_0001466"]
    (root / "HAM10000_metadata.tab").unlink()
    (root / "HAM10000_metadata.csv").write_text(
        "lesion_id,image_id,dx,dx_type,age,sex,localization,dataset\n"
        + "".join(f"{lesion},{image},{dx},histo,80.0,male,scalp,vidir_modern\n" for lesion, image, dx in HAM_ROWS))
    dataset, spec, _ = load_task_dataset(_shipped("ham10000"), tmp_path)
    assert (spec.options["file"], dataset.labels[2]) == ("HAM10000_metadata.csv", "mel")


def test_isic2018_task3_one_hot_ground_truth(tmp_path):
    root = tmp_path / "ISIC2018"
    gt = root / "ISIC2018_Task3_Training_GroundTruth"
    gt.mkdir(parents=True)
    columns = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    lines = ["image," + ",".join(columns)]
    for i, hot in enumerate(["NV", "MEL", "VASC", "AKIEC"]):
        lines.append(f"ISIC_00243{i:02d}," + ",".join("1.0" if c == hot else "0.0" for c in columns))
        _png(root / "ISIC2018_Task3_Training_Input" / f"ISIC_00243{i:02d}.jpg")
    (gt / "ISIC2018_Task3_Training_GroundTruth.csv").write_text("\n".join(lines) + "\n")
    dataset, _spec, _ = load_task_dataset(_shipped("ham10000"), tmp_path)
    assert dataset.labels == ["nv", "mel", "vasc", "akiec"] and dataset.groups is None
