"""CSV/Parquet adapter: one row per image, the image as a path or as encoded bytes, plus a label or caption."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from biomedica.eval.adapters.registry import (
    AdapterOptions,
    DatasetInvalid,
    DatasetMissing,
    EvalDataset,
    register_adapter,
)
from biomedica.eval.images import BytesImage, DicomImage, FileImage


class TableOptions(AdapterOptions):
    file: str  # relative to the task's root (or absolute)
    image_column: str = "image"  # a path (relative to image_root) or bytes / {"bytes": ...} struct
    label_column: str | None = "label"
    caption_column: str | None = None  # several rows with the same image give several captions
    label_separator: str | None = None  # multilabel cells like "edema|effusion"
    image_root: str | None = None  # folder the paths are relative to; default: the table's folder
    image_suffix: str = ""  # appended to the image cell, for tables that list ids (HAM10000: image_id + ".jpg")
    split_column: str | None = None
    split_value: str | None = None


def _read_table(path: Path) -> pa.Table:
    if path.suffix.lower() in (".parquet", ".pq"):
        return pq.read_table(path)
    if path.suffix.lower() in (".csv", ".tsv", ".gz"):
        delimiter = "\t" if ".tsv" in path.suffixes else ","
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=False, auto_dict_encode=False),
        )
    raise DatasetInvalid(f"{path}: unsupported table type {path.suffix!r}; use .csv, .tsv or .parquet")


def _image_bytes(cell) -> bytes | None:
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell)
    if isinstance(cell, dict) and cell.get("bytes"):
        return bytes(cell["bytes"])
    return None


@register_adapter("table", TableOptions, "csv", "parquet")
def load_table(root: Path, options: TableOptions) -> EvalDataset:
    """Rows of (image path or bytes, label or caption) from a .csv/.tsv/.parquet file."""
    path = Path(options.file) if Path(options.file).is_absolute() else root / options.file
    if not path.is_file():
        raise DatasetMissing(f"table {path} not found")
    table = _read_table(path)
    needed = [c for c in (options.image_column, options.label_column, options.caption_column, options.split_column) if c]
    absent = [c for c in needed if c not in table.column_names]
    if absent:
        raise DatasetInvalid(
            f"{path}: column(s) {', '.join(absent)} not found (columns: {', '.join(table.column_names)}); "
            "set image_column/label_column/caption_column in the task's dataset options"
        )
    if options.label_column is None and options.caption_column is None:
        raise DatasetInvalid(f"{path}: set label_column or caption_column in the task's dataset options")
    image_root = Path(options.image_root) if options.image_root else path.parent
    if not image_root.is_absolute():
        image_root = root / image_root
    rows = table.select(needed).to_pylist()
    if options.split_column:
        rows = [r for r in rows if str(r[options.split_column]) == str(options.split_value)]
    images, labels, captions, index_of = [], [], [], {}
    for row_number, row in enumerate(rows):
        cell = row[options.image_column]
        data = _image_bytes(cell)
        identity = f"row{row_number}" if data is not None else str(cell)
        if options.caption_column and data is None and identity in index_of:
            captions[index_of[identity]].append(str(row[options.caption_column]))
            continue
        if data is not None:
            images.append(BytesImage(data, f"{path.name}:{row_number}"))
        elif isinstance(cell, str) and cell:
            file = image_root / f"{cell}{options.image_suffix}"
            images.append(DicomImage(file) if file.suffix.lower() == ".dcm" else FileImage(file))
        else:
            raise DatasetInvalid(f"{path}: row {row_number} has no image in column {options.image_column!r}")
        index_of[identity] = len(images) - 1
        if options.label_column:
            value = row[options.label_column]
            if options.label_separator:
                labels.append([v.strip() for v in str(value).split(options.label_separator) if v.strip()])
            else:
                labels.append(str(value))
        if options.caption_column:
            captions.append([str(row[options.caption_column])])
    missing = [img.path for img in images if isinstance(img, (FileImage, DicomImage)) and not img.path.is_file()]
    if missing:
        raise DatasetMissing(f"{len(missing)} image file(s) listed in {path.name} are absent, e.g. {missing[0]}")
    return EvalDataset(
        images=images,
        labels=labels if options.label_column else None,
        captions=captions if options.caption_column else None,
    )
