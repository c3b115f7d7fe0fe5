"""Hugging Face adapter: a dataset saved with `save_to_disk` (needs the optional `datasets` package)."""

from __future__ import annotations

import io
from pathlib import Path

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


@register_adapter("hf_disk", HFDiskOptions, "huggingface")
def load_hf_disk(root: Path, options: HFDiskOptions) -> EvalDataset:
    """Rows of (image, label or caption) from `datasets.load_from_disk(root)`."""
    try:
        import datasets
    except ImportError:
        raise DatasetMissing("the hf_disk adapter needs the `datasets` package: pip install datasets") from None
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
        feature = loaded.features[options.label_column]
        label_names = getattr(feature, "names", None)
    images, labels, captions = [], [], []
    for row, record in enumerate(loaded.select_columns(columns)):
        images.append(_encoded(record[options.image_column], row))
        if options.label_column:
            value = record[options.label_column]
            if isinstance(value, list):
                labels.append([label_names[v] if label_names else str(v) for v in value])
            else:
                labels.append(label_names[value] if label_names else str(value))
        if options.caption_column:
            value = record[options.caption_column]
            captions.append([str(v) for v in value] if isinstance(value, list) else [str(value)])
    return EvalDataset(
        images=images,
        labels=labels if options.label_column else None,
        captions=captions if options.caption_column else None,
    )
