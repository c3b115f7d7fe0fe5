"""How every command refuses: one red `error:` line on stderr and exit code 2."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer
from rich.markup import escape

from biomedica.cli.console import stderr

if TYPE_CHECKING:
    from pydantic import ValidationError


def fail(problem: str | BaseException) -> NoReturn:
    """Print the problem as one error line (brackets shown as typed) and exit with status 2.

    An exception's notes (e.g. "raised while running work unit 7" from biomedica.exec) follow its message.
    """
    message = problem if isinstance(problem, str) else " ".join([str(problem), *getattr(problem, "__notes__", ())])
    stderr.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


def validation_message(exc: ValidationError) -> str:
    """`invalid option LOC: MSG` for the first problem of a config's ValidationError."""
    from biomedica.validation import first_error

    first = first_error(exc)
    return f"invalid option {first.location or 'options'}: {first.message}{first.suffix()}"
