"""`biomedica ingest`: plan a build, run its missing units on a pool, finalize, summarise.

Every run is a build (ingest.growth): a rerun whose input gained or changed documents
appends them as new units after the last one (or, `frozen`, refuses); the summary counts
new, changed, removed and unchanged documents. Units whose marker lists files that are gone
or short are set aside (`_units/.broken-<id>.json`) and redone. Resume is free: units that have their completion marker are skipped, a unit that died half
way is cleaned and redone, and the manifest / sizes.json are derived from the markers at the
end, so an interrupted run followed by a re-run equals one uninterrupted run.

A job-array task (`--executor array`) runs its share of the units beside the other tasks
under a shared lock and writes no manifest.json / sizes.json: tasks finish at different
times, so one plain run afterwards, which finds every unit done, writes them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
from tqdm import tqdm

from biomedica import __version__
from biomedica.archive.builds import write_build
from biomedica.archive.leftovers import remove_leftovers
from biomedica.archive.unit_writer import completed_units, finalize_archive
from biomedica.archive.units import set_aside_broken_units
from biomedica.exec import check_executor, run_units
from biomedica.exec.job_array import array_task_from_env
from biomedica.images import ImageConfig
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.growth import (
    GrowthPlan,
    NothingToIngest,  # noqa: F401  (re-exported: callers catch it from here)
    build_units,
    new_retractions,
    now,
    plan_growth,
    record_retractions,
    unfetched_items,
)
from biomedica.ingest.pipeline import UnitContext, WorkUnit, plan_units, run_unit
from biomedica.ingest.sources import ArticleSource
from biomedica.ingest.sources.directory import DirectorySource
from biomedica.io.lock import ArchiveLock, held_lock, shared_lock_name
from biomedica.io.settings import SettingsMismatch, check_settings
from biomedica.records import LICENSE_GROUPS

SETTINGS_FILE = "_build_settings.json"


IngestSettingsMismatch = SettingsMismatch  # the name callers catch; one rule for every stage (io.settings)


def nothing_listed(config: IngestConfig) -> str:
    """The one line saying which input listed nothing and what to check."""
    if config.source == "dir":
        return (f"no .xml/.nxml files under {config.input}; point ingest at the folder holding the JATS XML "
                "(or Europe PMC .xml.gz bulk files)")
    if config.source == "pmc-package":
        listing = f"the file list {config.file_list}" if config.file_list else f"{config.input}"
        groups = f" in license group(s) {', '.join(config.license_groups)}" if config.license_groups else ""
        return f"{listing} names no article package (PMC*.tar.gz){groups}; check the input, --file-list and --license-group"
    cloud = config.pmc_cloud
    where = f"bucket {cloud.bucket} (--select {cloud.select})" if cloud else "the pmc-cloud bucket"
    return f"{where} lists no article to ingest; check --ids / --prefix / --license, --bucket and --endpoint-url"


@dataclass
class IngestSummary:
    archive: Path
    items_total: int = 0
    units_total: int = 0
    units_skipped: int = 0
    units_run: int = 0
    items_run: int = 0
    articles: int = 0
    samples: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # growth: the listing compared with what the archive holds (ingest.growth)
    documents_new: int = 0
    documents_changed: int = 0
    documents_removed: int = 0  # no longer listed; their samples stay in the archive
    documents_unchanged: int = 0
    removed_items: list[str] = field(default_factory=list)
    build: int | None = None  # number of the build this run started (None: nothing new)
    resumed_build: int | None = None  # an unfinished build this run completed
    adopted: bool = False  # an archive without build records was taken over as build 0
    broken_units: dict[int, list[str]] = field(default_factory=dict)  # unit -> missing/short files; redone
    samples_superseded: int = 0  # tar samples replaced by a newer or duplicate copy (superseded.parquet)
    unfetched: list[str] = field(default_factory=list)  # documents with objects not fetched intact: rerun

    @property
    def samples_total(self) -> int:
        return sum(self.samples.values())

    @property
    def samples_live(self) -> int:
        return self.samples_total - self.samples_superseded

    @property
    def growth_line(self) -> str:
        """"3 new documents, 1 changed, 0 removed, 8 unchanged"."""
        return (f"{self.documents_new} new document{'s' if self.documents_new != 1 else ''}, "
                f"{self.documents_changed} changed, {self.documents_removed} removed, "
                f"{self.documents_unchanged} unchanged")


def make_source(config: IngestConfig) -> ArticleSource:
    """The reader the config names; network readers import their clients lazily."""
    if config.source == "dir":
        return DirectorySource(
            Path(config.input), max_xml_bytes=config.max_xml_bytes, max_image_bytes=config.max_image_bytes
        )
    if config.source == "pmc-package":
        from biomedica.ingest.sources.pmc_package import PmcPackageSource

        return PmcPackageSource(
            config.input,
            file_list=config.file_list,
            license_groups=config.license_groups,
            net=config.net,
            max_xml_bytes=config.max_xml_bytes,
            max_image_bytes=config.max_image_bytes,
        )
    if config.source == "pmc-cloud":
        from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig, PmcCloudSource

        return PmcCloudSource(config.pmc_cloud or PmcCloudConfig())
    raise ValueError(f"unknown source {config.source!r}; available: dir, pmc-package, pmc-cloud")


def image_config(config: IngestConfig) -> ImageConfig:
    return ImageConfig(
        lossy_format=config.lossy_images, jpeg_quality=config.jpeg_quality, max_pixels=config.max_image_pixels
    )


def _check_settings(root: Path, config: IngestConfig, record: bool = True) -> None:
    """Record the unit/image settings on first run (unless not `record`); refuse a resume that changes them."""
    check_settings(root / SETTINGS_FILE, config.archive_settings(), str(root),
                   "re-run with the original settings to resume, or write to a new --out folder", record=record,
                   defaults=IngestConfig.settings_defaults())


def run_ingest(
    config: IngestConfig,
    source: ArticleSource | None = None,
    item_ids: list[str] | None = None,
    first_unit_id: int = 0,
    log: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Ingest `config.input` into the archive at `config.output`: create it, resume it, or grow it.

    `source` overrides the source built from the config; `log` gets the plan line first.
    `item_ids` and `first_unit_id` write exactly those items as units from that number,
    without build records (the low-level form; a plain call plans a build instead).
    Holds the archive's write lock while it runs (a job-array task: its shared lock).
    """
    with _write_lock(config):
        if config.executor != "array":  # under the exclusive lock only: array tasks on other hosts write beside us
            remove_leftovers(config.output.resolve())  # temporaries of writers that died
        if item_ids is not None:
            return _ingest(config, source, item_ids, first_unit_id)
        return _grow(config, source, log)


