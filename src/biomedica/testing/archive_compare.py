"""Is archive B the same archive as A? The one equality the reliability benchmark and tests use.

Two archives are equal when they hold the same live samples (sample key -> image sha256,
caption, figure record, shard-index row without its location columns), the same article rows
and the same failures (errors/ id and kind). Only complete units count (those with a marker),
as for every reader, and samples the archive lists as superseded (an older or duplicate copy
of an article) are not live; an article's live row is the one of the unit its live samples
come from. With `same_units=True` the shards must also be the same files byte for byte (a
resumed build must equal a clean build of the same input); without it, samples may sit in
other units (a grown archive against a clean build of the union).

The tars are read here with tarfile rather than `archive.reader.iter_shard` on purpose: the
check must see every member (a sample with two images, a key written twice) that the reader,
the code under test, would fold or refuse.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from biomedica.archive import reader
from biomedica.archive.keys import split_member_name
from biomedica.archive.layout import IMAGE_EXTENSIONS, ArchiveLayout
from biomedica.io.digest import file_sha256
from biomedica.records import SHARD_INDEX_FIELDS

LOCATION_COLUMNS = frozenset(name for name, _ in SHARD_INDEX_FIELDS)
EXAMPLES = 5  # keys named per kind of difference


@dataclass(frozen=True)
class Sample:
    """One sample as stored: where it is and what it holds."""

    group: str
    unit_id: int
    image_sha256: str
    caption: str  # the .txt member
    record: dict[str, Any]  # the .json member
    index_row: dict[str, Any] | None  # its shard-index row, location columns dropped


@dataclass
class ArchiveContent:
    """Everything `compare_archives` looks at, read from the complete units of one archive."""

    samples: dict[str, Sample] = field(default_factory=dict)
    duplicates: Counter[str] = field(default_factory=Counter)  # key -> extra copies beyond the first
    articles: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicate_articles: Counter[str] = field(default_factory=Counter)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)  # (id, kind) -> count
    shard_sha256: dict[str, str] = field(default_factory=dict)  # "group/000003.tar" -> sha256 of the file


def read_archive(root: Path, ignore_fields: frozenset[str] = frozenset({"source"})) -> ArchiveContent:
    """The content of the complete units of `root`; `ignore_fields` are left out of article rows.

    A key that appears twice is kept once (the later unit's copy) and counted in `duplicates`.
    Raises ValueError/OSError when a file of a complete unit cannot be read.
    """
    root = Path(root)
    layout = ArchiveLayout(root)
    content = ArchiveContent()
    kept_unit = _kept_units(root)
    for group, tar_path, superseded in _live_shards(root):
        unit_id = int(tar_path.stem)
        members: dict[str, dict[str, bytes]] = {}
        content.shard_sha256[f"{group}/{tar_path.name}"] = file_sha256(tar_path)
        with tarfile.open(tar_path, mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                key, ext = split_member_name(info.name) or (info.name, "")
                if key in superseded:
                    continue
                extracted = tar.extractfile(info)
                members.setdefault(key, {})[ext] = extracted.read() if extracted is not None else b""
        index_rows = {k: v for k, v in _index_rows(tar_path.with_suffix(".parquet")).items() if k not in superseded}
        for key, parts in members.items():
            images = [parts[ext] for ext in IMAGE_EXTENSIONS if ext in parts]
            if len(images) != 1 or "json" not in parts or "txt" not in parts:
                raise ValueError(f"{tar_path}: sample {key} has members {sorted(parts)}")
            sample = Sample(
                group=group,
                unit_id=unit_id,
                image_sha256=hashlib.sha256(images[0]).hexdigest(),
                caption=parts["txt"].decode("utf-8"),
                record=json.loads(parts["json"].decode("utf-8")),
                index_row=index_rows.pop(key, None),
            )
            if key in content.samples:
                content.duplicates[key] += 1
            content.samples[key] = sample
        for key, row in index_rows.items():  # rows without a sample in the tar: the index and the tar disagree
            content.samples.setdefault(key, Sample(group, unit_id, "", "", {}, row))
    for part in sorted(layout.articles_dir.glob("part-*.parquet")) if layout.articles_dir.is_dir() else []:
        if not _unit_complete(layout, part):
            continue
        unit_id = int(part.stem.removeprefix("part-")) if part.stem.removeprefix("part-").isdigit() else -1
        for row in pq.read_table(part).to_pylist():
            row = {k: v for k, v in row.items() if k not in ignore_fields}
            article_id = str(row.get("article_id"))
            if kept_unit.get(article_id, unit_id) != unit_id:
                continue  # a superseded copy
            if article_id in content.articles:
                content.duplicate_articles[article_id] += 1
            content.articles[article_id] = row
    for path in sorted(layout.errors_dir.glob("part-*.parquet")) if layout.errors_dir.is_dir() else []:
        if not _unit_complete(layout, path):
            continue
        for row in pq.read_table(path, columns=["id", "kind"]).to_pylist():
            content.errors[(str(row["id"]), str(row["kind"]))] += 1
    return content


@dataclass(frozen=True)
class Difference:
    """One kind of difference and the keys (sample keys, article ids, files) it concerns."""

    what: str
    keys: tuple[str, ...]
    loss: bool = True  # False: the data is all there, only placed in other files
    samples: bool = False  # True: `keys` are sample keys (count them as samples lost or wrong)

    def __str__(self) -> str:
        shown = ", ".join(self.keys[:EXAMPLES]) + (", ..." if len(self.keys) > EXAMPLES else "")
        return f"{self.what}: {len(self.keys)} ({shown})"


def diff_archives(
    a: Path | ArchiveContent,
    b: Path | ArchiveContent,
    *,
    same_units: bool = False,
    ignore_fields: frozenset[str] = frozenset({"source"}),
) -> list[Difference]:
    """The differences of archive `b` from the reference `a` (see `compare_archives`)."""
    try:
        left = a if isinstance(a, ArchiveContent) else read_archive(Path(a), ignore_fields)
    except (OSError, ValueError) as exc:
        return [Difference(f"reference archive unreadable ({exc})", ())]
    try:
        right = b if isinstance(b, ArchiveContent) else read_archive(Path(b), ignore_fields)
    except (OSError, ValueError) as exc:
        return [Difference(f"archive unreadable ({exc})", ())]
    out: list[Difference] = []

    def add(what: str, keys, loss: bool = True, samples: bool = False) -> None:
        keys = tuple(sorted(keys))
        if keys:
            out.append(Difference(what, keys, loss, samples))

    common = left.samples.keys() & right.samples.keys()
    add("samples missing", left.samples.keys() - right.samples.keys(), samples=True)
    add("samples not in the reference", right.samples.keys() - left.samples.keys(), samples=True)
    for what, attr in (("image sha256", "image_sha256"), ("caption", "caption"), ("figure record", "record"),
                       ("shard-index row", "index_row")):
        add(f"samples with a different {what}",
            (k for k in common if getattr(left.samples[k], attr) != getattr(right.samples[k], attr)), samples=True)
    add("samples whose index sha256 is not their image's", (
        k for k, s in right.samples.items() if s.index_row is not None and s.index_row.get("sha256") != s.image_sha256
    ), samples=True)
    add("duplicate sample keys", right.duplicates, samples=True)
    add("articles missing", left.articles.keys() - right.articles.keys())
    add("articles not in the reference", right.articles.keys() - left.articles.keys())
    add("articles with a different row",
        (k for k in left.articles.keys() & right.articles.keys() if left.articles[k] != right.articles[k]))
    add("duplicate article rows", right.duplicate_articles)
    add("errors missing", {f"{i}:{k}" for i, k in left.errors - right.errors})
    add("errors not in the reference", {f"{i}:{k}" for i, k in right.errors - left.errors})
    if same_units:
        files = left.shard_sha256.keys() | right.shard_sha256.keys()
        add("shard files that differ (bytes or presence)",
            (f for f in files if left.shard_sha256.get(f) != right.shard_sha256.get(f)), loss=False)
    return out


def compare_archives(
    a: Path | ArchiveContent,
    b: Path | ArchiveContent,
    *,
    same_units: bool = False,
    ignore_fields: frozenset[str] = frozenset({"source"}),
) -> list[str]:
    """Differences of archive `b` from archive `a` (the reference), one line each; [] when equal.

    `same_units`: the shard tars must also be byte-identical file for file.
    `ignore_fields`: article-row fields that may differ (`source`: where the XML was read).
    """
    return [str(d) for d in diff_archives(a, b, same_units=same_units, ignore_fields=ignore_fields)]


def samples_lost(differences: list[Difference]) -> int:
    """How many distinct samples the differences name as missing, wrong or doubled."""
    return len({k for d in differences if d.loss and d.samples for k in d.keys})


def _live_shards(root: Path) -> list[tuple[str, Path, frozenset[str]]]:
    """(group, tar, superseded keys) of every complete shard; no keys where the format lists none."""
    return reader.live_shards(root)


def _kept_units(root: Path) -> dict[str, int]:
    """article id -> the unit holding its live copy, for the articles with a superseded copy."""
    from biomedica.archive.superseded import read_superseded

    table = read_superseded(root)
    return dict(zip(table.column("article_id").to_pylist(), table.column("kept_unit").to_pylist()))


def _index_rows(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    rows = pq.read_table(path).to_pylist()
    return {row["key"]: {k: v for k, v in row.items() if k not in LOCATION_COLUMNS} for row in rows}


def _unit_complete(layout: ArchiveLayout, part: Path) -> bool:
    """An articles/errors part counts when its unit has a marker (a reader ignores the rest)."""
    stem = part.stem.removeprefix("part-")
    return not layout.units_dir.is_dir() or (stem.isdigit() and layout.marker(int(stem)).is_file())
