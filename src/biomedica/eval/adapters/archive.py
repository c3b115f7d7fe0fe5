"""Biomedica archive adapter: held-out image-caption retrieval from an archive, split by article.

Reads only the shards of complete units (`archive.reader.shard_paths`; in a copy without
`_units/`, the manifest's shards): each `<group>/NNNNNN.parquet` index row gives the caption
and the image member's byte offset in the `.tar` beside it. The split is `archive.split` (by article, stable as the archive grows);
`select` and `train` exclude the same articles by default, at the same fraction and salt.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from biomedica.archive.keys import sample_article
from biomedica.archive.reader import is_archive, live_shards
from biomedica.archive.split import DEFAULT_HELD_OUT_FRACTION, DEFAULT_SPLIT_SALT, HeldOutSplit, is_held_out
from biomedica.eval.adapters.registry import (
    AdapterOptions,
    DatasetInvalid,
    DatasetMissing,
    EvalDataset,
    register_adapter,
)
from biomedica.eval.images import FileSliceImage
from biomedica.records import LICENSE_GROUPS

__all__ = ["DEFAULT_SPLIT_SALT", "ArchiveOptions", "is_held_out", "load_archive"]
CAPTION_FIELDS = ("caption", "caption_title", "mentions")


class ArchiveOptions(AdapterOptions):
    split: str = "test"  # test (held out) | train | all
    test_fraction: float = DEFAULT_HELD_OUT_FRACTION
    salt: str = DEFAULT_SPLIT_SALT
    caption_fields: list[str] = ["caption"]  # caption, caption_title, mentions: several captions per image
    license_groups: list[str] = list(LICENSE_GROUPS)
    min_caption_chars: int = 10
    max_images: int | None = None  # the first N held-out figures in archive order


@register_adapter("biomedica_archive", ArchiveOptions, "archive")
def load_archive(root: Path, options: ArchiveOptions) -> EvalDataset:
    """Figures of complete shards (a .parquet index beside its .tar), filtered to the split, with their captions."""
    unknown = [f for f in options.caption_fields if f not in CAPTION_FIELDS]
    if unknown or options.split not in ("test", "train", "all"):
        raise DatasetInvalid(
            f"archive options: caption_fields must be among {', '.join(CAPTION_FIELDS)} and split test|train|all"
        )
    bad_groups = [g for g in options.license_groups if g not in LICENSE_GROUPS]
    if bad_groups:
        raise DatasetInvalid(
            f"archive options: unknown license_groups {bad_groups}; choose from {', '.join(LICENSE_GROUPS)}"
        )
    try:
        held_out = HeldOutSplit(options.test_fraction, options.salt)
    except ValueError as exc:
        raise DatasetInvalid(f"archive options: {exc}") from None
    if not is_archive(root) and not any((root / g).is_dir() for g in LICENSE_GROUPS):
        raise DatasetMissing(f"{root} is not a biomedica archive (no manifest.json, no license-group folders)")
    columns = ["key", "pmcid", "shard", "image_offset", "image_size", *options.caption_fields]
    images, captions, groups = [], [], []
    shards = live_shards(root)
    for group in options.license_groups:
        for _, tar_path, superseded in (s for s in shards if s[0] == group):
            for row in pq.read_table(tar_path.with_suffix(".parquet"), columns=columns).to_pylist():
                if row["key"] in superseded:
                    continue
                in_test = held_out.holds(row["key"], row["pmcid"])
                if (options.split == "test" and not in_test) or (options.split == "train" and in_test):
                    continue
                texts = []
                for name in options.caption_fields:
                    value = row[name]
                    texts.extend(value if isinstance(value, list) else [value])
                texts = [t.strip() for t in texts if t and len(t.strip()) >= options.min_caption_chars]
                if not texts:
                    continue
                images.append(FileSliceImage(tar_path, row["image_offset"], row["image_size"], row["key"]))
                captions.append(texts)
                groups.append(sample_article(row["key"], row["pmcid"]))
                if options.max_images and len(images) >= options.max_images:
                    return EvalDataset(images=images, captions=captions, groups=groups)
    if not images:
        raise DatasetInvalid(
            f"{root}: no {options.split} figure with a caption of >= {options.min_caption_chars} characters; "
            "raise test_fraction for a small archive"
        )
    return EvalDataset(images=images, captions=captions, groups=groups)
