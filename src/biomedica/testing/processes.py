"""Child processes for tests and benchmarks of concurrent writers.

Two ingests, or the tasks of a job array, must reach the archive lock at the same moment,
not one after the other's imports: `cli_waiting_for(go)` starts the real `biomedica` CLI with
its imports done, and it runs only once the file `go` exists (`release_when_ready`). A stale
worker is simulated by `LockHolderProcess`: another process holding the archive lock, whose
lock token a writer can carry after that process let the archive go.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from biomedica.io.lock import LOCK_NAME, LockToken

_CLI_AT_GO = """
import os, sys, time
from pathlib import Path
from biomedica.cli import app
import biomedica.ingest.run  # the command's own imports, done before the start line too
go = Path(sys.argv[1])
Path(f"{go}.ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.002)
app(args=sys.argv[2:], prog_name="biomedica")
"""

_LOCK_HOLDER = """
import sys
from biomedica.io.lock import ArchiveLock
with ArchiveLock(sys.argv[1], "biomedica ingest") as lock:
    print(lock.path.read_text().replace("\\n", " "), flush=True)
    sys.stdin.readline()
"""


def cli_waiting_for(go: Path) -> list[str]:
    """The command line of `biomedica` that waits for `go` to exist; append the CLI's arguments."""
    return [sys.executable, "-c", _CLI_AT_GO, str(go)]


def ready(go: Path) -> int:
    """How many processes started with `cli_waiting_for(go)` have done their imports and wait."""
    return len(list(Path(go).parent.glob(f"{Path(go).name}.ready-*")))


def release_when_ready(go: Path, procs: Sequence[subprocess.Popen], timeout: float = 120) -> None:
    """Create `go` once every one of `procs` waits for it; AssertionError if one exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while ready(go) < len(procs):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a process did not start"
        time.sleep(0.01)
    Path(go).touch()


class LockHolderProcess:
    """Another process holding the archive lock of `root` until `release()`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.proc = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, str(self.root)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.fields = json.loads(self.proc.stdout.readline())

    @property
    def token(self) -> LockToken:
        """The token a worker of that process's run carries (stale once it released the lock)."""
        fields = self.fields
        return LockToken(self.root.resolve() / LOCK_NAME, fields["generation"], fields["host"], fields["pid"])

    def release(self) -> None:
        self.proc.communicate("\n", timeout=30)
