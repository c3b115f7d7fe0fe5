"""The archive's derived indexes: `manifest.json` and each group's `sizes.json`.

Both are rebuilt from the unit markers alone (never by scanning shards), so finalizing
is cheap, can be repeated after a resumed build, and never touches a shard.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from biomedica import __version__
from biomedica.io.atomic import write_json_atomic
from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.units import completed_units, incomplete_units
from biomedica.records import LICENSE_GROUPS, SCHEMA_VERSION

ARCHIVE_FORMAT = "biomedica-archive"


def finalize_archive(root: Path, build_config: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """(Re)write every group's `sizes.json` and the `manifest.json`; return the manifest.

    `build_config` is the configuration the build ran with and `source` a snapshot of
    what it read (reader, location, listing date); both are stored verbatim and must be
    JSON-serialisable. Units that left files but no marker are listed under
    `incomplete_units`: re-running the build redoes them, then finalize again.
    """
    root = Path(root)
    layout = ArchiveLayout(root)
    units = completed_units(root)
    groups: dict[str, Any] = {}
    for group in LICENSE_GROUPS:
        shards = [
            {"name": stats.shards[group].name, "unit": unit_id, "samples": stats.shards[group].samples,
             "bytes": stats.shards[group].bytes, "sha256": stats.shards[group].sha256}
            for unit_id, stats in units.items()
            if group in stats.shards
        ]
        if not shards and not layout.group_dir(group).is_dir():
            continue
        layout.group_dir(group).mkdir(parents=True, exist_ok=True)
        write_json_atomic(layout.sizes(group), {s["name"]: s["samples"] for s in shards})
        groups[group] = {
            "samples": sum(s["samples"] for s in shards),
            "bytes": sum(s["bytes"] for s in shards),
            "shards": shards,
            "shard_pattern": _brace_pattern(group, [s["name"] for s in shards]),
        }
    manifest = {
        "format": ARCHIVE_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "biomedica_version": __version__,
        "finalized_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_config": json.loads(json.dumps(build_config)),
        "source": json.loads(json.dumps(source)),
        "groups": groups,
        "units": sorted(units),
        "incomplete_units": incomplete_units(root),
        "totals": {
            "units": len(units),
            "articles": sum(s.articles for s in units.values()),
            "samples": sum(s.total_samples for s in units.values()),
            "errors": sum(s.errors for s in units.values()),
            "bytes": sum(s.bytes for s in units.values()),
        },
    }
    write_json_atomic(layout.manifest, manifest)
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


def _brace_pattern(group: str, names: list[str]) -> str | None:
    """A brace pattern (WebDataset/OpenCLIP `--train-data`) naming exactly these shards."""
    if not names:
        return None
    numbers = sorted(int(n.split(".")[0]) for n in names)
    if len(numbers) == 1:
        return f"{group}/{numbers[0]:06d}.tar"
    if numbers != list(range(numbers[0], numbers[-1] + 1)):
        return f"{group}/{{{','.join(f'{n:06d}' for n in numbers)}}}.tar"
    return f"{group}/{{{numbers[0]:06d}..{numbers[-1]:06d}}}.tar"
