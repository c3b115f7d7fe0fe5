"""Growing an archive: compare the source's listing with the archive's builds, plan what to add.

Every ingest run is a build (archive.builds): the listing's items are signed by the source
(`ArticleSource.signatures`) and compared with the signatures of every earlier build.
New and changed documents form a new build whose units are numbered after the last unit;
old shards are never rewritten, and a changed document's older samples become superseded
at finalize (archive.superseded). Documents no longer listed are "removed": the build
records them, their samples stay in the archive. With a limit (a sample of the listing)
nothing is counted as removed. An unfinished build is resumed first, with its own items and
unit numbers. An archive written before build records existed is adopted as build 0 when
the current input plans exactly its units, and refused otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.archive.builds import BuildState, read_builds, write_build
from biomedica.archive.units import UnitStats, completed_units
from biomedica.ingest.pipeline import WorkUnit, plan_units
from biomedica.ingest.sources import ArticleSource
from biomedica.io.atomic import write_parquet_atomic

RETRACTIONS_DIR = "retractions"
RETRACTION_SCHEMA = pa.schema([
    ("article_id", pa.string()),  # PMC<id>: the key prefix of the article's samples
    ("item_id", pa.string()),  # the version whose metadata says retracted, PMC<id>.<v>
    ("version", pa.int32()),
    ("snapshot", pa.string()),  # listing / inventory time of the build that found it
    ("detected_at", pa.string()),
])


class NothingToIngest(ValueError):
    """The source lists no document: a run would "succeed" with an empty archive."""


class InputChanged(ValueError):
    """A `--frozen` run whose input differs from what the archive holds."""


class LegacyArchiveMismatch(ValueError):
    """An archive without build records whose units the current input does not plan."""


@dataclass
class GrowthPlan:
    """What one run must bring to complete: earlier builds (a resumed or repaired one) and a new one."""

    builds: list[BuildState]  # every build of the archive, the new one last
    new_build: BuildState | None
    resumed: BuildState | None  # an unfinished build this run completes first
    snapshot: str
    listed: int  # documents in the (limited) listing
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    adopted: bool = False
    retried: int = 0  # of `changed`: unchanged documents whose last ingest failed to fetch an object
    retracted: list[tuple[str, str, int]] = field(default_factory=list)  # newly found (pmc-cloud)

    @property
    def counts_line(self) -> str:
        return (f"{self.new} new document{'s' if self.new != 1 else ''}, {self.changed} changed, "
                f"{len(self.removed)} removed, {self.unchanged} unchanged"
                + (f" ({self.retried} fetched again after a failed fetch)" if self.retried else ""))


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def plan_growth(
    root: Path, source: ArticleSource, items_per_unit: int, limit: int | None = None, frozen: bool = False,
    write: bool = True, empty_message: str | None = None,
) -> GrowthPlan:
    """Plan the run; writes the adopted / new build record (status running) unless `frozen` refuses or not `write`.

    Call under the archive's write lock. A listing without documents raises NothingToIngest
    (`empty_message`), before anything is written: a run must not "succeed" on an empty input.
    """
    root = Path(root)
    items = source.list_items()
    if not items:
        raise NothingToIngest(empty_message or f"{root}: the input lists no document; check the input")
    if limit is not None:
        items = items[:limit]
    limited = limit is not None or bool(getattr(source, "limited", False))
    signatures = _signatures(source, items)
    description = source.describe()
    snapshot = str(description.get("snapshot") or now())
    builds = read_builds(root)
    done = completed_units(root)
    adopted = False
    if not builds and done:
        builds = [_adopt(root, items, signatures, done, items_per_unit, description, snapshot)]
        adopted = True
    known: dict[str, str] = {}
    for build in builds:
        for item in build.removed:
            known.pop(item, None)
        known.update(build.signatures)
    earlier_units = [unit for build in builds for unit in build_units(build, items_per_unit)]
    retry = set(unfetched_items(earlier_units, done)) & set(items)  # an object not fetched intact: try again
    new = [item for item in items if item not in known]
    changed = [item for item in items if item in known and (known[item] != signatures[item] or item in retry)]
    removed = [] if limited else sorted(set(known) - set(items))
    running = [b for b in builds if b.status != "complete"]
    plan = GrowthPlan(
        builds=builds, new_build=None, resumed=running[0] if running else None, snapshot=snapshot,
        listed=len(items), new=len(new), changed=len(changed), unchanged=len(items) - len(new) - len(changed),
        removed=removed, adopted=adopted, retried=len(retry),
    )
    if frozen and (new or changed or removed):
        raise InputChanged(
            f"{root}: the input differs from what the archive holds ({plan.counts_line}); "
            "drop --frozen to append them to the archive as new units"
        )
    if adopted and write:
        write_build(root, builds[0])
    if new or changed or removed:
        todo = sorted(new + changed)
        first = max([b.next_unit_id for b in builds] + [max(done) + 1 if done else 0])
        units = -(-len(todo) // items_per_unit)
        plan.new_build = BuildState(
            snapshot=snapshot, first_unit_id=first, next_unit_id=first + units, items=todo,
            signatures={item: signatures[item] for item in todo}, started_at=now(),
            source=_source_record(description), number=max([b.number for b in builds] + [-1]) + 1,
            removed=removed, status="running" if todo else "complete",
        )
        if not todo:
            plan.new_build.finished_at = plan.new_build.started_at
        if write:
            write_build(root, plan.new_build)
        plan.builds = [*builds, plan.new_build]
    return plan


def unfetched_items(units: list[WorkUnit], done: dict[int, UnitStats]) -> list[str]:
    """Items whose latest unit (of `units`, oldest first) could not fetch all their objects intact.

    A unit marker lists them in `extra.unfetched`; a later unit that took the item again decides.
    """
    latest: dict[str, int] = {}
    for unit in units:
        for item in unit.item_ids:
            latest[item] = unit.unit_id
    return sorted(
        item for item, unit_id in latest.items()
        if unit_id in done and item in done[unit_id].extra.get("unfetched", ())
    )


def build_units(build: BuildState, items_per_unit: int):
    """The work units of one build (its items cut after its first unit id)."""
    return plan_units(build.items, items_per_unit, first_unit_id=build.first_unit_id)


def _signatures(source: ArticleSource, items: list[str]) -> dict[str, str]:
    """The source's signature of every listed item; a source that cannot sign one is an error, not "unchanged"."""
    found = source.signatures(items)
    unsigned = [item for item in items if not found.get(item)]
    if unsigned:
        raise ValueError(
            f"{type(source).__name__} gave no signature for {len(unsigned)} listed item(s) (first: {unsigned[0]}); "
            "without one a changed document would count as unchanged: implement ArticleSource.signatures for it"
        )
    return {item: found[item] for item in items}


