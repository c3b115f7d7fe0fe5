"""One writer per archive: `ArchiveLock(root, command)` holds `<root>/.biomedica.lock` while a command writes.

The lock file names its holder (host, pid, command, start time, and a generation: a uuid4
new for every taking of the lock, takeovers included; JSON). It appears complete
or not at all (written under a temporary name, then hard-linked to its final name, which
fails when a lock exists; where the file system has no hard links it is created in place,
and a lock file still unreadable is waited for, never taken over) and stays flock'd while
held. A second writer therefore fails at
once with one line naming the holder and the way out. A lock left by a killed process on
this host (pid gone, flock free) is taken over with a warning; a lock from another host
cannot be checked and is never taken over. A lock is re-entrant within a thread (`run_sync`
calls `run_ingest`); other threads of the process wait until the holding thread leaves. It is
released on return, on exceptions and on SIGTERM.

The run's workers (other processes, Ray tasks) get the lock's `LockToken` and call
`token.check()` right before they publish: it raises LostArchiveLock when the lock file is
gone, carries another generation (another run owns the folder now), or names a holder of this
host that no longer runs (the run was killed; its workers must not publish for it).

Writers that may write one folder together (the tasks of a job array, each writing its own
units) take shared locks instead: `ArchiveLock(root, command, name=shared_lock_name(group,
member))` holds `<root>/.biomedica.lock.<group>.<member>`. Members of one group write side
by side; the same member twice is refused as above; the plain lock and a shared one, or two
of different groups, exclude each other: whichever comes second is refused.

What a command locks: ingest, sync and enrich lock the archive (a job-array ingest task
takes the shared lock `array-of-<n>.task-<i>`); curate and the annotate
export lock the archive when their annotation folder lies inside it (the default), else
that folder (`owner_root`); select locks its --out folder. Readers take no lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from biomedica.io.atomic import fsync_dir, pid_alive, temp_path

LOCK_NAME = ".biomedica.lock"
_ATTEMPTS = 20  # a lock released (or re-taken) while we looked at it: look again
_CREATING_WAIT = 0.1  # seconds between looks at a lock file that is still being written


class ArchiveLocked(OSError):
    """Another process writes this folder; the message names it and the way out."""


class LostArchiveLock(ArchiveLocked):
    """A worker's run no longer owns the folder (its lock is gone, taken over, or its holder died)."""


@dataclass(frozen=True)
class LockHolder:
    host: str
    pid: int
    command: str
    started: str
    generation: str = ""  # new for every taking of the lock: who owns the folder *now*

    def describe(self) -> str:
        return f"`{self.command}` (pid {self.pid} on host {self.host}, since {self.started})"


def shared_lock_name(group: str, member: str) -> str:
    """The lock file name of `member` of a `group` of writers that may write one folder together."""
    for part in (group, member):
        if not part or "." in part or "/" in part:
            raise ValueError(f"shared lock group and member must be non-empty, without '.' or '/': {part!r}")
    return f"{LOCK_NAME}.{group}.{member}"


def _group(name: str) -> str | None:
    """The group of a shared lock name (`.biomedica.lock.<group>.<member>`); None for the plain lock or any other name."""
    group, dot, member = name.removeprefix(f"{LOCK_NAME}.").partition(".")
    if name == LOCK_NAME or not name.startswith(f"{LOCK_NAME}.") or not (group and dot and member) or "." in member:
        return None
    return group


def owner_root(folder: Path, archive: Path) -> Path:
    """The folder a writer of `folder` locks: `archive` when `folder` lies inside it, else `folder` itself."""
    folder, archive = Path(folder).resolve(), Path(archive).resolve()
    return archive if folder.is_relative_to(archive) else folder


@dataclass(frozen=True)
class LockToken:
    """What a worker of the lock-holding run needs to tell, before it publishes, that the run still owns the folder.

    Picklable, so it travels to pool workers and Ray tasks with the unit's context.
    """

    path: Path
    generation: str
    host: str
    pid: int

    def check(self) -> None:
        """Raise LostArchiveLock unless the lock file still carries this generation and its holder still runs."""
        try:
            fields = json.loads(self.path.read_bytes())
            generation = fields.get("generation") if isinstance(fields, dict) else None
        except (OSError, ValueError):
            generation = None  # gone, or being rewritten by whoever takes it over
        if generation != self.generation:
            raise LostArchiveLock(f"lost the archive lock; another run owns {self.path.parent} now "
                                  f"({self.path} changed hands), so this unit is not published")
        if self.host == socket.gethostname() and not pid_alive(self.pid):
            raise LostArchiveLock(f"lost the archive lock of {self.path.parent}: the run holding it (pid {self.pid}) "
                                  "is gone, so this unit is not published; rerun the command to resume")


