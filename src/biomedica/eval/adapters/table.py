"""Table adapter: one row per image (a path, an id or encoded bytes) plus a label, one-hot columns or a caption.

It reads the tables publishers actually ship: comma `.csv`, tab-separated `.txt/.tsv/.tab` (ROCO's headerless
`captions.txt`, Harvard Dataverse's `HAM10000_metadata.tab`), `.parquet`; one-hot finding columns (CheXpert,
ISIC 2018) instead of a label column; one row per box (RSNA `stage_2_train_labels.csv`) grouped to one row
per image; row filters (CheXpert frontal views); and a key list that fixes exactly which images a task uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from biomedica.eval.adapters.registry import (
    AdapterOptions,
    DatasetInvalid,
    DatasetMissing,
    EvalDataset,
    register_adapter,
)
from biomedica.eval.images import BytesImage, DicomImage, FileImage

TAB_SUFFIXES = (".txt", ".tsv", ".tab")
# value of a `filters:` entry: one value, a list of allowed values, or {"contains": "text"} (case-insensitive)
FilterValue = str | int | float | bool | list[str | int | float | bool] | dict[Literal["contains"], str]


class TableOptions(AdapterOptions):
    file: str  # relative to the task's root (or absolute)
    image_column: str = "image"  # a path (relative to image_root) or bytes / {"bytes": ...} struct
    label_column: str | None = "label"
    caption_column: str | None = None  # several rows with the same image give several captions
    label_separator: str | None = None  # multilabel cells like "edema|effusion"
    image_root: str | None = None  # folder the paths are relative to (relative: to the root); default: the table's folder
    image_suffix: str = ""  # appended to the image cell, for tables that list ids (HAM10000: image_id + ".jpg")
    split_column: str | None = None
    split_value: str | None = None
    # reading
    delimiter: str | None = None  # default: tab for .txt/.tsv/.tab, comma otherwise
    header: bool = True  # false: the file has no header line; give column_names
    column_names: list[str] | None = None  # names for a headerless file (ROCO captions.txt: [id, caption])
    quoting: bool | None = None  # "..." quoted cells; default on for .csv/.tab (Dataverse quotes strings), off for .txt/.tsv
    strip: bool = True  # strip whitespace around text cells (ROCO captions start with a space)
    # labels from one-hot columns (CheXpert, ISIC 2018 MEL,NV,...): the label is the name of the column holding 1
    one_hot_columns: list[str] | None = None
    one_hot_multilabel: bool = False  # false: rows with no 1 or several are dropped (counted in notes)
    one_hot_labels: dict[str, str] = Field(default_factory=dict)  # column -> label value when they differ (ISIC 2018 MEL -> mel)
    filters: dict[str, FilterValue] = Field(default_factory=dict)  # keep rows whose column matches (CheXpert: {Frontal/Lateral: Frontal})
    keys_file: str | None = None  # ids to keep, in this order (relative: the task file's folder, then the root)
    key_column: str | None = None  # the column the keys are matched against; default group_by, else image_column
    group_by: str | None = None  # one image per value (RSNA: patientId); labels combined by `aggregate`
    aggregate: Literal["max", "any", "first"] = "max"
    group_column: str | None = None  # sets EvalDataset.groups (patient/lesion) so splits never cut a group
    missing_images: Literal["error", "skip"] = "error"  # skip: rows whose image file is absent are left out (noted)

    @model_validator(mode="after")
    def _consistent(self) -> TableOptions:
        if not self.header and not self.column_names:
            raise ValueError("header: false needs column_names: [...] naming the file's columns")
        if self.one_hot_columns is not None and len(self.one_hot_columns) < 1:
            raise ValueError("one_hot_columns: give at least one column")
        return self


def _read_table(path: Path, options: TableOptions) -> pa.Table:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return pq.read_table(path)
    if not suffixes or suffixes[-1] not in (".csv", ".gz", *TAB_SUFFIXES):
        raise DatasetInvalid(f"{path}: unsupported table type {path.suffix!r}; use .csv, .tsv, .tab, .txt or .parquet")
    tabbed = any(s in TAB_SUFFIXES for s in suffixes)
    delimiter = options.delimiter or ("\t" if tabbed else ",")
    quoting = options.quoting if options.quoting is not None else not any(s in (".txt", ".tsv") for s in suffixes)
    read = pacsv.ReadOptions(
        column_names=options.column_names if not options.header else None,
        autogenerate_column_names=False,
    )
    try:
        table = pacsv.read_csv(
            path,
            read_options=read,
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if quoting else False),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=False, auto_dict_encode=False),
        )
    except pa.ArrowInvalid as exc:
        raise DatasetInvalid(f"{path}: cannot be read as a {'tab' if delimiter == chr(9) else repr(delimiter)}-separated "
                             f"table ({str(exc).splitlines()[0]}); check delimiter/header/column_names") from None
    if options.header and options.column_names:
        if len(options.column_names) != table.num_columns:
            raise DatasetInvalid(f"{path}: column_names has {len(options.column_names)} names for "
                                 f"{table.num_columns} columns")
        table = table.rename_columns(options.column_names)
    if options.strip:  # also header names: some exports pad them
        table = table.rename_columns([name.strip() for name in table.column_names])
    return table


def _image_bytes(cell) -> bytes | None:
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell)
    if isinstance(cell, dict) and cell.get("bytes"):
        return bytes(cell["bytes"])
    return None


def _text(value: Any) -> str:
    """A cell as the text a task file writes: 1.0 -> "1" so `Target: 1` and a float column agree."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _is_one(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "1.0", "true")
    return value is not None and not isinstance(value, (bytes, dict)) and value == 1


