"""Incremental sync of an archive with the PMC Cloud bucket: fetch only what changed since.

Each sync is one *build*: `ROOT/builds/<snapshot>.json` holds the build's sorted item list,
its first and next unit id, and the signature (xml etag / json etag) of every item it wrote.
A later sync lists the bucket again (a newer inventory), keeps the versions that are new or
whose signature changed, and appends them as new units after the last unit id; old shards
are never rewritten. Articles whose metadata now says `is_retracted` are listed in
`ROOT/retractions/part-<snapshot>.parquet` (keyed by article_id) for readers to filter.
A build file is written before its units run ("running") and marked "complete" after, so
a killed sync resumes the same build with the same items and unit numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.archive.units import completed_units
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import IngestSummary, run_ingest
from biomedica.ingest.sources.pmc_cloud import PmcCloudSource
from biomedica.io.atomic import write_json_atomic, write_parquet_atomic
from biomedica.io.lock import ArchiveLock

BUILDS_DIR = "builds"
RETRACTIONS_DIR = "retractions"

RETRACTION_SCHEMA = pa.schema([
    ("article_id", pa.string()),  # PMC<id>: the key prefix of the article's samples
    ("item_id", pa.string()),  # the version whose metadata says retracted, PMC<id>.<v>
    ("version", pa.int32()),
    ("snapshot", pa.string()),  # listing / inventory time of the sync that found it
    ("detected_at", pa.string()),
])


@dataclass
class BuildState:
    """One sync build, as stored in `ROOT/builds/<snapshot>.json`."""

    snapshot: str
    first_unit_id: int
    next_unit_id: int
    items: list[str]
    signatures: dict[str, str]  # item id -> "xml etag/json etag" of what this build wrote
    status: str = "running"  # "running" until every unit of the build is complete
    started_at: str = ""
    finished_at: str | None = None
    retracted: list[str] = field(default_factory=list)  # article ids this build found retracted
    source: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What manifest.json lists per build."""
        return {
            "snapshot": self.snapshot, "status": self.status, "items": len(self.items),
            "units": [self.first_unit_id, self.next_unit_id - 1] if self.next_unit_id > self.first_unit_id else [],
            "retracted": len(self.retracted), "started_at": self.started_at, "finished_at": self.finished_at,
        }


@dataclass
class SyncPlan:
    snapshot: str
    items: list[str]  # new or changed versions, sorted
    new: int
    changed: int
    unchanged: int
    first_unit_id: int
    retracted: list[tuple[str, str, int]]  # (article_id, item_id, version) not yet recorded
    resumed: bool = False


@dataclass
class SyncSummary:
    plan: SyncPlan
    ingest: IngestSummary


def snapshot_tag(snapshot: str) -> str:
    """A file-name-safe form of a snapshot time: '2026-11-22T01:00:00+00:00' -> '2026-11-22T01-00-00-00-00'."""
    return re.sub(r"[^0-9A-Za-z]+", "-", snapshot).strip("-") or "unknown"


def read_builds(root: Path) -> list[BuildState]:
    """All builds of the archive, oldest first (by first unit id)."""
    folder = Path(root) / BUILDS_DIR
    builds: list[BuildState] = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                builds.append(BuildState(**json.loads(path.read_text(encoding="utf-8"))))
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"{path}: not a readable build record ({exc}); restore it, or delete it and the units it lists "
                    "to rebuild them"
                ) from exc
    return sorted(builds, key=lambda b: (b.first_unit_id, b.snapshot))


def read_retractions(root: Path) -> pa.Table:
    """Every retraction recorded so far (empty table with the schema when none)."""
    folder = Path(root) / RETRACTIONS_DIR
    parts = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    if not parts:
        return RETRACTION_SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(p, schema=RETRACTION_SCHEMA) for p in parts])