def _grow(config: IngestConfig, source: ArticleSource | None, log: Callable[[str], None] | None) -> IngestSummary:
    started = time.perf_counter()
    root = config.output.resolve()
    _check_settings(root, config, record=False)  # recorded only once the listing is known to hold documents
    source = source or make_source(config)
    broken = set_aside_broken_units(root)
    plan = plan_growth(root, source, config.articles_per_unit, limit=config.limit, frozen=config.frozen,
                       empty_message=nothing_listed(config))
    _check_settings(root, config)
    plan.retracted = new_retractions(root, source, plan.builds)
    record_retractions(root, plan)
    if log is not None:
        log(_plan_line(plan, broken))
    units = [u for build in plan.builds for u in build_units(build, config.articles_per_unit)]
    summary = _run(config, source, root, plan.listed, units)
    done = completed_units(root)
    for build in plan.builds:
        if build.status != "complete" and all(u in done for u in build.unit_range):
            build.status, build.finished_at = "complete", build.finished_at or now()
            write_build(root, build)
    summary.documents_new, summary.documents_changed = plan.new, plan.changed
    summary.documents_removed, summary.documents_unchanged = len(plan.removed), plan.unchanged
    summary.removed_items = list(plan.removed)
    summary.build = plan.new_build.number if plan.new_build is not None else None
    summary.resumed_build = plan.resumed.number if plan.resumed is not None else None
    summary.adopted, summary.broken_units = plan.adopted, broken
    _finish(config, source, root, summary, started)
    return summary