def _matches(value: Any, wanted: FilterValue) -> bool:
    if isinstance(wanted, dict):
        return wanted["contains"].lower() in _text(value).lower()
    allowed = wanted if isinstance(wanted, list) else [wanted]
    return _text(value) in {_text(a) for a in allowed}


def _aggregate(values: list[Any], how: str) -> Any:
    if how == "first":
        return values[0]
    if how == "any":
        return 1 if any(_is_one(v) or (isinstance(v, (int, float)) and v > 0) for v in values) else 0
    present = [v for v in values if v is not None and v != ""]
    try:
        return max(present, key=lambda v: float(v)) if present else None
    except (TypeError, ValueError):
        raise DatasetInvalid(f"aggregate: max needs numbers, got {present[:3]}; use aggregate: first") from None


def _group_rows(rows: list[dict], options: TableOptions, combined: list[str]) -> list[dict]:
    """One row per `group_by` value (first occurrence order); `combined` columns aggregated, the rest from the first row."""
    order: dict[Any, list[dict]] = {}
    for row in rows:
        order.setdefault(_text(row[options.group_by]), []).append(row)
    grouped = []
    for members in order.values():
        row = dict(members[0])
        for column in combined:
            row[column] = _aggregate([m[column] for m in members], options.aggregate)
        grouped.append(row)
    return grouped


def read_keys(path: Path, key_column: str) -> list[str]:
    """Ids from a key list: one per line; `#` lines are comments (how the list was drawn), an optional header line."""
    if not path.is_file():
        raise DatasetMissing(f"key list {path} not found")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    keys = [line.split(",")[0].strip() if "," in line and path.suffix == ".csv" else line
            for line in lines if line and not line.startswith("#")]
    if keys and keys[0] == key_column:
        keys = keys[1:]
    if not keys:
        raise DatasetInvalid(f"key list {path} is empty")
    return keys


def _keep_keys(rows: list[dict], column: str, keys_path: Path, table: Path) -> list[dict]:
    keys = read_keys(keys_path, column)
    by_key: dict[str, list[dict]] = {}
    for row in rows:
        by_key.setdefault(_text(row[column]), []).append(row)
    absent = [k for k in keys if k not in by_key]
    if absent:
        raise DatasetInvalid(
            f"{table.name}: {len(absent)} of the {len(keys)} ids in {keys_path.name} are not in the data "
            f"(column {column!r}, after filters), e.g. {', '.join(absent[:3])}; the task would evaluate a different "
            "set: check the data version or regenerate the key list"
        )
    return [row for key in dict.fromkeys(keys) for row in by_key[key]]