def plan_sync(root: Path, source: PmcCloudSource) -> SyncPlan:
    """Compare the source's current listing with the archive's builds."""
    root = Path(root)
    builds = read_builds(root)
    scan = source.scan()
    running = [b for b in builds if b.status != "complete"]
    known_articles = {item.partition(".")[0] for b in builds for item in b.items}
    already = set(read_retractions(root).column("article_id").to_pylist())
    retracted = sorted(
        {
            (c.listing.pmcid, c.listing.item_id, c.listing.version)
            for c in scan.candidates
            if c.metadata is not None and c.metadata.is_retracted
            and c.listing.pmcid in known_articles and c.listing.pmcid not in already
        }
    )
    if running:  # resume the unfinished build exactly (same items, same unit numbers)
        build = running[0]
        return SyncPlan(build.snapshot, list(build.items), 0, 0, 0, build.first_unit_id, retracted, resumed=True)
    known: dict[str, str] = {}
    for build in builds:
        known.update(build.signatures)
    signatures = {c.listing.item_id: c.listing.signature for c in scan.selected}
    items = sorted(item for item, sig in signatures.items() if known.get(item) != sig)
    new = sum(1 for item in items if item not in known)
    done = completed_units(root)
    first = max([b.next_unit_id for b in builds] + [max(done) + 1 if done else 0])
    return SyncPlan(
        snapshot=scan.snapshot, items=items, new=new, changed=len(items) - new,
        unchanged=len(signatures) - len(items), first_unit_id=first, retracted=retracted,
    )


def run_sync(
    config: IngestConfig, source: PmcCloudSource, log: Callable[[str], None] | None = None
) -> SyncSummary:
    """Bring the archive at `config.output` up to date with `source`; `log` gets the plan line first.

    Holds the archive's write lock from the listing to the build record, so two syncs
    never plan the same unit numbers.
    """
    with ArchiveLock(config.output, "biomedica ingest --incremental"):
        return _sync(config, source, log)


def _sync(config: IngestConfig, source: PmcCloudSource, log: Callable[[str], None] | None) -> SyncSummary:
    if config.limit is not None:
        raise ValueError("sync takes its sample size from the source (PmcCloudConfig.limit), not IngestConfig.limit")
    root = config.output.resolve()
    root.mkdir(parents=True, exist_ok=True)
    plan = plan_sync(root, source)
    builds = {b.snapshot: b for b in read_builds(root)}
    now = _now()
    state = builds.get(plan.snapshot) if plan.resumed else None
    if state is None:
        signatures = {c.listing.item_id: c.listing.signature for c in source.scan().selected}
        units = -(-len(plan.items) // config.articles_per_unit)
        state = BuildState(
            snapshot=plan.snapshot, first_unit_id=plan.first_unit_id, next_unit_id=plan.first_unit_id + units,
            items=plan.items, signatures={item: signatures[item] for item in plan.items}, started_at=now,
            source={k: v for k, v in source.describe().items() if k != "builds"},
        )
        if plan.snapshot in builds and builds[plan.snapshot].status == "complete" and not plan.items:
            state = builds[plan.snapshot]  # same snapshot again, nothing new: keep the record as it is
        else:
            _write_build(root, state)
    if plan.retracted:
        _write_retractions(root, plan.snapshot, plan.retracted)
        state.retracted = sorted(set(state.retracted) | {article for article, _, _ in plan.retracted})
    source.build_history = [b.summary() for b in read_builds(root) if b.snapshot != state.snapshot] + [
        {**state.summary(), "status": "complete"}
    ]
    if log is not None:
        log(
            f"sync {plan.snapshot}: {plan.new} new, {plan.changed} changed, {plan.unchanged} unchanged versions; "
            f"{len(plan.retracted)} newly retracted; units from {state.first_unit_id}"
            + (" (resuming an unfinished build)" if plan.resumed else "")
        )
    summary = run_ingest(config, source=source, item_ids=state.items, first_unit_id=state.first_unit_id)
    state.status = "complete"
    state.finished_at = state.finished_at or _now()
    _write_build(root, state)
    return SyncSummary(plan=plan, ingest=summary)


def _write_build(root: Path, state: BuildState) -> None:
    write_json_atomic(root / BUILDS_DIR / f"{snapshot_tag(state.snapshot)}.json", asdict(state))


def _write_retractions(root: Path, snapshot: str, rows: list[tuple[str, str, int]]) -> None:
    detected = _now()
    table = pa.Table.from_pylist(
        [
            {"article_id": a, "item_id": i, "version": v, "snapshot": snapshot, "detected_at": detected}
            for a, i, v in rows
        ],
        schema=RETRACTION_SCHEMA,
    )
    write_parquet_atomic(root / RETRACTIONS_DIR / f"part-{snapshot_tag(snapshot)}.parquet", table)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
