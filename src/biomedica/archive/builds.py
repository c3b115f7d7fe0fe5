"""Build records: `ROOT/builds/NNNN.json`, one per ingest run that wrote (or will write) units.

Every ingest is a *build*: the sorted items it writes, its unit numbers [first, next), a
signature per item (what the source knew of the document when it was read), the items of
earlier builds that the listing no longer holds (`removed`), and running/complete. A later
build appends units after the last one; the newest build holding an article wins it (see
archive.superseded). Records written by the first incremental sync (`builds/<snapshot>.json`,
without `number`) read the same.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from biomedica.io.atomic import write_json_atomic

BUILDS_DIR = "builds"


@dataclass
class BuildState:
    """One build, as stored in `ROOT/builds/<NNNN>.json`."""

    snapshot: str  # the source's listing time (an inventory date), else when the build was planned
    first_unit_id: int
    next_unit_id: int
    items: list[str]  # the documents this build writes (new or changed), sorted
    signatures: dict[str, str]  # item id -> signature of what this build wrote
    status: str = "running"  # "running" until every unit of the build is complete
    started_at: str = ""
    finished_at: str | None = None
    retracted: list[str] = field(default_factory=list)  # article ids this build found retracted (pmc-cloud)
    source: dict[str, Any] = field(default_factory=dict)  # kind and location the build read
    number: int = 0  # 0, 1, 2, ... in order of planning; names the file
    removed: list[str] = field(default_factory=list)  # items of earlier builds no longer listed (samples kept)
    adopted: bool = False  # an archive built before build records, taken over as it was
    path: str | None = field(default=None, compare=False)  # the record's file (not stored)

    @property
    def unit_range(self) -> range:
        return range(self.first_unit_id, self.next_unit_id)

    def summary(self) -> dict[str, Any]:
        """What manifest.json lists per build."""
        return {
            "number": self.number, "snapshot": self.snapshot, "status": self.status, "items": len(self.items),
            "units": [self.first_unit_id, self.next_unit_id - 1] if self.next_unit_id > self.first_unit_id else [],
            "removed": len(self.removed), "retracted": len(self.retracted), "adopted": self.adopted,
            "location": self.source.get("location"), "started_at": self.started_at, "finished_at": self.finished_at,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        return data


def build_path(root: Path, number: int) -> Path:
    return Path(root) / BUILDS_DIR / f"{number:04d}.json"


def read_builds(root: Path) -> list[BuildState]:
    """All builds of the archive, oldest first (by first unit id, then number)."""
    folder = Path(root) / BUILDS_DIR
    builds: list[BuildState] = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            if path.name.startswith("."):
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                data.pop("path", None)
                build = BuildState(**data)
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"{path}: not a readable build record ({exc}); restore it, or delete it and the units it lists "
                    "to rebuild them"
                ) from None
            build.path = str(path)
            builds.append(build)
    return sorted(builds, key=lambda b: (b.first_unit_id, b.number, b.snapshot))


def write_build(root: Path, build: BuildState) -> None:
    """Write (or rewrite) the build's record atomically, at the path it was read from if any."""
    path = Path(build.path) if build.path else build_path(root, build.number)
    write_json_atomic(path, build.to_dict())
    build.path = str(path)


def unit_builds(builds: list[BuildState]) -> dict[int, int]:
    """unit id -> position of its build in `builds` (oldest first): a later position is a newer build."""
    return {unit: rank for rank, build in enumerate(builds) for unit in build.unit_range}
