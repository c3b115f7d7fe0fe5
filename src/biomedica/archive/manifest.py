"""The archive's derived indexes: `manifest.json` and each group's `sizes.json`.

Both are rebuilt from the unit markers alone (never by scanning shards), so finalizing
is cheap, can be repeated after a resumed build, and never touches a shard. `Manifest` is
the typed view readers use, for a local archive (`Manifest.read`) or one fetched over the
network (`Manifest.from_bytes`): it refuses another format or schema major version.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from biomedica import __version__
from biomedica.archive.builds import read_builds
from biomedica.archive.card import write_card
from biomedica.archive.layout import MANIFEST_NAME, ArchiveLayout
from biomedica.archive.superseded import write_superseded
from biomedica.archive.units import completed_units, incomplete_units
from biomedica.io.atomic import write_json_atomic
from biomedica.records import LICENSE_GROUPS, SCHEMA_VERSION

ARCHIVE_FORMAT = "biomedica-archive"


def finalize_archive(root: Path, build_config: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """(Re)write every group's `sizes.json` and the `manifest.json`; return the manifest.

    `build_config` is the configuration the build ran with and `source` a snapshot of
    what it read (reader, location, listing date); both are stored verbatim and must be
    JSON-serialisable. Units that left files but no marker are listed under
    `incomplete_units`: re-running the build redoes them, then finalize again.
    Also rewrites `superseded.parquet` (archive.superseded); sizes.json keeps every tar
    sample (the tars hold them), the totals say how many of them are superseded. Last, the
    dataset card `README.md` (archive.card), so `datasets.load_dataset(root)` reads the
    archive with exact features; a README.md biomedica did not write is left alone (a warning).
    """
    root = Path(root)
    layout = ArchiveLayout(root)
    units = completed_units(root)
    superseded = write_superseded(root).num_rows
    builds = read_builds(root)
    if builds:
        source = {**source, "builds": [b.summary() for b in builds]}
    groups: dict[str, ManifestGroup] = {}
    for group in LICENSE_GROUPS:
        shards = tuple(
            ManifestShard(group, stats.shards[group].name, unit_id, stats.shards[group].samples,
                          stats.shards[group].bytes, stats.shards[group].sha256)
            for unit_id, stats in units.items()
            if group in stats.shards
        )
        if not shards and not layout.group_dir(group).is_dir():
            continue
        layout.group_dir(group).mkdir(parents=True, exist_ok=True)
        write_json_atomic(layout.sizes(group), {s.name: s.samples for s in shards})
        groups[group] = ManifestGroup(group, sum(s.samples for s in shards), sum(s.bytes for s in shards), shards,
                                      brace_pattern(group, [s.name for s in shards]))
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        biomedica_version=__version__,
        finalized_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_config=json.loads(json.dumps(build_config)),
        source=json.loads(json.dumps(source)),
        groups=groups,
        units=tuple(sorted(units)),
        incomplete_units=tuple(incomplete_units(root)),
        totals=ManifestTotals(
            units=len(units),
            articles=sum(s.articles for s in units.values()),
            samples=sum(s.total_samples for s in units.values()),
            errors=sum(s.errors for s in units.values()),
            bytes=sum(s.bytes for s in units.values()),
            samples_superseded=superseded,
        ),
    ).to_dict()
    write_json_atomic(layout.manifest, manifest)
    try:
        write_card(root, units=units)  # README.md: the dataset card `datasets.load_dataset(root)` reads (archive.card)
    except FileExistsError as exc:
        warnings.warn(str(exc), stacklevel=2)
    return manifest


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of the archive at `root`, or None when it was never finalized."""
    path = ArchiveLayout(Path(root)).manifest
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); run finalize again to rebuild it from _units/") from exc


def brace_pattern(group: str, names: list[str]) -> str | None:
    """A brace pattern (WebDataset/OpenCLIP `--train-data`) naming exactly these shards under folder `group`."""
    if not names:
        return None
    numbers = sorted(int(n.split(".")[0]) for n in names)
    if len(numbers) == 1:
        return f"{group}/{numbers[0]:06d}.tar"
    if numbers != list(range(numbers[0], numbers[-1] + 1)):
        return f"{group}/{{{','.join(f'{n:06d}' for n in numbers)}}}.tar"
    return f"{group}/{{{numbers[0]:06d}..{numbers[-1]:06d}}}.tar"


class ManifestError(ValueError):
    """A manifest.json that this version cannot read; the message names the file and the fix."""


@dataclass(frozen=True)
class ManifestShard:
    """One shard as the manifest lists it (`name` is relative to its group folder)."""

    group: str
    name: str
    unit: int
    samples: int
    bytes: int
    sha256: str | None = None

    @property
    def path(self) -> str:
        """`<group>/<name>`, relative to the archive root (for a path or a URL)."""
        return f"{self.group}/{self.name}"


