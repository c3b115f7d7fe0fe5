import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from biomedica.io.lock import LOCK_NAME, ArchiveLock, ArchiveLocked, owner_root, shared_lock_name

# A second process that takes the lock, says so, and holds it until stdin closes (or dies at once).
_HOLDER = """
import os, sys
from biomedica.io.lock import ArchiveLock
with ArchiveLock(sys.argv[1], sys.argv[2], name=sys.argv[4]):
    print("held", flush=True)
    if sys.argv[3] == "die":
        os._exit(0)  # like SIGKILL: no cleanup, the lock file stays
    sys.stdin.readline()
"""


def _hold(root: Path, command: str = "biomedica ingest", mode: str = "hold", name: str = LOCK_NAME) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root), command, mode, name],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_file_names_its_holder_and_goes_away(tmp_path):
    with ArchiveLock(tmp_path, "biomedica enrich"):
        holder = json.loads((tmp_path / LOCK_NAME).read_text(encoding="utf-8"))
        assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid()
        assert holder["command"] == "biomedica enrich" and holder["started"].startswith("20")
    assert sorted(tmp_path.iterdir()) == []


def test_second_process_is_refused_at_once_with_one_line(tmp_path):
    holder = _hold(tmp_path)
    try:
        with pytest.raises(ArchiveLocked) as refused:
            with ArchiveLock(tmp_path, "biomedica enrich"):
                pytest.fail("two writers held one archive")
        message = str(refused.value)
        assert "\n" not in message
        assert message.startswith(f"{tmp_path.resolve()} is being written by `biomedica ingest` (pid {holder.pid} on host ")
        assert message.endswith(f"wait for it to finish, or if that process is gone delete {tmp_path.resolve() / LOCK_NAME}")
        assert isinstance(refused.value, OSError)
    finally:
        holder.communicate("\n", timeout=30)
    assert not (tmp_path / LOCK_NAME).exists()
    with ArchiveLock(tmp_path, "biomedica enrich"):  # free again once the holder is done
        pass


