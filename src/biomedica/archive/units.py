"""Work-unit completion markers: which units are done, what they wrote, and cleaning the rest.

A unit is complete exactly when `_units/<unit>.json` exists; the marker is written last
and atomically, so its presence proves every file it lists was published before it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from biomedica.archive.layout import ArchiveLayout, unit_stem
from biomedica.io.atomic import fsync_dir

UNKNOWN_LICENSE = "unknown"  # a sample without a licence, in UnitStats.licenses


class UnitAlreadyComplete(RuntimeError):
    """Raised when asked to (re)write or clean a unit whose marker exists."""


class CorruptMarker(ValueError):
    """A `_units/*.json` file that cannot be read as a unit marker."""


@dataclass
class ShardInfo:
    """One published shard of a unit, as its marker records it."""

    name: str  # "000000.tar", inside the license-group folder
    samples: int
    bytes: int
    sha256: str


@dataclass
class UnitStats:
    """What one completed work unit wrote: the content of its marker `_units/<unit>.json`."""

    unit_id: int
    articles: int
    samples: dict[str, int]  # license group -> samples (only groups that got samples)
    errors: int
    bytes: int  # all files the unit published
    shards: dict[str, ShardInfo] = field(default_factory=dict)  # license group -> shard
    files: dict[str, int] = field(default_factory=dict)  # path relative to root -> bytes
    started_at: str | None = None  # ISO 8601, UTC
    finished_at: str | None = None
    seconds: float = 0.0
    schema_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # caller's counters / timings
    # license group -> normalised licence ("unknown" when none) -> samples, counted as they were written,
    # so the dataset card needs no pass over the shards; {} in markers written before biomedica recorded it
    licenses: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def total_samples(self) -> int:
        return sum(self.samples.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnitStats:
        values = dict(data)
        values["shards"] = {group: ShardInfo(**info) for group, info in values.get("shards", {}).items()}
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


def is_unit_complete(root: Path, unit_id: int) -> bool:
    """True when unit `unit_id` wrote its marker, i.e. all its files are in place."""
    return ArchiveLayout(Path(root)).marker(unit_id).is_file()


def read_marker(path: Path) -> UnitStats:
    """Load one marker; a damaged one raises CorruptMarker naming the file and the fix."""
    try:
        return UnitStats.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CorruptMarker(
            f"{path}: not a readable unit marker ({exc}). Delete it and re-run the build to redo that unit."
        ) from exc


def completed_units(root: Path) -> dict[int, UnitStats]:
    """All complete units of the archive at `root`, by unit id (ascending)."""
    units_dir = ArchiveLayout(Path(root)).units_dir
    if not units_dir.is_dir():
        return {}
    found: dict[int, UnitStats] = {}
    for path in sorted(units_dir.glob("*.json")):
        if path.name.startswith(".") or not path.stem.isdigit():
            continue
        stats = read_marker(path)
        found[stats.unit_id] = stats
    return dict(sorted(found.items()))


def incomplete_units(root: Path) -> list[int]:
    """Units that left files but no marker: an interrupted build (re-run to redo them)."""
    layout = ArchiveLayout(Path(root))
    return sorted(u for u in layout.unit_ids_with_files() if not layout.marker(u).is_file())


def clean_unit(root: Path, unit_id: int) -> list[Path]:
    """Remove the partial output of an unfinished unit (final-named files and temporaries).

    Returns the removed paths. Refuses a complete unit: shards are never modified once
    their unit is done (delete its marker first if you really mean to redo it).
    """
    layout = ArchiveLayout(Path(root))
    if layout.marker(unit_id).is_file():
        raise UnitAlreadyComplete(
            f"unit {unit_id} is complete ({layout.marker(unit_id)} exists); its files are not removed. "
            "Delete that marker first to redo the unit."
        )
    removed: list[Path] = []
    for path in layout.unit_outputs(unit_id) + layout.unit_temporaries(unit_id):
        if path.is_file():
            path.unlink()
            removed.append(path)
    for directory in {p.parent for p in removed}:
        fsync_dir(directory)
    return removed


def marker_problems(root: Path, stats: UnitStats) -> list[str]:
    """What is wrong with the files a marker lists (stat only): "PATH missing" / "PATH has N bytes, not M"."""
    problems = []
    for name, size in sorted(stats.files.items()):
        path = Path(root) / name
        try:
            found = path.stat().st_size if path.is_file() else None
        except OSError:
            found = None
        if found is None:
            problems.append(f"{name} missing")
        elif found != size:
            problems.append(f"{name} has {found} bytes, not {size}")
    return problems


def set_aside_broken_units(root: Path) -> dict[int, list[str]]:
    """Move the marker of every complete unit whose files are missing or short to `_units/.broken-<id>.json`.

    Such a unit is not complete: the next build redoes it. The old marker is kept (renamed,
    never deleted) so what it listed can still be read. Returns unit id -> its problems.
    """
    root = Path(root)
    layout = ArchiveLayout(root)
    broken: dict[int, list[str]] = {}
    for unit_id, stats in completed_units(root).items():
        problems = marker_problems(root, stats)
        if not problems:
            continue
        marker = layout.marker(unit_id)
        aside = layout.units_dir / f".broken-{unit_stem(unit_id)}.json"
        n = 1
        while aside.exists():
            n += 1
            aside = layout.units_dir / f".broken-{unit_stem(unit_id)}-{n}.json"
        marker.rename(aside)
        broken[unit_id] = problems
    if broken:
        fsync_dir(layout.units_dir)
    return broken
