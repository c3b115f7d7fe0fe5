"""One executor API: run a unit function over work units here, on Ray, or as one task of a job array.

`run_units(fn, units, executor=..., workers=..., context=...)` calls `fn(unit, context)` for
every unit and yields `(unit, result)` as units complete, in any order. `fn` is a top-level
function (pickled by name) and `context` the heavy state every unit shares (a source, an
output root, a model config), sent once per worker process, not once per unit. A stage only
writes its unit function; where the units run is the executor's business:

| executor | where                                                              | workers               |
|----------|--------------------------------------------------------------------|-----------------------|
| local    | inline (workers <= 1 or one unit), else a spawn process pool         | processes             |
| ray      | Ray tasks on the cluster of `RAY_ADDRESS`, or a Ray started here     | tasks in flight (1: one per cluster CPU) |

`gpus_per_worker` (ray only) asks Ray for that share of a GPU per task (0.25: four tasks share one
GPU; Ray sets CUDA_VISIBLE_DEVICES, so "cuda" in a task is its own GPU); a cluster without GPUs is
refused at once rather than left waiting. Each task also takes one CPU (decode, I/O).
| array    | this job-array task's share of the units, then `local`             | processes             |

An exception raised by `fn` propagates with its own type and a note naming the unit; the
units still waiting are cancelled. Pool workers die with the run that started them; a unit
function calls `stop_if_orphaned()` between documents (see `exec.local`). Ray comes with the extra `biomedica[ray]` and is imported
only when chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from biomedica.exec.errors import ExecutorError
from biomedica.exec.local import WorkerOrphaned, stop_if_orphaned

U = TypeVar("U")
R = TypeVar("R")

EXECUTORS: tuple[str, ...] = ("local", "ray", "array")

__all__ = ["EXECUTORS", "ExecutorError", "WorkerOrphaned", "check_executor", "run_units", "stop_if_orphaned"]


def check_executor(name: str) -> str:
    """`name` if it is an executor, else one line that lists the choices."""
    if name not in EXECUTORS:
        raise ExecutorError(f"unknown executor {name!r}; available: {', '.join(sorted(EXECUTORS))}")
    return name


def run_units(
    fn: Callable[[U, Any], R],
    units: Iterable[U],
    *,
    executor: str = "local",
    workers: int = 1,
    context: Any = None,
    progress: str | None = None,
    gpus_per_worker: float = 0.0,
) -> Iterator[tuple[U, R]]:
    """Yield `(unit, fn(unit, context))` for every unit as it completes; `progress` labels a bar of units.

    The executor is checked here, before the first unit runs: an unknown name, a missing Ray or
    a missing job-array position raise ExecutorError at once; so does `gpus_per_worker` off Ray.
    """
    check_executor(executor)
    if gpus_per_worker and executor != "ray":
        raise ExecutorError("GPUs per worker apply to --executor ray only (local: one process per GPU, or drop the option)")
    todo = list(units)
    if executor == "ray":
        from biomedica.exec.ray_tasks import run_ray

        results = run_ray(fn, todo, context, workers, num_gpus=gpus_per_worker)
    else:
        from biomedica.exec.local import run_local

        if executor == "array":
            from biomedica.exec.job_array import array_task_from_env

            task = array_task_from_env()
            todo = [unit for unit in todo if task.owns(unit)]
        results = run_local(fn, todo, context, workers)
    return _with_bar(results, len(todo), progress) if progress else results


def _with_bar(results: Iterator[tuple[U, R]], total: int, label: str) -> Iterator[tuple[U, R]]:
    from tqdm import tqdm

    with tqdm(total=total, unit="unit", desc=label, dynamic_ncols=True) as bar:
        for done in results:
            bar.update(1)
            yield done