@register_adapter("table", TableOptions, "csv", "parquet")
def load_table(root: Path, options: TableOptions) -> EvalDataset:
    """Rows of (image path/id or bytes, label / one-hot columns / caption) from .csv/.tsv/.tab/.txt/.parquet."""
    path = Path(options.file) if Path(options.file).is_absolute() else root / options.file
    if not path.is_file():
        raise DatasetMissing(f"table {path} not found")
    table = _read_table(path, options)
    label_column = None if options.one_hot_columns else options.label_column
    key_column = options.key_column or options.group_by or options.image_column
    needed = list(dict.fromkeys(c for c in (
        options.image_column, label_column, options.caption_column, options.split_column, options.group_by,
        options.group_column, key_column if options.keys_file else None, *(options.one_hot_columns or []),
        *options.filters,
    ) if c))
    absent = [c for c in needed if c not in table.column_names]
    if absent:
        raise DatasetInvalid(
            f"{path}: column(s) {', '.join(absent)} not found (columns: {', '.join(table.column_names[:30])}); "
            "set image_column/label_column/one_hot_columns/caption_column in the task's dataset options"
        )
    if label_column is None and options.caption_column is None and not options.one_hot_columns:
        raise DatasetInvalid(f"{path}: set label_column, one_hot_columns or caption_column in the task's dataset options")
    image_root = Path(options.image_root) if options.image_root else path.parent
    if not image_root.is_absolute():
        image_root = root / image_root
    rows = table.select(needed).to_pylist()
    if options.strip:
        rows = [{k: v.strip() if isinstance(v, str) else v for k, v in row.items()} for row in rows]
    notes: list[str] = []
    for column, wanted in options.filters.items():
        before = len(rows)
        rows = [r for r in rows if _matches(r[column], wanted)]
        notes.append(f"filter {column}={wanted}: kept {len(rows)} of {before} rows")
    if options.split_column:
        rows = [r for r in rows if str(r[options.split_column]) == str(options.split_value)]
    if options.group_by:
        before = len(rows)
        rows = _group_rows(rows, options, [c for c in (label_column, *(options.one_hot_columns or [])) if c])
        notes.append(f"group_by {options.group_by}: {before} rows -> {len(rows)} images (labels: {options.aggregate})")
    if options.keys_file:
        keys_path = Path(options.keys_file) if Path(options.keys_file).is_absolute() else root / options.keys_file
        rows = _keep_keys(rows, key_column, keys_path, path)
    if options.one_hot_columns:
        rows, dropped = _one_hot_labels(rows, options.one_hot_columns, options.one_hot_multilabel)
        if dropped:
            notes.append(f"one-hot {options.one_hot_columns}: dropped {dropped} row(s) with no 1 or several")
    images, labels, captions, groups, index_of = [], [], [], [], {}
    for row_number, row in enumerate(rows):
        cell = row[options.image_column]
        data = _image_bytes(cell)
        identity = f"row{row_number}" if data is not None else _text(cell)
        if options.caption_column and data is None and identity in index_of:
            captions[index_of[identity]].append(_text(row[options.caption_column]))
            continue
        if data is not None:
            images.append(BytesImage(data, f"{path.name}:{row_number}"))
        elif cell is not None and _text(cell):
            file = image_root / f"{_text(cell)}{options.image_suffix}"
            images.append(DicomImage(file) if file.suffix.lower() == ".dcm" else FileImage(file))
        else:
            raise DatasetInvalid(f"{path}: row {row_number} has no image in column {options.image_column!r}")
        index_of[identity] = len(images) - 1
        if options.one_hot_columns:
            hot = row["__label__"]
            relabel = options.one_hot_labels.get
            labels.append([relabel(h, h) for h in hot] if isinstance(hot, list) else relabel(hot, hot))
        elif label_column:
            value = row[label_column]
            if options.label_separator:
                labels.append([v.strip() for v in _text(value).split(options.label_separator) if v.strip()])
            else:
                labels.append(_text(value))
        if options.caption_column:
            captions.append([_text(row[options.caption_column])])
        if options.group_column:
            groups.append(_text(row[options.group_column]))
    absent_at = [i for i, img in enumerate(images) if isinstance(img, (FileImage, DicomImage)) and not img.path.is_file()]
    if absent_at and (options.missing_images == "error" or len(absent_at) == len(images)):
        raise DatasetMissing(
            f"{len(absent_at)} image file(s) listed in {path.name} are absent, e.g. {images[absent_at[0]].path}"
        )
    if absent_at:
        example = images[absent_at[0]].path
        keep = sorted(set(range(len(images))) - set(absent_at))
        images, labels, captions, groups = ([values[i] for i in keep] if values else values
                                            for values in (images, labels, captions, groups))
        notes.append(f"{len(absent_at)} of {len(absent_at) + len(keep)} images listed in {path.name} are absent "
                     f"(e.g. {example}); evaluated without them (missing_images: skip)")
    return EvalDataset(
        images=images,
        labels=labels if (label_column or options.one_hot_columns) else None,
        captions=captions if options.caption_column else None,
        groups=groups if options.group_column else None,
        notes=notes,
    )


def _one_hot_labels(rows: list[dict], columns: list[str], multilabel: bool) -> tuple[list[dict], int]:
    kept, dropped = [], 0
    for row in rows:
        hot = [c for c in columns if _is_one(row[c])]
        if multilabel:
            kept.append({**row, "__label__": hot})
        elif len(hot) == 1:
            kept.append({**row, "__label__": hot[0]})
        else:
            dropped += 1
    return kept, dropped