def test_cli_ingest_into_a_locked_out_exits_2_with_the_lock_line(tmp_path, demo_corpus):
    out = tmp_path / "archive"
    holder = _hold(out)
    try:
        result = subprocess.run([sys.executable, "-m", "biomedica.cli", "ingest", str(demo_corpus), "--out", str(out),
                                 "--no-progress"], capture_output=True, text=True, timeout=120)
    finally:
        holder.communicate("\n", timeout=30)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {out.resolve()} is being written by `biomedica ingest` (pid {holder.pid} on host")
    assert line.endswith(f"delete {out.resolve() / LOCK_NAME}")
    assert not (out / "_units").exists()  # refused before writing anything


def test_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path, capsys):
    dead = _hold(tmp_path, "biomedica curate dedup", mode="die")
    dead.wait(timeout=30)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == dead.pid
    with ArchiveLock(tmp_path, "biomedica ingest"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    warning = capsys.readouterr().err
    assert warning.startswith(f"warning: {tmp_path.resolve() / LOCK_NAME} was left by `biomedica curate dedup` "
                              f"(pid {dead.pid} on host {socket.gethostname()}")
    assert warning.rstrip().endswith("which is no longer running; taking it over")
    assert not (tmp_path / LOCK_NAME).exists()


def _write_lock(root: Path, host: str, pid: int) -> None:
    holder = {"host": host, "pid": pid, "command": "biomedica ingest", "started": "2026-01-01T00:00:00+00:00"}
    (root / LOCK_NAME).write_text(json.dumps(holder), encoding="utf-8")


def test_lock_of_another_host_or_a_live_pid_is_never_taken_over(tmp_path):
    _write_lock(tmp_path, "some-other-host", 1)
    with pytest.raises(ArchiveLocked, match="pid 1 on host some-other-host, since 2026-01-01"):
        with ArchiveLock(tmp_path, "biomedica enrich"):
            pass
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(tmp_path, socket.gethostname(), sleeper.pid)  # alive, but holds no flock (e.g. a reused pid)
        with pytest.raises(ArchiveLocked, match=f"pid {sleeper.pid} on host"):
            with ArchiveLock(tmp_path, "biomedica enrich"):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()
    assert (tmp_path / LOCK_NAME).exists()  # a refused run leaves the holder's lock alone


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_lock_is_released_after_an_exception(tmp_path, error):
    with pytest.raises(error):
        with ArchiveLock(tmp_path, "biomedica ingest"):
            raise error()
    assert not (tmp_path / LOCK_NAME).exists()
    holder = _hold(tmp_path)  # another process can take it now
    holder.communicate("\n", timeout=30)
    assert holder.returncode == 0


def test_lock_is_released_on_sigterm(tmp_path):
    holder = _hold(tmp_path)
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(timeout=30) == 128 + signal.SIGTERM
    assert not (tmp_path / LOCK_NAME).exists()


def test_lock_is_reentrant_in_one_process(tmp_path):
    with ArchiveLock(tmp_path, "biomedica ingest --incremental"):
        with ArchiveLock(tmp_path / ".", "biomedica ingest"):  # run_sync -> run_ingest
            pass
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["command"] == "biomedica ingest --incremental"
    assert not (tmp_path / LOCK_NAME).exists()


def test_folders_the_lock_created_go_when_nothing_was_written(tmp_path):
    with ArchiveLock(tmp_path / "new" / "out", "biomedica select"):
        assert (tmp_path / "new" / "out" / LOCK_NAME).is_file()
    assert not (tmp_path / "new").exists()
    with ArchiveLock(tmp_path / "kept", "biomedica select"):
        (tmp_path / "kept" / "manifest.parquet").write_bytes(b"x")
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["manifest.parquet"]


def test_owner_root_is_the_archive_for_its_own_annotations(tmp_path):
    archive = tmp_path / "archive"
    assert owner_root(archive / "annotations", archive) == archive.resolve()
    assert owner_root(tmp_path / "elsewhere", archive) == (tmp_path / "elsewhere").resolve()


# Takes the lock where os.link fails (a file system without hard links), with the flock call slowed
# down: the lock file exists, empty and unflocked, for `delay` seconds before its creator holds it.
_NO_LINK_HOLDER = """
import fcntl, os, sys, time
from biomedica.io.lock import ArchiveLock

def no_link(src, dst, *args, **kwargs):
    raise PermissionError(1, "Operation not permitted")

real_flock = fcntl.flock
def slow_flock(fd, op):
    time.sleep(float(sys.argv[2]))
    return real_flock(fd, op)

os.link, fcntl.flock = no_link, slow_flock
with ArchiveLock(sys.argv[1], "biomedica enrich"):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_without_hard_links_a_lock_being_created_is_never_taken_over(tmp_path):
    creator = subprocess.Popen([sys.executable, "-c", _NO_LINK_HOLDER, str(tmp_path), "0.5"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / LOCK_NAME).exists():  # created in place, not yet flock'd nor written
            assert time.monotonic() < deadline and creator.poll() is None
            time.sleep(0.001)
        with pytest.raises(ArchiveLocked, match=f"`biomedica enrich` \\(pid {creator.pid} on host"):
            with ArchiveLock(tmp_path, "biomedica ingest"):
                pytest.fail("took over a lock that was being created")
        assert creator.stdout.readline().strip() == "held"
    finally:
        creator.communicate("\n", timeout=30)
    assert creator.returncode == 0 and not (tmp_path / LOCK_NAME).exists()


def test_an_unreadable_free_lock_is_refused_with_the_file_to_delete(tmp_path):
    (tmp_path / LOCK_NAME).write_bytes(b"")
    with pytest.raises(ArchiveLocked) as refused:
        with ArchiveLock(tmp_path, "biomedica ingest"):
            pytest.fail("took over an unreadable lock")
    assert "\n" not in str(refused.value)
    assert str(refused.value).endswith(f"delete {tmp_path.resolve() / LOCK_NAME}")
    assert (tmp_path / LOCK_NAME).read_bytes() == b""


def test_other_threads_wait_while_one_thread_holds_the_lock(tmp_path):
    events = []
    entered = threading.Event()

    def second():
        entered.wait()
        with ArchiveLock(tmp_path, "biomedica annotate --export"):
            events.append("second in")

    thread = threading.Thread(target=second)
    thread.start()
    with ArchiveLock(tmp_path, "biomedica annotate --export"):
        entered.set()
        with ArchiveLock(tmp_path, "biomedica annotate --export"):  # the same thread re-enters at once
            time.sleep(0.3)  # the other thread is waiting all this time
            events.append("first leaves")
    thread.join(timeout=30)
    assert events == ["first leaves", "second in"]
    assert not (tmp_path / LOCK_NAME).exists()


def _task(index: int, count: int = 2) -> str:
    return shared_lock_name(f"array-of-{count}", f"task-{index}")


def test_members_of_a_group_write_together_and_exclude_the_plain_lock(tmp_path):
    first = _hold(tmp_path, "biomedica ingest --executor array (task 0 of 2)", name=_task(0))
    try:
        with ArchiveLock(tmp_path, "biomedica ingest --executor array (task 1 of 2)", name=_task(1)):
            assert (tmp_path / _task(1)).is_file()  # two members side by side
        with pytest.raises(ArchiveLocked) as again:  # the same task submitted twice
            with ArchiveLock(tmp_path, "biomedica ingest --executor array (task 0 of 2)", name=_task(0)):
                pytest.fail("one array task ran twice")
        assert str(again.value).endswith(f"delete {tmp_path.resolve() / _task(0)}")
        with pytest.raises(ArchiveLocked, match="task 0 of 2"):  # another array: its units overlap
            with ArchiveLock(tmp_path, "biomedica ingest --executor array (task 1 of 3)", name=_task(1, 3)):
                pytest.fail("two job arrays wrote one archive")
        with pytest.raises(ArchiveLocked) as plain:
            with ArchiveLock(tmp_path, "biomedica ingest"):
                pytest.fail("a plain run wrote beside an array task")
        assert f"(pid {first.pid} on host" in str(plain.value)
        assert str(plain.value).endswith(f"delete {tmp_path.resolve() / _task(0)}")
        assert sorted(p.name for p in tmp_path.iterdir()) == [_task(0)]  # refused runs leave no lock behind
    finally:
        first.communicate("\n", timeout=30)
    plain_holder = _hold(tmp_path)
    try:
        with pytest.raises(ArchiveLocked, match=f"biomedica ingest` \\(pid {plain_holder.pid} on host"):
            with ArchiveLock(tmp_path, "biomedica ingest --executor array (task 0 of 2)", name=_task(0)):
                pytest.fail("an array task wrote beside a plain run")
    finally:
        plain_holder.communicate("\n", timeout=30)
    assert sorted(tmp_path.iterdir()) == []


def test_a_stale_member_lock_does_not_block_the_plain_run(tmp_path):
    name = shared_lock_name("array-of-2", "task-1")
    dead = _hold(tmp_path, "biomedica ingest --executor array (task 1 of 2)", mode="die", name=name)
    dead.wait(timeout=30)
    with ArchiveLock(tmp_path, "biomedica ingest"):
        pass
    assert (tmp_path / name).is_file()  # left for the next task of that number to take over
    with pytest.raises(ValueError, match="shared_lock_name"):
        ArchiveLock(tmp_path, "biomedica ingest", name=".biomedica.lock.nomember")
