"""The lock's generation: a worker of a run that no longer owns the archive must not publish into it."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from biomedica.io.lock import LOCK_NAME, ArchiveLock, LockToken, LostArchiveLock, held_lock, shared_lock_name

# A process that takes the lock, prints its lock file, and holds it until stdin closes (or dies at once).
_HOLDER = """
import os, sys
from pathlib import Path
from biomedica.io.lock import ArchiveLock
with ArchiveLock(sys.argv[1], "biomedica ingest", name=sys.argv[3]) as lock:
    print(lock.path.read_text().replace("\\n", " "), flush=True)
    if sys.argv[2] == "die":
        os._exit(0)  # like SIGKILL: the lock file stays
    sys.stdin.readline()
"""


def _hold(root: Path, mode: str = "hold", name: str = LOCK_NAME) -> tuple[subprocess.Popen, LockToken]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root), mode, name],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    holder = json.loads(proc.stdout.readline())
    return proc, LockToken(root.resolve() / name, holder["generation"], holder["host"], holder["pid"])


def test_each_taking_of_the_lock_has_a_new_generation(tmp_path):
    generations = set()
    for _ in range(3):
        with ArchiveLock(tmp_path, "biomedica ingest") as lock:
            fields = json.loads((tmp_path / LOCK_NAME).read_text())
            assert lock.token == held_lock(tmp_path) == LockToken(
                tmp_path.resolve() / LOCK_NAME, fields["generation"], socket.gethostname(), os.getpid())
            with ArchiveLock(tmp_path, "biomedica ingest") as inner:  # re-entered: the same ownership
                assert inner.token == lock.token
            lock.token.check()
            generations.add(fields["generation"])
    assert len(generations) == 3 and all(len(g) == 32 for g in generations)
    with pytest.raises(RuntimeError, match="holds no write lock"):
        held_lock(tmp_path)


def test_a_token_fails_once_another_run_owns_the_folder(tmp_path):
    holder, token = _hold(tmp_path)
    token.check()  # the holder runs and still owns it
    holder.communicate("\n", timeout=30)
    with pytest.raises(LostArchiveLock, match=f"lost the archive lock; another run owns {tmp_path.resolve()} now"):
        token.check()  # released: nobody owns it
    with ArchiveLock(tmp_path, "biomedica ingest") as lock:
        with pytest.raises(LostArchiveLock, match="another run owns"):
            token.check()
        lock.token.check()


def test_a_token_fails_when_its_holder_died_even_before_a_takeover(tmp_path):
    dead, token = _hold(tmp_path, mode="die")
    dead.wait(timeout=30)
    assert (tmp_path / LOCK_NAME).exists()  # the dead run's generation is still written there
    with pytest.raises(LostArchiveLock, match=f"the run holding it \\(pid {dead.pid}\\) is gone"):
        token.check()
    # taken over with a warning: a new generation
    with ArchiveLock(tmp_path, "biomedica ingest"), pytest.raises(LostArchiveLock, match="another run owns"):
        token.check()


def test_job_array_tasks_each_check_their_own_lock_file(tmp_path):
    name = shared_lock_name("array-of-2", "task-0")
    task0, token0 = _hold(tmp_path, name=name)
    try:
        with ArchiveLock(tmp_path, "biomedica ingest", name=shared_lock_name("array-of-2", "task-1")) as task1:
            token0.check()
            task1.token.check()
            assert task1.token.path.name != token0.path.name
    finally:
        task0.communicate("\n", timeout=30)
    with pytest.raises(LostArchiveLock):
        token0.check()