@dataclass(frozen=True)
class ManifestGroup:
    name: str
    samples: int
    bytes: int
    shards: tuple[ManifestShard, ...]
    shard_pattern: str | None


@dataclass(frozen=True)
class ManifestTotals:
    units: int
    articles: int
    samples: int  # every sample in the tars (what sizes.json counts)
    errors: int
    bytes: int
    samples_superseded: int = 0  # of those, superseded by a newer or duplicate copy (superseded.parquet)

    @property
    def samples_live(self) -> int:
        """The archive's content: samples biomedica readers, select and train use."""
        return self.samples - self.samples_superseded


@dataclass(frozen=True)
class Manifest:
    """The typed `manifest.json`: groups -> shards with sample counts and brace patterns, and totals."""

    schema_version: str
    biomedica_version: str
    finalized_at: str
    groups: Mapping[str, ManifestGroup]
    units: tuple[int, ...]
    incomplete_units: tuple[int, ...]
    totals: ManifestTotals
    build_config: Mapping[str, Any] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)
    format: str = ARCHIVE_FORMAT

    def shards(self, groups: list[str] | None = None) -> list[ManifestShard]:
        """Shards of `groups` (default: every group present), in the given group order, units ascending."""
        return [s for g in (groups if groups is not None else list(self.groups)) for s in self.groups[g].shards]

    @classmethod
    def from_dict(cls, data: Any, origin: str = MANIFEST_NAME) -> Manifest:
        """Check format and schema version, then type every field; `origin` names the file in errors."""
        if not isinstance(data, dict) or data.get("format") != ARCHIVE_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ManifestError(
                f"{origin}: not a biomedica archive manifest (format {found!r}, expected {ARCHIVE_FORMAT!r})"
            )
        version = str(data.get("schema_version", ""))
        if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise ManifestError(
                f"{origin}: schema_version {version or 'missing'} is not readable by biomedica {__version__} "
                f"(reads {SCHEMA_VERSION.split('.')[0]}.x); use a matching biomedica version or rebuild the archive"
            )
        try:
            groups = {
                name: ManifestGroup(
                    name=name, samples=int(group["samples"]), bytes=int(group["bytes"]),
                    shards=tuple(
                        ManifestShard(name, str(s["name"]), int(s["unit"]), int(s["samples"]), int(s["bytes"]),
                                      s.get("sha256"))
                        for s in group["shards"]
                    ),
                    shard_pattern=group.get("shard_pattern"),
                )
                for name, group in data["groups"].items()
            }
            totals = data["totals"]
            return cls(
                schema_version=version, biomedica_version=str(data.get("biomedica_version", "")),
                finalized_at=str(data.get("finalized_at", "")), groups=groups,
                units=tuple(int(u) for u in data.get("units", [])),
                incomplete_units=tuple(int(u) for u in data.get("incomplete_units", [])),
                totals=ManifestTotals(*(int(totals[k]) for k in ("units", "articles", "samples", "errors", "bytes")),
                                      samples_superseded=int(totals.get("samples_superseded", 0))),
                build_config=data.get("build_config") or {}, source=data.get("source") or {},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(
                f"{origin}: malformed manifest ({type(exc).__name__}: {exc}); run the build again to finalize it"
            ) from None

    @classmethod
    def from_bytes(cls, data: bytes, origin: str = MANIFEST_NAME) -> Manifest:
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            raise ManifestError(f"{origin}: not valid JSON ({exc}); run the build again to finalize it") from None
        return cls.from_dict(parsed, origin)

    @classmethod
    def read(cls, root: Path) -> Manifest | None:
        """The manifest of the local archive at `root`; None when it was never finalized."""
        path = ArchiveLayout(Path(root)).manifest
        return cls.from_bytes(path.read_bytes(), str(path)) if path.is_file() else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON `finalize_archive` writes."""
        return {
            "format": self.format,
            "schema_version": self.schema_version,
            "biomedica_version": self.biomedica_version,
            "finalized_at": self.finalized_at,
            "build_config": dict(self.build_config),
            "source": dict(self.source),
            "groups": {
                name: {
                    "samples": g.samples, "bytes": g.bytes,
                    "shards": [
                        {"name": s.name, "unit": s.unit, "samples": s.samples, "bytes": s.bytes, "sha256": s.sha256}
                        for s in g.shards
                    ],
                    "shard_pattern": g.shard_pattern,
                }
                for name, g in self.groups.items()
            },
            "units": list(self.units),
            "incomplete_units": list(self.incomplete_units),
            "totals": {k: getattr(self.totals, k) for k in ("units", "articles", "samples", "errors", "bytes",
                                                            "samples_superseded", "samples_live")},
        }