@dataclass
class _Held:
    fd: int
    name: str
    count: int
    created: list[Path]  # folders the lock had to create, removed again when left empty
    token: LockToken


_held: dict[Path, _Held] = {}
_threads: dict[Path, threading.RLock] = {}  # per root: the thread inside the `with` (others wait)
_registry = threading.Lock()
_previous_sigterm = None


class ArchiveLock:
    """Context manager: hold the write lock of `root` for `command` (e.g. "biomedica ingest").

    `name` is LOCK_NAME (one writer) or a `shared_lock_name(...)` (writers of one group together).
    """

    def __init__(self, root: Path, command: str, name: str = LOCK_NAME) -> None:
        if name != LOCK_NAME and _group(name) is None:
            raise ValueError(f"lock name {name!r} is neither {LOCK_NAME} nor a shared_lock_name(group, member)")
        self.root = Path(root).resolve()
        self.command = command
        self.name = name
        self.path = self.root / name

    def __enter__(self) -> ArchiveLock:
        with _registry:
            thread_lock = _threads.setdefault(self.root, threading.RLock())
        thread_lock.acquire()  # outside the registry: another thread of ours may hold this root for long
        try:
            self._enter()
        except BaseException:
            thread_lock.release()
            raise
        return self

    def _enter(self) -> None:
        held = _held.get(self.root)  # only the thread holding the root's thread lock touches its entry
        if held is not None:
            if held.name not in (LOCK_NAME, self.name):  # the plain lock covers every writer of the root
                raise ArchiveLocked(f"{self.root}: this process holds {held.name}, so it cannot also take {self.name}")
            held.count += 1
            return
        created = _make_dirs(self.root)
        try:
            fd, token = self._take()
            try:
                self._check_others()
            except BaseException:
                _release(self.path, fd)
                raise
        except BaseException:
            _remove_empty(created)
            raise
        with _registry:
            _held[self.root] = _Held(fd, self.name, 1, created, token)
            _catch_sigterm()

    @property
    def token(self) -> LockToken:
        """The token of the lock this `with` holds (the outer one when re-entered)."""
        return held_lock(self.root)

    def __exit__(self, *exc_info: object) -> None:
        try:
            held = _held[self.root]
            held.count -= 1
            if held.count:
                return
            try:
                _release(self.root / held.name, held.fd)
                _remove_empty(held.created)
            finally:
                with _registry:
                    del _held[self.root]
                    if not _held:
                        _restore_sigterm()
        finally:
            _threads[self.root].release()

    def _take(self) -> tuple[int, LockToken]:
        me = LockHolder(socket.gethostname(), os.getpid(), self.command,
                        datetime.now(timezone.utc).isoformat(timespec="seconds"), uuid.uuid4().hex)
        data = (json.dumps(asdict(me), indent=1) + "\n").encode("utf-8")
        token = LockToken(self.path, me.generation, me.host, me.pid)
        for _ in range(_ATTEMPTS):
            fd = _create(self.path, data)
            if fd is not None:
                return fd, token
            try:
                fd = os.open(self.path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                free = _flock(fd)
                if free and not _names(self.path, fd):
                    os.close(fd)  # released while we opened it
                    continue
                holder = _read_holder(fd)
                if free and holder is None:  # still being written (or broken): never taken over
                    os.close(fd)
                    time.sleep(_CREATING_WAIT)
                    continue
                if not free or holder.host != me.host or pid_alive(holder.pid):
                    raise ArchiveLocked(self._refusal(holder, self.path))
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                raise
            sys.stderr.write(f"warning: {self.path} was left by {holder.describe()}, which is no longer running; "
                             "taking it over\n")
            return fd, token
        raise ArchiveLocked(self._unsettled(self.path))

    def _check_others(self) -> None:
        """Refuse when a lock this one excludes is held: checked after taking ours, so of two
        writers that start together at least the later one sees the other."""
        group = _group(self.name)
        for path in sorted(self.root.glob(f"{LOCK_NAME}*")):
            if path.name == self.name or not (path.name == LOCK_NAME or path.name.startswith(f"{LOCK_NAME}.")):
                continue
            if group is not None and _group(path.name) == group:
                continue  # another member of our group
            self._check_free(path)

    def _check_free(self, path: Path) -> None:
        """Raise ArchiveLocked unless the lock file `path` is absent or left by a dead process of this host."""
        host = socket.gethostname()
        for _ in range(_ATTEMPTS):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                return
            try:
                free = _flock(fd)
                if free and not _names(path, fd):
                    return  # released while we opened it
                holder = _read_holder(fd)
            finally:
                os.close(fd)
            if free and holder is None:
                time.sleep(_CREATING_WAIT)
                continue
            if not free or holder.host != host or pid_alive(holder.pid):
                raise ArchiveLocked(self._refusal(holder, path))
            return
        raise ArchiveLocked(self._unsettled(path))

    def _refusal(self, holder: LockHolder | None, path: Path) -> str:
        who = holder.describe() if holder else "another process (its lock file is not readable yet)"
        return (f"{self.root} is being written by {who}; wait for it to finish, "
                f"or if that process is gone delete {path}")

    def _unsettled(self, path: Path) -> str:
        return (f"{self.root}: {path} is unreadable or keeps changing hands; retry, "
                f"or if no biomedica command writes this folder delete {path}")


def held_lock(root: Path) -> LockToken:
    """The token of the lock this process holds on `root` (for the workers of the run that holds it)."""
    held = _held.get(Path(root).resolve())
    if held is None:
        raise RuntimeError(f"{root}: this process holds no write lock there; take ArchiveLock first")
    return held.token


def _release(path: Path, fd: int) -> None:
    try:
        if _names(path, fd):
            path.unlink()
    finally:
        os.close(fd)  # after the unlink: the flock guards the name until it is gone


def _create(path: Path, data: bytes) -> int | None:
    """A new lock file at `path` holding `data`, flock'd; None when a lock exists."""
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    linked = False
    try:
        os.write(fd, data)
        os.fsync(fd)
        _flock(fd)
        os.link(tmp, path)
        linked = True
    except FileExistsError:
        pass
    except OSError:  # no hard links on this file system (some FUSE mounts): create the name exclusively
        os.close(fd)
        tmp.unlink(missing_ok=True)
        return _create_in_place(path, data)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    tmp.unlink(missing_ok=True)
    if not linked:
        os.close(fd)
        return None
    fsync_dir(path.parent)
    return fd


def _create_in_place(path: Path, data: bytes) -> int | None:
    """Create `path` exclusively, then flock it; None when it exists or another process got its flock first.

    Between the two steps the file is empty and unflocked; others see an unreadable free lock
    and wait (`_take`), so whoever holds the flock first owns it.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return None
    if not _flock(fd):  # a waiter is looking at our empty file: give the name up and try again
        try:
            if _names(path, fd):
                path.unlink()
        finally:
            os.close(fd)
        return None
    os.write(fd, data)
    os.fsync(fd)
    fsync_dir(path.parent)
    return fd


def _flock(fd: int) -> bool:
    """Take the flock of `fd`; False when another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # no flock on this file system: the pid check alone decides
        pass
    return True


def _names(path: Path, fd: int) -> bool:
    """Whether `path` still names the file open as `fd`."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _read_holder(fd: int) -> LockHolder | None:
    try:
        fields = json.loads(os.pread(fd, 1 << 16, 0))
        return LockHolder(str(fields["host"]), int(fields["pid"]), str(fields["command"]), str(fields["started"]))
    except (ValueError, TypeError, KeyError):
        return None


def _make_dirs(root: Path) -> list[Path]:
    """Create `root`; return the folders that did not exist, deepest first."""
    missing = []
    folder = root
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    root.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the `with`, so the lock is released


def _catch_sigterm() -> None:
    global _previous_sigterm
    if _previous_sigterm is not None or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        _previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _restore_sigterm() -> None:
    global _previous_sigterm
    if _previous_sigterm is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _previous_sigterm)
        _previous_sigterm = None


def _forget_in_child() -> None:
    """A forked child is not the writer: drop its copies of the lock (the parent's flock stays)."""
    global _registry, _threads, _previous_sigterm
    _registry = threading.Lock()
    _threads = {}
    for held in _held.values():
        os.close(held.fd)
    _held.clear()
    if _previous_sigterm is not None:
        signal.signal(signal.SIGTERM, _previous_sigterm)
        _previous_sigterm = None


os.register_at_fork(after_in_child=_forget_in_child)
