"""Biomedica archive adapter: held-out image-caption retrieval from an archive, split by article.

Reads only the archive's files (DESIGN.md, "Archive layout"): each `<group>/NNNNNN.parquet`
index row gives the caption and the image member's byte offset in the `.tar` beside it.
The split hashes the PMCID, so every figure of an article falls on the same side, the split
is stable as the archive grows, and `select`/`train` can exclude the same articles with
`is_held_out`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq

from biomedica.eval.adapters.registry import AdapterOptions, DatasetInvalid, DatasetMissing, EvalDataset, register_adapter
from biomedica.eval.images import FileSliceImage
from biomedica.records import LICENSE_GROUPS

DEFAULT_SPLIT_SALT = "biomedica-eval-v1"
CAPTION_FIELDS = ("caption", "caption_title", "mentions")


def is_held_out(pmcid: str, fraction: float, salt: str = DEFAULT_SPLIT_SALT) -> bool:
    """True when the article falls in the held-out (test) share: sha256(salt:pmcid) below `fraction`."""
    digest = hashlib.sha256(f"{salt}:{pmcid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


class ArchiveOptions(AdapterOptions):
    split: str = "test"  # test (held out) | train | all
    test_fraction: float = 0.05
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
    if not (root / "manifest.json").is_file() and not any((root / g).is_dir() for g in LICENSE_GROUPS):
        raise DatasetMissing(f"{root} is not a biomedica archive (no manifest.json, no license-group folders)")
    columns = ["key", "pmcid", "shard", "image_offset", "image_size", *options.caption_fields]
    images, captions, groups = [], [], []
    for group in options.license_groups:
        for index_path in sorted((root / group).glob("[0-9]*.parquet")):
            for row in pq.read_table(index_path, columns=columns).to_pylist():
                held_out = is_held_out(row["pmcid"] or row["key"], options.test_fraction, options.salt)
                if (options.split == "test" and not held_out) or (options.split == "train" and held_out):
                    continue
                texts = []
                for name in options.caption_fields:
                    value = row[name]
                    texts.extend(value if isinstance(value, list) else [value])
                texts = [t.strip() for t in texts if t and len(t.strip()) >= options.min_caption_chars]
                tar_path = index_path.parent / row["shard"]
                if not texts or not tar_path.is_file():
                    continue
                images.append(FileSliceImage(tar_path, row["image_offset"], row["image_size"], row["key"]))
                captions.append(texts)
                groups.append(row["pmcid"])
                if options.max_images and len(images) >= options.max_images:
                    return EvalDataset(images=images, captions=captions, groups=groups)
    if not images:
        raise DatasetInvalid(
            f"{root}: no {options.split} figure with a caption of >= {options.min_caption_chars} characters; "
            "raise test_fraction for a small archive"
        )
    return EvalDataset(images=images, captions=captions, groups=groups)
