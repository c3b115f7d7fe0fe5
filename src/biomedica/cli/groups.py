"""One way to make a command group: the Typer settings the main app and every sub-app share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

from biomedica.cli.errors import fail

# Commands that need one extra whole: a missing package of it names this extra (biomedica.lazy.EXTRA_PACKAGES).
COMMAND_EXTRAS = {"index": "index", "serve": "serve", "publish": "publish"}


class CommandGroup(typer.Typer):
    """A Typer app whose commands turn a missing optional package into one `error:` line (exit 2)."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
            name = (args[0] if args else kwargs.get("name")) or function.__name__.replace("_", "-")
            path = name if self.info.name == "biomedica" else f"{self.info.name} {name}"
            return register(one_line_import_errors(function, f"`biomedica {path}`", COMMAND_EXTRAS.get(path)))

        return decorate


def one_line_import_errors(function: Callable[..., Any], command: str, extra: str | None = None
                           ) -> Callable[..., Any]:
    """Run a command; an ImportError of an optional package (open_clip, boto3, ray, ...) names its extra
    (`extra`, the command's own, for the packages that extra brings)."""

    @functools.wraps(function)  # typer reads the options from the wrapped signature
    def run(*args: Any, **kwargs: Any) -> Any:
        from biomedica.lazy import missing_extra_message

        try:
            return function(*args, **kwargs)
        except ImportError as exc:
            fail(missing_extra_message(exc, command, extra) or f"{command}: a Python package is missing ({exc}); reinstall biomedica")

    return run


def command_group(name: str, help: str) -> typer.Typer:
    """A Typer app that shows its help when called bare, offers no shell completion and prints
    plain tracebacks (errors users should see go through `cli.errors.fail`). Help is click's plain
    layout: option names are never cut and lines fit the terminal (80 columns included)."""
    return CommandGroup(name=name, help=help, no_args_is_help=True, add_completion=False,
                        pretty_exceptions_enable=False, rich_markup_mode=None)
