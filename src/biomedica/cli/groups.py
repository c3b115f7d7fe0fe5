"""One way to make a command group: the Typer settings the main app and every sub-app share."""

import typer


def command_group(name: str, help: str) -> typer.Typer:
    """A Typer app that shows its help when called bare, offers no shell completion and prints
    plain tracebacks (errors users should see go through `cli.errors.fail`)."""
    return typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False)
