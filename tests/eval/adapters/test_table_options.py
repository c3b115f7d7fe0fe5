"""Table adapter options: filters, key lists, one-hot labels, headerless files, skipped missing images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from biomedica.eval.adapters import DatasetInvalid, load_dataset
from biomedica.eval.adapters.table import TableOptions


def _images(folder, names):
    for name in names:
        Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(folder / name)


def test_filters_contains_keys_order_and_absent_keys(tmp_path):
    _images(tmp_path, ["a_frontal.png", "b_lateral.png", "c_frontal.png"])
    (tmp_path / "t.csv").write_text("path,label\na_frontal.png,x\nb_lateral.png,y\nc_frontal.png,y\n")
    (tmp_path / "keys.txt").write_text("# drawn by hand\npath\nc_frontal.png\na_frontal.png\n")
    options = {"file": "t.csv", "image_column": "path", "filters": {"path": {"contains": "FRONTAL"}},
               "keys_file": "keys.txt"}
    dataset = load_dataset("table", tmp_path, options)
    assert [i.path.name for i in dataset.images] == ["c_frontal.png", "a_frontal.png"]
    assert dataset.labels == ["y", "x"]
    (tmp_path / "keys.txt").write_text("b_lateral.png\nzzz.png\n")  # filtered out + not in the data
    with pytest.raises(DatasetInvalid, match="2 of the 2 ids in keys.txt are not in the data"):
        load_dataset("table", tmp_path, options)


def test_one_hot_single_drops_ambiguous_rows_and_multilabel_keeps_lists(tmp_path):
    _images(tmp_path, ["1.png", "2.png", "3.png"])
    (tmp_path / "t.csv").write_text("image,A,B\n1.png,1.0,0.0\n2.png,1,1\n3.png,0,\n")
    single = load_dataset("table", tmp_path, {"file": "t.csv", "one_hot_columns": ["A", "B"]})
    assert single.labels == ["A"] and any("dropped 2 row(s)" in n for n in single.notes)
    multi = load_dataset("table", tmp_path, {"file": "t.csv", "one_hot_columns": ["A", "B"], "one_hot_multilabel": True})
    assert multi.labels == [["A"], ["A", "B"], []]


def test_headerless_needs_column_names_and_missing_images_skip(tmp_path):
    with pytest.raises(ValidationError, match="column_names"):
        TableOptions(file="x.txt", header=False)
    _images(tmp_path, ["k1.png"])
    (tmp_path / "c.tsv").write_text("k1\t a caption \nk2\t another\n")
    options = {"file": "c.tsv", "header": False, "column_names": ["id", "text"], "image_column": "id",
               "image_suffix": ".png", "label_column": None, "caption_column": "text", "missing_images": "skip"}
    dataset = load_dataset("table", tmp_path, options)
    assert dataset.captions == [["a caption"]] and "1 of 2 images" in dataset.notes[-1]
