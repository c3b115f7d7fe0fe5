"""Executor `array`: one task of a batch-scheduler job array runs its share of the work units.

Task i of n runs the units whose share key is i modulo n (on the local process pool), so n
tasks of a Slurm job array (or any indexed job: PBS, SGE, Kubernetes) write disjoint units
into one output on a shared file system. The share key is the unit's `unit_id` (units are
fixed slices of the input, so the split depends neither on n nor on which units are still to
do), an int unit itself, or else a CRC-32 of `str(unit)`. A resubmitted array skips what a
stage already marked done; for ingest, one ordinary run with the same settings after the
array finds every unit done and writes the final manifest.json and sizes.json.

The task index and count come from Slurm (`SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN`,
`SLURM_ARRAY_TASK_COUNT`) or from `BIOMEDICA_TASK_INDEX` / `BIOMEDICA_TASK_COUNT`.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from biomedica.exec.errors import ExecutorError


class ArrayTaskError(ExecutorError):
    """The job-array position is missing or inconsistent."""


def share_key(unit: object) -> int:
    """The number that decides which array task runs `unit`; stable across runs and task counts."""
    unit_id = getattr(unit, "unit_id", None)
    if isinstance(unit_id, int):
        return unit_id
    if isinstance(unit, int):
        return unit
    return zlib.crc32(str(unit).encode())


@dataclass(frozen=True)
class ArrayTask:
    index: int  # 0-based
    count: int

    def owns(self, unit: object) -> bool:
        return share_key(unit) % self.count == self.index


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
