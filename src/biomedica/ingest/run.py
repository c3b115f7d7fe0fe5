"""`biomedica ingest`: plan work units, run the missing ones on a pool, finalize, summarise.

Resume is free: units that have their completion marker are skipped, a unit that died half
way is cleaned and redone, and the manifest / sizes.json are derived from the markers at the
end, so an interrupted run followed by a re-run equals one uninterrupted run.

A job-array task (`--executor array`) runs its share of the units beside the other tasks
under a shared lock and writes no manifest.json / sizes.json: tasks finish at different
times, so one plain run afterwards, which finds every unit done, writes them.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
from tqdm import tqdm

from biomedica import __version__
from biomedica.archive.leftovers import remove_leftovers
from biomedica.archive.unit_writer import completed_units, finalize_archive
from biomedica.exec import check_executor, run_units
from biomedica.exec.job_array import array_task_from_env
from biomedica.images import ImageConfig
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.pipeline import UnitContext, WorkUnit, plan_units, run_unit
from biomedica.ingest.sources import ArticleSource
from biomedica.ingest.sources.directory import DirectorySource
from biomedica.io.lock import ArchiveLock, held_lock, shared_lock_name
from biomedica.io.settings import SettingsMismatch, check_settings
from biomedica.records import LICENSE_GROUPS

SETTINGS_FILE = "_build_settings.json"


IngestSettingsMismatch = SettingsMismatch  # the name callers catch; one rule for every stage (io.settings)


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

    @property
    def samples_total(self) -> int:
        return sum(self.samples.values())


def make_source(config: IngestConfig) -> ArticleSource:
    """The reader the config names; network readers import their clients lazily."""
    if config.source == "dir":
        return DirectorySource(Path(config.input))
    if config.source == "pmc-package":
        from biomedica.ingest.sources.pmc_package import PmcPackageSource

        return PmcPackageSource(
            config.input, file_list=config.file_list, license_groups=config.license_groups, net=config.net
        )
    if config.source == "pmc-cloud":
        from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig, PmcCloudSource

        return PmcCloudSource(config.pmc_cloud or PmcCloudConfig())
    raise ValueError(f"unknown source {config.source!r}; available: dir, pmc-package, pmc-cloud")


def image_config(config: IngestConfig) -> ImageConfig:
    return ImageConfig(
        lossy_format=config.lossy_images, jpeg_quality=config.jpeg_quality, max_pixels=config.max_image_pixels
    )


def _check_settings(root: Path, config: IngestConfig) -> None:
    """Record the unit/image settings on first run; refuse a resume that changes them."""
    check_settings(root / SETTINGS_FILE, config.archive_settings(), str(root),
                   "re-run with the original settings to resume, or write to a new --out folder")


def run_ingest(
    config: IngestConfig,
    source: ArticleSource | None = None,
    item_ids: list[str] | None = None,
    first_unit_id: int = 0,
) -> IngestSummary:
    """Ingest `config.input` into the archive at `config.output`, resuming if it exists.

    `source` overrides the source built from the config; `item_ids` (a build's own sorted
    item list, e.g. the new versions of an incremental sync) and `first_unit_id` (the next
    free unit number of the archive) let a later build append units without touching
    earlier ones. Holds the archive's write lock while it runs (a job-array task: its shared lock).
    """
    with _write_lock(config):
        return _ingest(config, source, item_ids, first_unit_id)


def _write_lock(config: IngestConfig) -> ArchiveLock:
    """The archive's lock; a job-array task takes its own, so the tasks of one array run together.

    Checks the executor (and the array position) first: before anything is locked or written.
    """
    if check_executor(config.executor) != "array":
        return ArchiveLock(config.output, "biomedica ingest")
    task = array_task_from_env()
    return ArchiveLock(config.output, f"biomedica ingest --executor array (task {task.index} of {task.count})",
                       name=shared_lock_name(f"array-of-{task.count}", f"task-{task.index}"))


def _ingest(
    config: IngestConfig, source: ArticleSource | None, item_ids: list[str] | None, first_unit_id: int
) -> IngestSummary:
    started = time.perf_counter()
    root = config.output.resolve()
    if config.executor != "array":  # under the exclusive lock only: array tasks on other hosts write beside us
        remove_leftovers(root)
    _check_settings(root, config)
    source = source or make_source(config)
    items = source.list_items() if item_ids is None else list(item_ids)
    if config.limit is not None:
        items = items[: config.limit]
    units = plan_units(items, config.articles_per_unit, first_unit_id=first_unit_id)
    done = completed_units(root)
    todo = [u for u in units if u.unit_id not in done]
    summary = IngestSummary(
        archive=root, items_total=len(items), units_total=len(units), units_skipped=len(units) - len(todo)
    )
    images = image_config(config)

    bar = tqdm(
        total=sum(len(u.item_ids) for u in todo),
        unit="doc",
        desc="ingest",
        disable=not config.progress,
        dynamic_ncols=True,
    )
    with bar:
        context = UnitContext(source, root, images, owner=held_lock(root))
        for unit, _stats in run_units(
            run_unit, todo, executor=config.executor, workers=config.workers, context=context
        ):
            bar.update(len(unit.item_ids))
            summary.units_run += 1
            summary.items_run += len(unit.item_ids)

    if config.executor != "array":  # the other tasks may still write: the plain run after the array finalizes
        build_config = config.model_dump(mode="json") | {"biomedica_version": __version__}
        finalize_archive(root, build_config=build_config, source=source.describe())
        remove_leftovers(root)  # temporaries of any writer that died while this run worked
    _fill_totals(summary, root, units)
    summary.seconds = time.perf_counter() - started
    return summary


def _fill_totals(summary: IngestSummary, root: Path, units: list[WorkUnit]) -> None:
    """Totals over the units of this input (run now or earlier), read from their markers."""
    wanted = {u.unit_id for u in units}
    done = completed_units(root)
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
