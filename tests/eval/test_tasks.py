"""Task files: every shipped task validates; a bad file fails with one message naming the file and field."""

from __future__ import annotations

import pytest
import yaml

from biomedica.eval.tasks import TaskFileError, load_task_file, parse_task, resolve_tasks, shipped_task_files

GOOD = {
    "name": "demo",
    "domain": "pathology",
    "kind": "classification",
    "dataset": {"adapter": "imagefolder", "root": "demo"},
    "classes": {"0": "normal tissue", "1": ["tumor", "cancer"]},
    "templates": ["a photo of {c}."],
}


def _write(tmp_path, data):
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_shipped_task_validates_and_says_where_to_get_its_data():
    files = shipped_task_files()
    assert len(files) >= 20
    tasks = resolve_tasks("all")
    assert {t.name for t in tasks} == set(files)
    assert all(t.data is not None and t.data.source and t.data.layout for t in tasks)
    domains = {t.domain for t in tasks}
    assert {"pathology", "radiology", "ophthalmology", "dermatology", "hematology", "retrieval"} <= domains
    assert {t.kind for t in tasks} == {"classification", "multilabel", "retrieval"}


def test_class_shorthands_and_default_metric():
    task = parse_task(GOOD)
    assert [(c.label, c.names) for c in task.classes] == [("0", ["normal tissue"]), ("1", ["tumor", "cancer"])]
    assert task.metric == "accuracy"
    listed = parse_task({**GOOD, "classes": ["a", "b"]})
    assert listed.class_labels == ["a", "b"]


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"metric": "recall@7"}, "metric", "not a classification metric"),
        ({"kind": "segmentation"}, "kind", "Input should be"),
        ({"templates": ["a photo of a thing."]}, "templates", "placeholder"),
        ({"classes": ["only"]}, "classes", "at least two classes"),
        ({"dataset": {"adapter": "imagefolder", "root": "x", "options": {"splt": "test"}}}, "dataset", "options.splt"),
        ({"dataset": {"adapter": "zipfolder", "root": "x"}}, "dataset.adapter", "unknown dataset adapter"),
        ({"name": "Bad Name"}, "name", "pattern"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_bad_task_file_names_file_and_field(tmp_path, change, field, words):
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(TaskFileError) as caught:
        load_task_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: field '{field}'")
    assert words in message
    assert "\n" not in message


def test_unreadable_yaml_and_unknown_task(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(TaskFileError, match="not valid YAML"):
        load_task_file(path)
    with pytest.raises(TaskFileError, match="list-tasks"):
        resolve_tasks("no-such-task")


def test_resolve_by_name_domain_and_path(tmp_path):
    path = _write(tmp_path, GOOD)
    chosen = resolve_tasks(f"pcam,domain:dermatology,{path},pcam")
    names = [t.name for t in chosen]
    assert names[0] == "pcam" and names[-1] == "demo"
    assert names.count("pcam") == 1
    assert {"ham10000", "dermamnist"} <= set(names)
