"""CSV/Parquet adapter: image paths or bytes, labels, multilabel cells, several captions per image."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from biomedica.eval.adapters import DatasetInvalid, DatasetMissing, load_dataset


def test_csv_with_paths_labels_and_split_filter(tmp_path, skimage_fixtures):
    (tmp_path / "labels.csv").write_text(
        "path,label,split\n"
        f"{skimage_fixtures / 'retina.jpg'},fundus,test\n"
        f"{skimage_fixtures / 'ihc.png'},ihc,test\n"
        f"{skimage_fixtures / 'cell.png'},cell,train\n"
    )
    dataset = load_dataset(
        "csv", tmp_path, {"file": "labels.csv", "image_column": "path", "split_column": "split", "split_value": "test"}
    )
    assert dataset.labels == ["fundus", "ihc"]
    assert dataset.images[0].load().size == (1411, 1411)


def test_parquet_with_image_bytes_and_multilabel_cells(tmp_path, skimage_fixtures):
    table = pa.table(
        {
            "image": [(skimage_fixtures / "cell.png").read_bytes(), {"bytes": (skimage_fixtures / "ihc.png").read_bytes()}["bytes"]],
            "findings": ["edema|effusion", "effusion"],
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    dataset = load_dataset(
        "parquet", tmp_path, {"file": "t.parquet", "label_column": "findings", "label_separator": "|"}
    )
    assert dataset.labels == [["edema", "effusion"], ["effusion"]]
    assert dataset.images[1].load().size == (512, 512)


def test_rows_sharing_an_image_become_several_captions(tmp_path, skimage_fixtures):
    (tmp_path / "images").mkdir()
    for name in ("cell.png", "ihc.png"):
        (tmp_path / "images" / name).write_bytes((skimage_fixtures / name).read_bytes())
    (tmp_path / "captions.csv").write_text(
        "name,caption\ncell.png,A cell in saline.\nihc.png,IHC stained tissue.\ncell.png,Phase contrast micrograph.\n"
    )
    dataset = load_dataset(
        "table", tmp_path,
        {"file": "captions.csv", "image_column": "name", "label_column": None, "caption_column": "caption",
         "image_root": "images"},
    )
    assert dataset.labels is None
    assert dataset.captions == [["A cell in saline.", "Phase contrast micrograph."], ["IHC stained tissue."]]


def test_table_errors_name_the_missing_column_or_file(tmp_path):
    (tmp_path / "t.csv").write_text("file,y\na.png,1\n")
    with pytest.raises(DatasetInvalid, match="column\\(s\\) image, label not found"):
        load_dataset("table", tmp_path, {"file": "t.csv"})
    with pytest.raises(DatasetMissing, match="absent"):
        load_dataset("table", tmp_path, {"file": "t.csv", "image_column": "file", "label_column": "y"})
    with pytest.raises(DatasetMissing, match="not found"):
        load_dataset("table", tmp_path, {"file": "other.csv"})
