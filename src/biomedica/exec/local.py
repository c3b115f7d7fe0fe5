"""Executor `local`: inline for one worker (easy to debug), else a spawn-based process pool.

The pool's initializer receives the context once per worker process; each task then pickles
only the unit and a reference to the top-level unit function.

Workers die with the run that started them. A `kill -9` of the main process alone must not
leave workers that keep writing units into an archive the run no longer holds:

- On Linux each worker asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG),
  then checks that its parent is still the process that spawned it (it may have died
  before the request). The signal follows the parent *thread* that forked the worker:
  ProcessPoolExecutor (3.11-3.13, spawn context, no `max_tasks_per_child`) starts workers
  only inside `submit`, and `run_local` submits every unit from the thread that first
  iterates it before it waits, then shuts the pool down in that same thread, which
  therefore outlives its workers. (Iterate it to the end in one thread: were that thread to
  exit first, the workers would die and the pool fail loudly with BrokenProcessPool.)
- Everywhere, a worker checks that its parent is alive before each unit, and unit functions
  call `stop_if_orphaned()` before each document; where PDEATHSIG is missing a watchdog
  thread also exits a worker that waits idle for a parent that is gone.

Ctrl-C reaches every process of the terminal's group: workers ignore SIGINT from their start
(no tracebacks, not even while they import) and the main process stops them (SIGTERM: the
unit in hand is abandoned and its temporaries removed), so an interrupted run ends in
moments and resumes where it stopped.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any, TypeVar

from biomedica.exec.errors import name_unit

U = TypeVar("U")
R = TypeVar("R")

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_WATCHDOG_SECONDS = 0.5
_EXIT_ORPHANED = 128 + signal.SIGKILL  # as if PDEATHSIG had killed it
_EXIT_TERMINATED = 128 + signal.SIGTERM

# Worker-process state, set once per process by the pool initializer (not pickled per task).
_CONTEXT: dict[str, Any] = {}
_PARENT: dict[str, int] = {}  # "pid": the process that spawned this worker (absent outside pool workers)
_in_unit = threading.Event()  # set while this worker runs a unit function


class WorkerOrphaned(BaseException):
    """This pool worker's parent is gone: stop the unit (not an Exception, so no `except Exception` swallows it)."""


class _WorkerTerminated(BaseException):
    """SIGTERM from the main process: abandon the unit in hand."""


def stop_if_orphaned() -> None:
    """Raise WorkerOrphaned in a pool worker whose parent died; a no-op anywhere else.

    Unit functions call it between documents, so a worker that outlived its run stops
    writing there even where the kernel does not kill it.
    """
    parent = _PARENT.get("pid")
    if parent is not None and os.getppid() != parent:
        raise WorkerOrphaned(f"pool worker {os.getpid()}: its parent (pid {parent}) is gone; stopping")


def _die_with_parent(parent: int) -> bool:
    """Ask Linux to SIGKILL this process when its parent exits; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before prctl: nobody will send the signal
        os._exit(_EXIT_ORPHANED)
    return True


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        threading.Event().wait(_WATCHDOG_SECONDS)
    os._exit(_EXIT_ORPHANED)


def _on_sigterm(signum: int, frame: object) -> None:
    if _in_unit.is_set():
        raise _WorkerTerminated()  # unwinds the unit function, which removes its temporaries
    os._exit(_EXIT_TERMINATED)  # idle (waiting for work): nothing to clean up


def _init_worker(context: Any, parent: int) -> None:
    _PARENT["pid"] = parent
    if not _die_with_parent(parent):
        if os.getppid() != parent:
            os._exit(_EXIT_ORPHANED)
        threading.Thread(target=_watch_parent, args=(parent,), name="parent-watchdog", daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's business
    signal.signal(signal.SIGTERM, _on_sigterm)
    _CONTEXT["context"] = context


def _run_in_worker(fn: Callable[[U, Any], R], unit: U) -> R:
    try:
        _in_unit.set()
        stop_if_orphaned()
        return fn(unit, _CONTEXT["context"])
    except WorkerOrphaned:
        os._exit(_EXIT_ORPHANED)  # raising would only send the error to a parent that is not there
    except _WorkerTerminated:
        os._exit(_EXIT_TERMINATED)
    finally:
        _in_unit.clear()


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
    n_workers = min(workers, len(units))
    pool = ProcessPoolExecutor(
        max_workers=n_workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(context, os.getpid()),
    )
    try:
        futures: dict[Future, U] = {}
        with _sigint_ignored_by_children():  # the first submits start every worker, from this thread
            for unit in units[:n_workers]:
                futures[pool.submit(_run_in_worker, fn, unit)] = unit
        for unit in units[n_workers:]:
            futures[pool.submit(_run_in_worker, fn, unit)] = unit
        for future in as_completed(futures):
            unit = futures[future]
            try:
                result = future.result()
            except Exception as exc:
                name_unit(exc, unit)
                raise
            yield unit, result
    except (KeyboardInterrupt, SystemExit, GeneratorExit):  # Ctrl-C, SIGTERM, a caller that stopped
        _terminate_workers(pool)  # listening (e.g. interrupted between two units): stop now, not after the running units
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """Start processes with SIGINT ignored (inherited through exec), so a Ctrl-C while a worker
    still imports and unpickles its context prints no traceback there; the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """SIGTERM every worker of `pool`: each abandons its unit (temporaries removed) and exits."""
    processes = getattr(pool, "_processes", None) or {}  # the pool's own table (3.8-3.14; 3.14 adds terminate_workers)
    for process in list(processes.values()):
        try:
            process.terminate()
        except (OSError, ValueError):  # already gone or closed
            continue
