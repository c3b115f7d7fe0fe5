"""How every command refuses: one red `error:` line on stderr and exit code 2.

An interrupted writer (Ctrl-C, SIGTERM) says in one line that its output is consistent and
how to resume, and exits 130 / 143 (`resumable_on_interrupt`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.markup import escape

from biomedica.cli.console import stderr

if TYPE_CHECKING:
    from pydantic import ValidationError


def fail(problem: str | BaseException, code: int = 2) -> NoReturn:
    """Print the problem as one error line (brackets shown as typed) and exit with `code` (2: refused).

    An exception's notes (e.g. "raised while running work unit 7" from biomedica.exec) follow its message.
    """
    message = problem if isinstance(problem, str) else " ".join([str(problem), *getattr(problem, "__notes__", ())])
    stderr.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=code)


def check_output_folder(path: Path | None, option: str = "--out") -> Path | None:
    """Refuse, in one line and before any work, an output folder that is a file or lies under a file."""
    if path is None:
        return None
    for place in [path, *path.parents]:
        if place.is_dir():
            return path
        if place.exists() or place.is_symlink():  # a file, or a dangling link: mkdir would fail with a raw errno
            if place == path:
                fail(f"{option} {path} is a file, not a folder; give a folder (new or existing) instead")
            fail(f"{option} {path}: {place} is a file, not a folder; give a folder (new or existing) instead")
    return path


def output_folder_option(param: typer.CallbackParam, value: Path | None) -> Path | None:
    """Typer callback of every option naming a folder a command writes into (`--out`, `--annotations`)."""
    return check_output_folder(value, max(param.opts, key=len) if param.opts else "--out")


def validation_message(exc: ValidationError) -> str:
    """`invalid option LOC: MSG` for the first problem of a config's ValidationError."""
    from biomedica.validation import first_error

    first = first_error(exc)
    return f"invalid option {first.location or 'options'}: {first.message}{first.suffix()}"


INTERRUPTED = "interrupted: the archive is consistent; rerun the same command to resume"


class _Terminated(SystemExit):
    """SIGTERM, raised in the main thread so the command unwinds (locks released, workers stopped)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated(128 + signum)


@contextmanager
def resumable_on_interrupt(message: str = INTERRUPTED) -> Iterator[None]:
    """Turn Ctrl-C (exit 130) and SIGTERM (exit 143) inside the block into one line on stderr, no traceback."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
    try:
        yield
    except KeyboardInterrupt:
        stderr.print(escape(message))
        raise typer.Exit(code=128 + signal.SIGINT) from None
    except _Terminated as exc:
        stderr.print(escape(message))
        raise typer.Exit(code=exc.code) from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
