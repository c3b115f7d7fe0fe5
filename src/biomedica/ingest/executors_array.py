"""Executor `array`: one task of a batch-scheduler job array runs its share of the work units.

Task i of n runs the units whose id is i modulo n (on the local process pool), so n tasks of
a Slurm job array (or any indexed job: PBS, SGE, Kubernetes) write disjoint units into one
archive on a shared file system. Units are fixed slices of the input, so the split does not
depend on n, and a resubmitted array skips the units that already have their marker. After
the array, one ordinary `biomedica ingest` with the same settings finds every unit done and
writes the final manifest.json and sizes.json.

The task index and count come from Slurm (`SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN`,
`SLURM_ARRAY_TASK_COUNT`) or from `BIOMEDICA_TASK_INDEX` / `BIOMEDICA_TASK_COUNT`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from biomedica.archive.unit_writer import UnitStats
from biomedica.ingest.images import ImageConfig
from biomedica.ingest.pipeline import WorkUnit
from biomedica.ingest.sources import ArticleSource


class ArrayTaskError(RuntimeError):
    """The job-array position is missing or inconsistent."""


@dataclass(frozen=True)
class ArrayTask:
    index: int  # 0-based
    count: int

    def owns(self, unit: WorkUnit) -> bool:
        return unit.unit_id % self.count == self.index


def array_task_from_env(env: Mapping[str, str] | None = None) -> ArrayTask:
    """This process's place in the job array, from Slurm's or biomedica's variables."""
    env = os.environ if env is None else env
    if "BIOMEDICA_TASK_INDEX" in env or "BIOMEDICA_TASK_COUNT" in env:
        index, count = env.get("BIOMEDICA_TASK_INDEX"), env.get("BIOMEDICA_TASK_COUNT")
        where = "BIOMEDICA_TASK_INDEX / BIOMEDICA_TASK_COUNT"
        offset = "0"
    elif "SLURM_ARRAY_TASK_ID" in env:
        index, count = env.get("SLURM_ARRAY_TASK_ID"), env.get("SLURM_ARRAY_TASK_COUNT")
        where = "SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT"
        offset = env.get("SLURM_ARRAY_TASK_MIN", "0")
    else:
        raise ArrayTaskError(
            "--executor array runs one task of a job array, but no task index is set: submit with "
            "`sbatch --array=0-N`, or set BIOMEDICA_TASK_INDEX and BIOMEDICA_TASK_COUNT"
        )
    try:
        task = ArrayTask(index=int(index) - int(offset), count=int(count))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ArrayTaskError(f"{where} must be integers, got {index!r} / {count!r}") from None
    if task.count < 1 or not 0 <= task.index < task.count:
        raise ArrayTaskError(
            f"{where}: task {task.index} of {task.count} is out of range; use a contiguous array such as --array=0-{max(task.count - 1, 0)}"
        )
    return task


def run_array_task(
    todo: list[WorkUnit], source: ArticleSource, root: Path, images: ImageConfig, workers: int
) -> Iterator[tuple[WorkUnit, UnitStats]]:
    """Run this task's units (unit_id % count == index) on the local pool."""
    from biomedica.ingest.executors import run_local

    task = array_task_from_env()
    yield from run_local([unit for unit in todo if task.owns(unit)], source, root, images, workers)