def _source_record(description: dict) -> dict:
    """What a build records of its source: kind and location (so another --out folder shows), snapshot."""
    return {k: description[k] for k in ("kind", "location", "snapshot", "file_list", "bucket") if k in description}


def _adopt(
    root: Path, items: list[str], signatures: dict[str, str], done: dict[int, UnitStats], items_per_unit: int,
    description: dict, snapshot: str,
) -> BuildState:
    """Build 0 for an archive written before build records: only when the input plans exactly its units."""
    planned = {u.unit_id: len(u.item_ids) for u in plan_units(items, items_per_unit)}
    recorded = {unit_id: stats.extra.get("items") for unit_id, stats in done.items()}
    if planned != recorded:
        raise LegacyArchiveMismatch(
            f"{root} predates growth tracking (it has _units/ but no builds/) and the current input does not plan "
            f"its {len(done)} complete unit(s) ({len(items)} documents plan {len(planned)}); rebuild it into a new "
            "--out folder"
        )
    stamp = now()
    return BuildState(
        snapshot=snapshot, first_unit_id=0, next_unit_id=len(planned), items=list(items), signatures=dict(signatures),
        status="complete", started_at=stamp, finished_at=stamp, source=_source_record(description), number=0,
        adopted=True,
    )


# -- retractions (pmc-cloud metadata says is_retracted) ----------------------------------------


def snapshot_tag(snapshot: str) -> str:
    """A file-name-safe form of a snapshot time: '2026-11-22T01:00:00+00:00' -> '2026-11-22T01-00-00-00-00'."""
    return re.sub(r"[^0-9A-Za-z]+", "-", snapshot).strip("-") or "unknown"


def read_retractions(root: Path) -> pa.Table:
    """Every retraction recorded so far (empty table with the schema when none)."""
    folder = Path(root) / RETRACTIONS_DIR
    parts = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    if not parts:
        return RETRACTION_SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(p, schema=RETRACTION_SCHEMA) for p in parts])


def new_retractions(root: Path, source: ArticleSource, builds: list[BuildState]) -> list[tuple[str, str, int]]:
    """Versions the source now says are retracted, of articles the archive holds, not yet recorded."""
    versions = getattr(source, "retracted_versions", None)
    if versions is None:
        return []
    known_articles = {item.partition(".")[0] for b in builds for item in b.items}
    already = set(read_retractions(root).column("article_id").to_pylist())
    return [v for v in versions() if v[0] in known_articles and v[0] not in already]


def record_retractions(root: Path, plan: GrowthPlan) -> None:
    """Write the plan's new retractions as `retractions/part-<snapshot>.parquet`; the build notes the articles."""
    if not plan.retracted:
        return
    detected = now()
    table = pa.Table.from_pylist(
        [{"article_id": a, "item_id": i, "version": v, "snapshot": plan.snapshot, "detected_at": detected}
         for a, i, v in plan.retracted],
        schema=RETRACTION_SCHEMA,
    )
    write_parquet_atomic(Path(root) / RETRACTIONS_DIR / f"part-{snapshot_tag(plan.snapshot)}.parquet", table)
    build = plan.new_build or plan.resumed or (plan.builds[-1] if plan.builds else None)
    if build is not None:
        build.retracted = sorted(set(build.retracted) | {a for a, _, _ in plan.retracted})
        write_build(root, build)
