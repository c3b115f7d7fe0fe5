"""Incremental sync with the PMC Cloud bucket: the growth every ingest does (ingest.growth), by its old name.

Every ingest run is now a build: a later run lists the bucket again (a newer inventory),
keeps the versions that are new or whose xml/json etags changed, and appends them as new
units after the last unit id; old shards are never rewritten. Articles whose metadata now
says `is_retracted` are listed in `ROOT/retractions/part-<snapshot>.parquet` (keyed by
article_id) for readers to filter. `run_sync` (`biomedica ingest --incremental`) is kept
for callers of the first release and returns the plan beside the ingest summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from biomedica.archive.builds import BUILDS_DIR, BuildState, read_builds
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.growth import RETRACTION_SCHEMA, RETRACTIONS_DIR, plan_growth, read_retractions, snapshot_tag
from biomedica.ingest.run import IngestSummary, run_ingest
from biomedica.ingest.sources.pmc_cloud import PmcCloudSource

__all__ = [
    "BUILDS_DIR", "RETRACTIONS_DIR", "RETRACTION_SCHEMA", "BuildState", "SyncPlan", "SyncSummary", "plan_sync",
    "read_builds", "read_retractions", "run_sync", "snapshot_tag",
]


@dataclass
class SyncPlan:
    snapshot: str
    items: list[str]  # the versions of the build that runs first (an unfinished one, else the new one), sorted
    new: int
    changed: int
    unchanged: int
    first_unit_id: int
    retracted: list[tuple[str, str, int]] = field(default_factory=list)
    resumed: bool = False
    removed: int = 0


@dataclass
class SyncSummary:
    plan: SyncPlan
    ingest: IngestSummary


def plan_sync(root, source: PmcCloudSource, items_per_unit: int = 500) -> SyncPlan:
    """What a sync would write now (nothing is written)."""
    plan = plan_growth(root, source, items_per_unit, write=False)
    build = plan.resumed or plan.new_build
    return SyncPlan(
        snapshot=build.snapshot if build else plan.snapshot, items=list(build.items) if build else [], new=plan.new,
        changed=plan.changed, unchanged=plan.unchanged,
        first_unit_id=build.first_unit_id if build else max([b.next_unit_id for b in plan.builds] + [0]),
        retracted=plan.retracted, resumed=plan.resumed is not None, removed=len(plan.removed),
    )


def run_sync(
    config: IngestConfig, source: PmcCloudSource, log: Callable[[str], None] | None = None
) -> SyncSummary:
    """Bring the archive at `config.output` up to date with `source`; `log` gets the plan line first."""
    if config.limit is not None:
        raise ValueError("sync takes its sample size from the source (PmcCloudConfig.limit), not IngestConfig.limit")
    summary = run_ingest(config, source=source, log=log)
    builds = read_builds(config.output)
    new = next((b for b in builds if b.number == summary.build), None)
    resumed = next((b for b in builds if b.number == summary.resumed_build), None)
    build = resumed or new
    plan = SyncPlan(
        snapshot=build.snapshot if build else (builds[-1].snapshot if builds else ""),
        items=list(build.items) if build else [], new=summary.documents_new, changed=summary.documents_changed,
        unchanged=summary.documents_unchanged,
        first_unit_id=build.first_unit_id if build else max([b.next_unit_id for b in builds] + [0]), resumed=resumed is not None,
        removed=summary.documents_removed,
    )
    return SyncSummary(plan=plan, ingest=summary)