def _plan_line(plan: GrowthPlan, broken: dict[int, list[str]]) -> str:
    parts = [f"build {plan.snapshot}: {plan.counts_line}"]
    if plan.retracted:
        parts.append(f"{len(plan.retracted)} newly retracted")
    if plan.new_build is not None and plan.new_build.items:
        parts.append(f"units from {plan.new_build.first_unit_id}")
    if plan.resumed is not None:
        parts.append(f"resuming unfinished build {plan.resumed.number}")
    if plan.adopted:
        parts.append("an archive without build records adopted as build 0")
    if broken:
        parts.append(f"unit(s) {', '.join(map(str, broken))} lost files: redone")
    return "; ".join(parts)


def _write_lock(config: IngestConfig) -> ArchiveLock:
    """The archive's lock; a job-array task takes its own, so the tasks of one array run together.

    Checks the executor (and the array position) first: before anything is locked or written.
    """
    if check_executor(config.executor) != "array":
        return ArchiveLock(config.output, "biomedica ingest")
    task = array_task_from_env()
    return ArchiveLock(config.output, f"biomedica ingest --executor array (task {task.index} of {task.count})",
                       name=shared_lock_name(f"array-of-{task.count}", f"task-{task.index}"))


def _ingest(config: IngestConfig, source: ArticleSource | None, item_ids: list[str], first_unit_id: int) -> IngestSummary:
    started = time.perf_counter()
    root = config.output.resolve()
    source = source or make_source(config)
    items = list(item_ids)
    _check_settings(root, config)
    if config.limit is not None:
        items = items[: config.limit]
    units = plan_units(items, config.articles_per_unit, first_unit_id=first_unit_id)
    summary = _run(config, source, root, len(items), units)
    _finish(config, source, root, summary, started)
    return summary


def _run(config: IngestConfig, source: ArticleSource, root: Path, listed: int, units: list[WorkUnit]) -> IngestSummary:
    """Run the units that have no marker yet; the summary counts what ran and what was already done."""
    done = completed_units(root)
    todo = [u for u in units if u.unit_id not in done]
    summary = IngestSummary(
        archive=root, items_total=listed, units_total=len(units), units_skipped=len(units) - len(todo)
    )
    images = image_config(config)

    bar = tqdm(
        total=sum(len(u.item_ids) for u in todo),
        unit="doc",
        desc="ingest",
        disable=not config.progress,
        dynamic_ncols=True,
    )
    with bar, _worker_plan(source, root, todo):
        context = UnitContext(source, root, images, owner=held_lock(root))
        for unit, _stats in run_units(
            run_unit, todo, executor=config.executor, workers=config.workers, context=context
        ):
            bar.update(len(unit.item_ids))
            summary.units_run += 1
            summary.items_run += len(unit.item_ids)
    summary.unfetched = unfetched_items(units, completed_units(root))
    return summary


def _worker_plan(source: ArticleSource, root: Path, todo: list[WorkUnit]) -> AbstractContextManager:
    """A source that hands workers a plan file (pmc-cloud) writes it for this run, instead of pickling its listing."""
    plan = getattr(source, "worker_plan", None)
    return plan(root) if plan is not None and todo else nullcontext()


def _finish(config: IngestConfig, source: ArticleSource, root: Path, summary: IngestSummary, started: float) -> None:
    """Finalize (not a job-array task: the other tasks may still write) and count what the archive holds."""
    if config.executor != "array":
        build_config = config.model_dump(mode="json") | {"biomedica_version": __version__}
        manifest = finalize_archive(root, build_config=build_config, source=source.describe())
        summary.samples_superseded = manifest["totals"].get("samples_superseded", 0)
        remove_leftovers(root)  # temporaries of any writer that died while this run worked
    _fill_totals(summary, root)
    summary.seconds = time.perf_counter() - started


def _fill_totals(summary: IngestSummary, root: Path) -> None:
    """Totals over every complete unit of the archive (this run's and earlier builds'), from their markers."""
    done = completed_units(root)
    wanted = set(done)
    samples: Counter[str] = Counter()
    for unit_id, stats in done.items():
        if unit_id not in wanted:
            continue
        summary.articles += stats.articles
        summary.errors += stats.errors
        samples.update(stats.samples)
    summary.samples = {g: samples.get(g, 0) for g in LICENSE_GROUPS}
    kinds: Counter[str] = Counter()
    for unit_id in wanted:
        path = root / "errors" / f"part-{unit_id:06d}.parquet"
        if path.exists():
            kinds.update(pq.read_table(path, columns=["kind"]).column("kind").to_pylist())
    summary.errors_by_kind = dict(kinds.most_common())
