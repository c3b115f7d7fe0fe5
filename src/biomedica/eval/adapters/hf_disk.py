"""Hugging Face adapter: a dataset saved with `save_to_disk` (needs the optional `datasets` package).

Label rule (copies of one dataset store the same label differently: `1aurent/PatchCamelyon` has a
bool `label`, TFDS-derived copies a ClassLabel, others a plain int):
- bool -> "1" / "0" (True is the positive class, e.g. PCam's tumour patch);
- ClassLabel -> its name when `use_label_names` (default), else its integer as text;
- int, or a float holding an integer -> its decimal text ("1"); str -> unchanged;
- then `label_map` (raw text -> the task's class label) when given; a value it lacks is an error
  listing the values found, so a copy with other names never scores silently as "no label".
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from biomedica.eval.adapters.registry import (
    AdapterOptions,
    DatasetInvalid,
    DatasetMissing,
    EvalDataset,
    register_adapter,
)
from biomedica.eval.images import BytesImage


class HFDiskOptions(AdapterOptions):
    split: str | None = "test"  # for a DatasetDict; ignored for a plain Dataset
    image_column: str = "image"
    label_column: str | None = "label"
    caption_column: str | None = None  # a string or a list of strings per row
    use_label_names: bool = True  # ClassLabel features give their names instead of integers
    label_map: dict[str, str] | None = None  # raw label text (after the rule above) -> the task's class label


def _encoded(value, row: int) -> BytesImage:
    if isinstance(value, dict) and value.get("bytes"):
        return BytesImage(bytes(value["bytes"]), f"row{row}")
    if isinstance(value, dict) and value.get("path"):
        return BytesImage(Path(value["path"]).read_bytes(), f"row{row}")
    if hasattr(value, "save"):  # a decoded PIL image
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return BytesImage(buffer.getvalue(), f"row{row}")
    raise DatasetInvalid(f"row {row}: image column holds {type(value).__name__}, expected an Image feature")


def label_text(value, names: list[str] | None) -> str:
    """One raw label as text, by the module's rule (`names`: the ClassLabel names to use, or None)."""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) or hasattr(value, "__index__"):
        index = int(value)
        return names[index] if names and 0 <= index < len(names) else str(index)
    return str(value)


def map_labels(labels: list, label_map: dict[str, str] | None, where: str) -> list:
    """Apply `label_map` to every label (lists element-wise); DatasetInvalid naming unmapped values."""
    if label_map is None:
        return labels
    values = {v for label in labels for v in (label if isinstance(label, list) else [label])}
    unmapped = sorted(values - set(label_map))
    if unmapped:
        raise DatasetInvalid(
            f"{where}: label value(s) {unmapped[:10]} are not in options.label_map "
            f"(the data has {sorted(values)[:10]}); add them to label_map"
        )
    return [[label_map[v] for v in label] if isinstance(label, list) else label_map[label] for label in labels]


def _class_names(feature) -> list[str] | None:
    """ClassLabel names of a label feature, also inside a Sequence/list of ClassLabel."""
    if isinstance(feature, list) and feature:
        feature = feature[0]
    feature = getattr(feature, "feature", feature)
    return getattr(feature, "names", None)


@register_adapter("hf_disk", HFDiskOptions, "huggingface")
def load_hf_disk(root: Path, options: HFDiskOptions) -> EvalDataset:
    """Rows of (image, label or caption) from `datasets.load_from_disk(root)`."""
    try:
        import datasets
    except ImportError:
        raise DatasetMissing("the hf_disk adapter needs the `datasets` package: pip install 'biomedica[eval]'") from None
    loaded = datasets.load_from_disk(str(root))
    if isinstance(loaded, datasets.DatasetDict):
        if options.split not in loaded:
            raise DatasetInvalid(f"{root}: split {options.split!r} not found (has {', '.join(loaded)}); set split")
        loaded = loaded[options.split]
    columns = [c for c in (options.image_column, options.label_column, options.caption_column) if c]
    absent = [c for c in columns if c not in loaded.column_names]
    if absent:
        raise DatasetInvalid(f"{root}: column(s) {', '.join(absent)} not found (has {', '.join(loaded.column_names)})")
    if options.image_column in loaded.features and hasattr(loaded.features[options.image_column], "decode"):
        loaded = loaded.cast_column(options.image_column, datasets.Image(decode=False))
    label_names = None
    if options.label_column and options.use_label_names:
        label_names = _class_names(loaded.features[options.label_column])
    images, labels, captions = [], [], []
    for row, record in enumerate(loaded.select_columns(columns)):
        images.append(_encoded(record[options.image_column], row))
        if options.label_column:
            value = record[options.label_column]
            if isinstance(value, list):
                labels.append([label_text(v, label_names) for v in value])
            else:
                labels.append(label_text(value, label_names))
        if options.caption_column:
            value = record[options.caption_column]
            captions.append([str(v) for v in value] if isinstance(value, list) else [str(value)])
    return EvalDataset(
        images=images,
        labels=map_labels(labels, options.label_map, f"{root} column {options.label_column!r}")
        if options.label_column else None,
        captions=captions if options.caption_column else None,
    )
