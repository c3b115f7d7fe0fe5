"""A killed or interrupted ingest leaves no process behind, publishes nothing afterwards, and resumes exactly.

Real `biomedica ingest` subprocesses with two pool workers on a corpus big enough to be
killed mid-run; processes are found through /proc (Linux).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from biomedica.archive import verify_archive
from biomedica.io.lock import LOCK_NAME

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc"),
]

N_ARTICLES = 80
INTERRUPTED = "interrupted: the archive is consistent; rerun the same command to resume"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus

    out = tmp_path_factory.mktemp("orphans") / "corpus"
    write_demo_corpus(out, DemoCorpusConfig(n_articles=N_ARTICLES, seed=3))
    return out


def _cli(corpus: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "biomedica.cli", "ingest", str(corpus), "--out", str(out),
            "--articles-per-unit", "1", "--workers", "2", "--no-progress"]


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    """A clean, uninterrupted build with the same units."""
    out = tmp_path_factory.mktemp("orphans-reference") / "archive"
    subprocess.run(_cli(corpus, out), check=True, capture_output=True, timeout=600)
    return out


def _fingerprint(root: Path) -> dict[str, str]:
    """sha256 of every shard, index and sizes.json: equal fingerprints = identical archives."""
    files = sorted(root.glob("*/*.tar")) + sorted(root.glob("*/*.parquet")) + sorted(root.glob("*/sizes.json"))
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _published(root: Path) -> dict[str, int]:
    """Every non-hidden file of the archive with its mtime: what a reader can see."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def _temporaries(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(".*") if ".tmp-" in p.name)


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(ppid, state, start time) of a live process; None when gone (a zombie counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[1]), fields[0], fields[19]) if fields[0] not in "ZX" else None


def _descendants(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of every live descendant of `pid`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
    found: set[tuple[int, str]] = set()
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        if (stat := _stat(child)) is not None:
            found.add((child, stat[2]))
            todo += children.get(child, [])
    return found


def _alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    return {(pid, started) for pid, started in processes if (s := _stat(pid)) is not None and s[2] == started}


def _start_and_wait_for_units(cmd: list[str], out: Path, units: int, **popen) -> tuple[subprocess.Popen, set]:
    """Start an ingest; return it once `units` units are complete, with its descendants (workers and helpers)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen)
    deadline = time.monotonic() + 300
    family: set[tuple[int, str]] = set()
    while len(list((out / "_units").glob("*.json")) if (out / "_units").is_dir() else []) < units:
        assert proc.poll() is None, f"the run ended before it could be stopped: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the run made no progress"
        family |= _descendants(proc.pid)
        time.sleep(0.005)
    family |= _descendants(proc.pid)
    assert proc.poll() is None, "the run finished before it could be stopped; the test needs a bigger corpus"
    workers = [pid for pid, _ in family if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]
    assert len(workers) >= 1, "no pool worker seen"
    return proc, family


def _wait_gone(family: set[tuple[int, str]], seconds: float = 10) -> set[tuple[int, str]]:
    """The processes of `family` still alive after `seconds`; those are then killed (nothing outlives the test)."""
    deadline = time.monotonic() + seconds
    while _alive(family) and time.monotonic() < deadline:
        time.sleep(0.02)
    survivors = _alive(family)
    for pid, _ in survivors:
        os.kill(pid, signal.SIGKILL)
    return survivors


def _rerun(corpus: Path, out: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(_cli(corpus, out), check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def test_kill_9_of_the_main_process_only_leaves_no_worker_and_no_later_unit(corpus, reference, tmp_path):
    out = tmp_path / "archive"
    proc, family = _start_and_wait_for_units(_cli(corpus, out), out, units=random.randint(1, 8))
    os.kill(proc.pid, signal.SIGKILL)  # the main process only, not its group
    proc.wait()
    published = _published(out)

    survivors = _wait_gone(family)
    assert not survivors, f"processes of the killed run still alive after 10 s: {sorted(survivors)}"
    time.sleep(0.5)
    assert _published(out) == published, "a unit was published after the main process was killed"
    assert not (out / "manifest.json").exists()

    rerun = _rerun(corpus, out)
    (warning,) = rerun.stderr.splitlines()  # the dead run's lock, taken over
    assert warning.startswith(f"warning: {out.resolve() / LOCK_NAME} was left by `biomedica ingest` (pid {proc.pid} ")
    assert _fingerprint(out) == _fingerprint(reference)
    assert verify_archive(out) == []
    assert _temporaries(out) == []


def test_killed_and_refused_runs_then_a_rerun_leave_no_temporaries(corpus, reference, tmp_path):
    out = tmp_path / "archive"
    killed, family = _start_and_wait_for_units(_cli(corpus, out), out, units=3)
    refused = subprocess.run(_cli(corpus, out), check=False, capture_output=True, text=True, timeout=300)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.splitlines()
    assert line.startswith(f"error: {out.resolve()} is being written by `biomedica ingest` (pid {killed.pid} ")
    assert not _wait_gone(family)

    # What a writer killed at other moments leaves: a finalize's sizes.json / manifest.json, a lock being made.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True,
                          text=True)
    dead_pid = int(dead.stdout)
    (out / "commercial").mkdir(exist_ok=True)
    planted = [out / "commercial" / f".sizes.json.tmp-{dead_pid}-0-ab12", out / f".manifest.json.tmp-{dead_pid}-3-00ff",
               out / f".{LOCK_NAME}.tmp-{dead_pid}-1-9abc", out / "_units" / f".000001.json.tmp-{dead_pid}-7-0123"]
    live = out / "commercial" / f".sizes.json.tmp-{os.getpid()}-0-beef"  # a writer that still runs: kept
    foreign = [out / ".notes.tmp", out / "commercial" / ".readme.tmp-12-0-zzzz", out / "mine.tmp-1-2-abcd"]  # not ours
    for path in [*planted, live, *foreign]:
        path.write_bytes(b"x")

    _rerun(corpus, out)
    assert _temporaries(out) == sorted([live, foreign[1]])
    assert all(path.exists() for path in foreign)
    assert _fingerprint(out) == _fingerprint(reference)
    assert verify_archive(out) == []


@pytest.mark.parametrize(("signum", "to_group", "code"), [
    (signal.SIGINT, True, 130),  # Ctrl-C in a terminal: every process of the foreground group
    (signal.SIGTERM, False, 143),  # kill PID, a scheduler's stop: the main process only
])
def test_interrupt_says_how_to_resume_and_stops_the_workers(corpus, reference, tmp_path, signum, to_group, code):
    out = tmp_path / "archive"
    proc, family = _start_and_wait_for_units(_cli(corpus, out), out, units=2, start_new_session=True)
    started = time.monotonic()
    if to_group:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    try:
        returncode = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        returncode = proc.wait()
    survivors = _wait_gone(family, seconds=10)
    stderr = proc.stderr.read()  # once nothing holds the pipe any more
    assert returncode == code, stderr
    assert stderr.splitlines() == [INTERRUPTED], stderr  # no traceback, from the main process or a worker
    assert not survivors
    assert time.monotonic() - started < 30  # stopped, not run to the end
    assert not (out / LOCK_NAME).exists()

    _rerun(corpus, out)
    assert _fingerprint(out) == _fingerprint(reference)
    assert _temporaries(out) == []
