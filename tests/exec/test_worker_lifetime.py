"""Pool workers are tied to the run that started them: they die with it and leave Ctrl-C to it."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

import pytest

from biomedica.exec import run_units, stop_if_orphaned

_PR_GET_PDEATHSIG = 2


def worker_state(unit: int, context: None) -> tuple[int, int, bool]:
    """(this worker's parent, the signal it gets when the parent dies, whether it ignores SIGINT)."""
    stop_if_orphaned()  # the parent is alive: a no-op
    death = ctypes.c_int(0)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_GET_PDEATHSIG, ctypes.byref(death), 0, 0, 0)
    return os.getppid(), death.value, signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_stop_if_orphaned_is_a_no_op_outside_pool_workers():
    stop_if_orphaned()
    ((unit, (parent, _, ignores_sigint)),) = run_units(worker_state, [0], workers=1)  # inline: this process
    assert (unit, parent, ignores_sigint) == (0, os.getppid(), signal.getsignal(signal.SIGINT) is signal.SIG_IGN)


@pytest.mark.parametrize("from_thread", [False, True])
def test_pool_workers_die_with_their_parent_and_ignore_ctrl_c(from_thread):
    results: list = []
    ctrl_c = signal.getsignal(signal.SIGINT)

    def run() -> None:
        results.extend(run_units(worker_state, list(range(4)), workers=2))

    if from_thread:  # workers spawned from a thread that lives until the pool is shut down
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=120)
    else:
        run()
    assert sorted(unit for unit, _ in results) == [0, 1, 2, 3]
    for _, (parent, death_signal, ignores_sigint) in results:
        assert parent == os.getpid()
        assert ignores_sigint
        if sys.platform.startswith("linux"):
            assert death_signal == signal.SIGKILL
    assert signal.getsignal(signal.SIGINT) is ctrl_c  # the caller's Ctrl-C handling is back
