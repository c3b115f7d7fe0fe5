"""Executors: run work units and yield their stats as they complete.

The unit function (`pipeline.run_unit`) is the same everywhere; an executor only decides
where it runs. `local` is a process pool on this machine; other executors (Ray) register
themselves in EXECUTORS with the same signature.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterator

from biomedica.archive.unit_writer import UnitStats
from biomedica.ingest.images import ImageConfig
from biomedica.ingest.pipeline import WorkUnit, run_unit
from biomedica.ingest.sources import ArticleSource

Executor = Callable[[list[WorkUnit], ArticleSource, Path, ImageConfig, int], Iterator[tuple[WorkUnit, UnitStats]]]

# Worker-process state, set once per process by the pool initializer (not pickled per task).
_WORKER: dict = {}


def _init_worker(source: ArticleSource, root: Path, images: ImageConfig) -> None:
    _WORKER.update(source=source, root=root, images=images)


def _run_in_worker(unit: WorkUnit) -> UnitStats:
    return run_unit(unit, _WORKER["source"], _WORKER["root"], _WORKER["images"])


def run_local(
    todo: list[WorkUnit], source: ArticleSource, root: Path, images: ImageConfig, workers: int
) -> Iterator[tuple[WorkUnit, UnitStats]]:
    """Inline for one worker (easy to debug), else a spawn-based process pool."""
    if workers <= 1 or len(todo) <= 1:
        for unit in todo:
            yield unit, run_unit(unit, source, root, images)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(todo)),
        mp_context=context,
        initializer=_init_worker,
        initargs=(source, root, images),
    ) as pool:
        futures = {pool.submit(_run_in_worker, unit): unit for unit in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()


def run_ray(
    todo: list[WorkUnit], source: ArticleSource, root: Path, images: ImageConfig, workers: int
) -> Iterator[tuple[WorkUnit, UnitStats]]:
    """Ray tasks (executors_ray); Ray is imported only when this executor is chosen."""
    from biomedica.ingest.executors_ray import run_ray as run_on_ray

    yield from run_on_ray(todo, source, root, images, workers)


def run_array(
    todo: list[WorkUnit], source: ArticleSource, root: Path, images: ImageConfig, workers: int
) -> Iterator[tuple[WorkUnit, UnitStats]]:
    """This job-array task's share of the units (executors_array), on the local pool."""
    from biomedica.ingest.executors_array import run_array_task

    yield from run_array_task(todo, source, root, images, workers)


EXECUTORS: dict[str, Executor] = {"local": run_local, "ray": run_ray, "array": run_array}
