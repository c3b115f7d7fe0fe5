"""Moved: executors live in `biomedica.exec` (`run_units(fn, units, executor=..., context=...)`).

This adapter keeps the old ingest signature `execute(todo, source, root, images, workers)`
for one release.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from biomedica import exec as _exec
from biomedica.archive.unit_writer import UnitStats
from biomedica.images import ImageConfig
from biomedica.ingest.pipeline import UnitContext, WorkUnit, run_unit
from biomedica.ingest.sources import ArticleSource

Executor = Callable[[list[WorkUnit], ArticleSource, Path, ImageConfig, int], Iterator[tuple[WorkUnit, UnitStats]]]


def _ingest_executor(name: str) -> Executor:
    def execute(
        todo: list[WorkUnit], source: ArticleSource, root: Path, images: ImageConfig, workers: int
    ) -> Iterator[tuple[WorkUnit, UnitStats]]:
        return _exec.run_units(
            run_unit, todo, executor=name, workers=workers, context=UnitContext(source, root, images)
        )

    execute.__name__ = f"run_{name}"
    return execute


EXECUTORS: dict[str, Executor] = {name: _ingest_executor(name) for name in _exec.EXECUTORS}
run_local, run_ray, run_array = EXECUTORS["local"], EXECUTORS["ray"], EXECUTORS["array"]
