"""WebDataset adapter: tar shards (brace patterns) whose samples hold an image plus a `cls` label or `txt` caption.

Members are indexed, not copied: each image is read later by one seek at its offset in the
tar (tarfile's `offset_data`), so a large benchmark costs no memory until embedded. Given a
biomedica archive, only shards of complete units are read (`archive.reader.shard_paths`;
the manifest's shards in a copy without `_units/`), all of them when `shards` is left at
its default.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from braceexpand import braceexpand

from biomedica.archive.keys import split_member_name
from biomedica.archive.reader import is_archive, shard_paths
from biomedica.eval.adapters.registry import (
    AdapterOptions,
    DatasetInvalid,
    DatasetMissing,
    EvalDataset,
    register_adapter,
)
from biomedica.eval.images import FileSliceImage

DEFAULT_SHARDS = "*.tar"


class WebDatasetOptions(AdapterOptions):
    shards: str = DEFAULT_SHARDS  # brace pattern or glob, relative to root
    image_extensions: list[str] = ["jpg", "jpeg", "png", "webp", "tif", "tiff"]
    label_extension: str | None = "cls"
    caption_extension: str | None = None  # e.g. "txt"; one caption per sample


def _shard_paths(root: Path, pattern: str, complete: list[Path] | None) -> list[Path]:
    if pattern == DEFAULT_SHARDS and complete is not None:
        return complete
    paths: list[Path] = []
    for expanded in braceexpand(pattern):
        if any(ch in expanded for ch in "*?["):
            paths.extend(sorted(root.glob(expanded)))
        else:
            paths.append(root / expanded)
    return paths


def _incomplete(paths: list[Path], complete: list[Path] | None) -> list[Path]:
    """The shards among `paths` that are not among the archive's `complete` ones (none outside an archive)."""
    if complete is None:
        return []
    known = {path.resolve() for path in complete}
    return [p for p in paths if p.resolve() not in known]


def _split_member(name: str) -> tuple[str, str]:
    """The archive's key rule (archive.keys); extensions compared lower-case."""
    key, extension = split_member_name(name) or (name, "")
    return key, extension.lower()


@register_adapter("webdataset", WebDatasetOptions)
def load_webdataset(root: Path, options: WebDatasetOptions) -> EvalDataset:
    """Samples in shard order; a sample without an image or without its label/caption is skipped and counted."""
    complete = [path for _, path in shard_paths(root)] if is_archive(root) else None
    paths = _shard_paths(root, options.shards, complete)
    absent = [p for p in paths if not p.is_file()]
    if not paths or absent:
        raise DatasetMissing(f"shard(s) not found: {absent[0] if absent else root / options.shards}")
    compressed = [p for p in paths if p.suffix in (".gz", ".tgz", ".bz2", ".xz", ".zst")]
    if compressed:
        raise DatasetInvalid(f"{compressed[0]}: compressed shards are not supported; decompress to .tar first")
    incomplete = _incomplete(paths, complete)
    paths = [p for p in paths if p not in incomplete]
    if not paths:
        raise DatasetMissing(
            f"{root}: every shard matching {options.shards} belongs to an unfinished unit; resume the build"
        )
    wanted = {e.lower() for e in options.image_extensions}
    images, labels, captions, skipped = [], [], [], 0
    for path in paths:
        samples: dict[str, dict[str, tarfile.TarInfo]] = {}
        order: list[str] = []
        with tarfile.open(path, "r") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                key, extension = _split_member(info.name)
                if key not in samples:
                    samples[key] = {}
                    order.append(key)
                samples[key][extension] = info
            for key in order:
                members = samples[key]
                image_info = next((members[e] for e in members if e in wanted), None)
                if image_info is None:
                    skipped += 1
                    continue
                label = caption = None
                if options.label_extension:
                    if options.label_extension not in members:
                        skipped += 1
                        continue
                    label = tar.extractfile(members[options.label_extension]).read().decode("utf-8").strip()
                if options.caption_extension:
                    if options.caption_extension not in members:
                        skipped += 1
                        continue
                    caption = tar.extractfile(members[options.caption_extension]).read().decode("utf-8").strip()
                images.append(FileSliceImage(path, image_info.offset_data, image_info.size, f"{path.name}:{key}"))
                labels.append(label)
                captions.append([caption])
    if not images:
        raise DatasetInvalid(
            f"{root}: no sample with an image ({', '.join(sorted(wanted))}) and "
            f"{options.label_extension or options.caption_extension}; check label_extension/caption_extension"
        )
    notes = [f"{skipped} sample(s) without image or label/caption skipped"] if skipped else []
    if incomplete:
        notes.append(f"{len(incomplete)} shard(s) of unfinished units skipped")
    return EvalDataset(
        images=images,
        labels=labels if options.label_extension else None,
        captions=captions if options.caption_extension else None,
        notes=notes,
    )
