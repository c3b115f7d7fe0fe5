"""Regression: two `biomedica ingest` runs into one --out. One writes, the other is refused at once."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from biomedica.archive import verify_archive
from biomedica.io.lock import LOCK_NAME
from biomedica.records import LICENSE_GROUPS
from biomedica.testing.processes import cli_waiting_for, release_when_ready


def _samples(root: Path) -> int:
    return sum(sum(json.loads((root / g / "sizes.json").read_text()).values()) for g in LICENSE_GROUPS
               if (root / g / "sizes.json").is_file())


def _keys_and_hashes(root: Path) -> list[tuple[str, str]]:
    """(sample key, sha256 of the stored image) of every sample, from the shards' Parquet indexes."""
    rows = []
    for path in sorted(root.glob("*/[0-9]*.parquet")):
        table = pq.read_table(path, columns=["key", "sha256"])
        rows += zip(table.column("key").to_pylist(), table.column("sha256").to_pylist())
    return sorted(rows)


@pytest.mark.slow
def test_two_concurrent_ingests_into_one_out(demo_corpus, demo_archive, tmp_path):
    out, go = tmp_path / "archive", tmp_path / "go"
    cli = [*cli_waiting_for(go), "ingest", str(demo_corpus), "--out", str(out),
           "--articles-per-unit", "1", "--no-progress"]
    procs = [subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    release_when_ready(go, procs)
    finished = []
    while len(finished) < 2:
        finished += [p for p in procs if p not in finished and p.poll() is not None]
        time.sleep(0.005)
    first, second = finished
    outputs = {p.pid: p.communicate(timeout=120) for p in procs}

    assert (first.returncode, second.returncode) == (2, 0), outputs  # the refused run is done long before the other
    (line,) = outputs[first.pid][1].splitlines()
    assert line.startswith(f"error: {out.resolve()} is being written by `biomedica ingest` (pid {second.pid} on host ")
    assert line.endswith(f"); wait for it to finish, or if that process is gone delete {out.resolve() / LOCK_NAME}")
    assert verify_archive(out) == []
    assert _samples(out) == _samples(demo_archive) > 0
    assert _keys_and_hashes(out) == _keys_and_hashes(demo_archive)  # equals a clean build, sample by sample
    assert not (out / LOCK_NAME).exists()


_DIES_HOLDING_THE_LOCK = """
import os, sys
from biomedica.io.lock import ArchiveLock
with ArchiveLock(sys.argv[1], "biomedica ingest"):
    os._exit(0)  # like kill -9: the lock file stays
"""


def test_cli_ingest_takes_over_the_lock_of_a_dead_run_with_one_warning(demo_corpus, demo_archive, tmp_path):
    out = tmp_path / "archive"
    dead = subprocess.Popen([sys.executable, "-c", _DIES_HOLDING_THE_LOCK, str(out)])
    assert dead.wait(timeout=60) == 0
    holder = json.loads((out / LOCK_NAME).read_text())
    assert (holder["host"], holder["pid"]) == (socket.gethostname(), dead.pid)  # a real pid, now dead
    result = subprocess.run([sys.executable, "-m", "biomedica.cli", "ingest", str(demo_corpus), "--out", str(out),
                             "--articles-per-unit", "4", "--no-progress"], check=False, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    (warning,) = result.stderr.splitlines()
    assert warning == (f"warning: {out.resolve() / LOCK_NAME} was left by `biomedica ingest` (pid {holder['pid']} on "
                       f"host {holder['host']}, since {holder['started']}), which is no longer running; taking it over")
    assert _keys_and_hashes(out) == _keys_and_hashes(demo_archive)
    assert not (out / LOCK_NAME).exists()
