"""Executor `local`: inline for one worker (easy to debug), else a spawn-based process pool.

The pool's initializer receives the context once per worker process; each task then pickles
only the unit and a reference to the top-level unit function.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from biomedica.exec.errors import name_unit

U = TypeVar("U")
R = TypeVar("R")

# Worker-process state, set once per process by the pool initializer (not pickled per task).
_CONTEXT: dict[str, Any] = {}


def _init_worker(context: Any) -> None:
    _CONTEXT["context"] = context


def _run_in_worker(fn: Callable[[U, Any], R], unit: U) -> R:
    return fn(unit, _CONTEXT["context"])


def run_local(fn: Callable[[U, Any], R], units: list[U], context: Any, workers: int) -> Iterator[tuple[U, R]]:
    """Yield `(unit, fn(unit, context))` as units complete; on an error the waiting units are cancelled."""
    if workers <= 1 or len(units) <= 1:
        for unit in units:
            try:
                result = fn(unit, context)
            except Exception as exc:
                name_unit(exc, unit)
                raise
            yield unit, result
        return
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(units)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(context,),
    )
    try:
        futures: dict[Future, U] = {pool.submit(_run_in_worker, fn, unit): unit for unit in units}
        for future in as_completed(futures):
            unit = futures[future]
            try:
                result = future.result()
            except Exception as exc:
                name_unit(exc, unit)
                raise
            yield unit, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
