"""Where every file of an archive lives: one place that names shards, indexes and markers.

All other archive modules ask this module for paths, so the layout in DESIGN.md
("Archive layout") is written down exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from biomedica.io.atomic import temp_path  # noqa: F401 - re-exported: layout names every path
from biomedica.records import LICENSE_GROUPS

MANIFEST_NAME = "manifest.json"
SIZES_NAME = "sizes.json"
UNITS_DIR = "_units"
ARTICLES_DIR = "articles"
ERRORS_DIR = "errors"
IMAGE_EXTENSIONS = ("jpg", "png")


def unit_stem(unit_id: int) -> str:
    """The zero-padded name a unit gives its files: 7 -> "000007"."""
    if isinstance(unit_id, bool) or not isinstance(unit_id, int) or unit_id < 0:
        raise ValueError(f"unit_id must be a non-negative int, got {unit_id!r}")
    return f"{unit_id:06d}"


@dataclass(frozen=True)
class ArchiveLayout:
    """Paths of one archive rooted at `root`."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def units_dir(self) -> Path:
        return self.root / UNITS_DIR

    @property
    def articles_dir(self) -> Path:
        return self.root / ARTICLES_DIR

    @property
    def errors_dir(self) -> Path:
        return self.root / ERRORS_DIR

    def group_dir(self, group: str) -> Path:
        if group not in LICENSE_GROUPS:
            raise ValueError(f"unknown license group {group!r}; expected one of {', '.join(LICENSE_GROUPS)}")
        return self.root / group

    def shard(self, group: str, unit_id: int) -> Path:
        return self.group_dir(group) / f"{unit_stem(unit_id)}.tar"

    def shard_index(self, group: str, unit_id: int) -> Path:
        return self.group_dir(group) / f"{unit_stem(unit_id)}.parquet"

    def sizes(self, group: str) -> Path:
        return self.group_dir(group) / SIZES_NAME

    def articles(self, unit_id: int) -> Path:
        return self.articles_dir / f"part-{unit_stem(unit_id)}.parquet"

    def errors(self, unit_id: int) -> Path:
        return self.errors_dir / f"part-{unit_stem(unit_id)}.parquet"

    def marker(self, unit_id: int) -> Path:
        return self.units_dir / f"{unit_stem(unit_id)}.json"

    def unit_outputs(self, unit_id: int) -> list[Path]:
        """Every final-named file unit `unit_id` may write, marker excluded."""
        paths: list[Path] = []
        for group in LICENSE_GROUPS:
            paths += [self.shard(group, unit_id), self.shard_index(group, unit_id)]
        return paths + [self.articles(unit_id), self.errors(unit_id)]

    def unit_temporaries(self, unit_id: int) -> list[Path]:
        """Temporary files left by any process that wrote unit `unit_id` (any pid)."""
        stem = unit_stem(unit_id)
        found: list[Path] = []
        prefixes = [(self.group_dir(g), f".{stem}.") for g in LICENSE_GROUPS]
        prefixes += [
            (self.articles_dir, f".part-{stem}."),
            (self.errors_dir, f".part-{stem}."),
            (self.units_dir, f".{stem}."),
        ]
        for directory, prefix in prefixes:
            if directory.is_dir():
                found += sorted(p for p in directory.iterdir() if p.name.startswith(prefix) and ".tmp-" in p.name)
        return found

    def unit_ids_with_files(self) -> set[int]:
        """Unit ids that left any shard, part or temporary file (complete or not)."""
        ids: set[int] = set()
        dirs = [self.root / g for g in LICENSE_GROUPS] + [self.articles_dir, self.errors_dir, self.units_dir]
        for directory in dirs:
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                unit_id = _unit_id_from_name(path.name)
                if unit_id is not None:
                    ids.add(unit_id)
        return ids


def _unit_id_from_name(name: str) -> int | None:
    """The unit id in `000012.tar`, `part-000012.parquet`, `.000012.tar.tmp-9`; None otherwise."""
    stem = name.lstrip(".").split(".", 1)[0]
    if stem.startswith("part-"):
        stem = stem[len("part-") :]
    return int(stem) if stem.isdigit() else None
