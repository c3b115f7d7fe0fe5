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
