"""The end-of-command summary every stage gets: a two-column table of what and how much."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from biomedica.cli.console import stdout


def summary_table(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    """A headerless (what, value) table, values right-aligned, title on the left."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    for what, value in rows:
        table.add_row(what, value)
    return table


def print_summary(title: str, rows: Iterable[tuple[str, str]]) -> None:
    """Print the summary table on stdout."""
    stdout.print(summary_table(title, rows))
