"""The offline benchmark builder: real pydicom-data and scikit-image images, labelled and traceable."""

from __future__ import annotations

import csv

import pytest
import yaml

from biomedica.eval.offline_benchmark import OfflineBenchmarkConfig, build_offline_benchmark
from biomedica.eval.tasks import load_task_file


def test_benchmark_has_every_modality_with_provenance(offline_benchmark):
    assert offline_benchmark.counts == {
        label: 40 for label in ("ct", "fundus", "ihc", "microscopy", "mr", "nm", "us", "xray")
    }
    assert offline_benchmark.sources["us"] >= 5 and offline_benchmark.sources["ct"] >= 3
    with open(offline_benchmark.task_file.parent / "provenance.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 320
    assert all((offline_benchmark.root / row["image"]).is_file() for row in rows)
    assert {row["source"] for row in rows if row["label"] == "fundus"} == {"skimage/retina.jpg", "skimage/microaneurysms.png"}


def test_dicom_classes_follow_the_modality_tag(offline_benchmark):
    import pydicom
    from pydicom.data import get_testdata_file

    with open(offline_benchmark.task_file.parent / "provenance.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["label"] in ("ct", "mr", "us", "xray", "nm")]
    expected = {"ct": {"CT"}, "mr": {"MR"}, "us": {"US"}, "xray": {"CR", "DX"}, "nm": {"NM"}}
    for row in rows[::17]:
        modality = pydicom.dcmread(get_testdata_file(row["source"]), stop_before_pixels=True).Modality
        assert modality in expected[row["label"]], row


def test_task_file_points_at_the_images(offline_benchmark):
    task = load_task_file(offline_benchmark.task_file)
    assert task.dataset.resolve_root(offline_benchmark.root) == offline_benchmark.root.resolve()
    assert len(task.classes) == 8 and task.metric == "balanced_accuracy"
    assert yaml.safe_load(offline_benchmark.task_file.read_text())["data"]["source"].startswith("biomedica eval")


def test_builder_refuses_a_non_empty_folder(offline_benchmark):
    with pytest.raises(FileExistsError, match="not empty"):
        build_offline_benchmark(offline_benchmark.task_file.parent, OfflineBenchmarkConfig(images_per_class=2))
