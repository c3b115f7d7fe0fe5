"""`biomedica inspect`: show what an archive holds (archive.inspect counts it, this draws it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from biomedica.cli.console import stdout
from biomedica.cli.errors import fail
from biomedica.cli.summary import summary_table

if TYPE_CHECKING:
    from biomedica.archive.inspect import InspectReport

_YEARS_SHOWN = 15


def inspect(
    archive: Path = typer.Argument(..., help="Archive folder written by `biomedica ingest`."),
    top: int = typer.Option(10, min=1, help="How many journals to list."),
    verify: bool = typer.Option(
        False, help="Also check every file against its unit marker (sizes, sha256); exit 1 naming what differs."
    ),
) -> None:
    """Counts per license group, year, journal; errors by kind; one sample."""
    from biomedica.archive.inspect import STATUS_NOT_ARCHIVE, inspect_archive

    if not archive.exists():
        fail(f"{archive} does not exist; give the folder an ingest wrote (`biomedica ingest ... --out DIR`)")
    try:
        report = inspect_archive(archive, top_journals=top, verify=verify)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if report.status == STATUS_NOT_ARCHIVE:  # nothing to show: a refusal, not a report
        fail(report.advice or f"{archive} is not a biomedica archive")
    render_report(report)
    if report.problems:
        raise typer.Exit(code=1)


def render_report(report: InspectReport, console: Console | None = None) -> None:
    """Print the report as rich tables (a warning first when the build is not complete)."""
    from biomedica.archive.inspect import INGEST_STAGE, STATUS_COMPLETE, STATUS_NOT_ARCHIVE

    console = console or stdout
    if report.status == STATUS_NOT_ARCHIVE:
        console.print(f"[bold red]Not an archive:[/] {escape(report.advice or '')}")
        return
    colour = "green" if report.status == STATUS_COMPLETE else "yellow"
    console.print(f"[bold]Archive[/] {escape(report.root)}  status: [bold {colour}]{report.status}[/]")
    if report.advice:
        console.print(f"[{colour}]{escape(report.advice)}[/]")

    summary_rows = [
        ("articles", f"{report.total_articles:,}"),
        ("samples", f"{report.samples_live:,}"),
        *((("samples superseded (still in the tars, skipped by readers)",
            f"{report.samples_superseded:,} ("
            + ", ".join(f"{n:,} {reason}" for reason, n in report.samples_superseded_by_reason.items()) + ")"),
           ("samples in the tars", f"{report.total_samples:,}")) if report.samples_superseded else ()),
        ("errors", f"{report.total_errors:,}"),
        ("units complete", f"{report.units_complete:,}"),
        ("units incomplete", f"{len(report.units_incomplete):,}"),
        ("bytes", f"{report.total_bytes:,}"),
        ("finalized", report.finalized_at or "no"),
    ]
    console.print(summary_table("Summary", summary_rows))

    total = report.samples_live
    console.print(_counts_table("By license group", "group", list(report.samples_by_group.items()), total))
    console.print(_counts_table("By image format", "format", list(report.samples_by_format.items()), total))
    console.print(_counts_table("By year", "year", _years_for_display(report.samples_by_year), total))
    console.print(_counts_table(f"Top {len(report.top_journals)} journals", "journal", report.top_journals, total))
    if report.errors_by_kind:
        errors = Table(title="Errors by kind", title_justify="left")
        errors.add_column("kind")
        errors.add_column("count", justify="right")
        for kind, count in report.errors_by_kind.items():
            errors.add_row(kind, f"{count:,}")
        console.print(errors)
    later_stages = {s: kinds for s, kinds in report.errors_by_stage.items() if s != INGEST_STAGE}
    if later_stages:  # ingest's errors are the "Errors by kind" table above
        by_stage = Table(title="Errors by stage", title_justify="left")
        by_stage.add_column("stage")
        by_stage.add_column("kind")
        by_stage.add_column("count", justify="right")
        for stage, kinds in later_stages.items():
            for kind, count in kinds.items():
                by_stage.add_row(stage, kind, f"{count:,}")
        console.print(by_stage)
    if report.verified and not report.problems:
        console.print("[green]verify: every file matches its unit marker (sizes and shard sha256)[/]")
    if report.problems:
        problems = Table(title="Verify problems", title_justify="left")
        problems.add_column("file")
        problems.add_column("kind")
        problems.add_column("message", overflow="fold")
        for item in report.problems:
            problems.add_row(item.id, item.kind, item.message)
        console.print(problems)
    if report.example is not None:
        ex = report.example
        sample = Table(title="Example sample", title_justify="left", show_header=False)
        sample.add_column("field")
        sample.add_column("value", overflow="fold")
        size = f"{ex.width}×{ex.height} px, " if ex.width and ex.height else ""
        sample.add_row("key", ex.key)
        sample.add_row("caption", ex.caption)
        sample.add_row("image", f"{size}{ex.image_bytes:,} bytes")
        sample.add_row("license", f"{ex.license or 'none'} ({ex.license_group})")
        sample.add_row("mentions", str(ex.mentions))
        console.print(sample)


def _counts_table(title: str, label: str, items: list[tuple[str, int]], total: int | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(label)
    table.add_column("samples", justify="right")
    if total:
        table.add_column("share", justify="right")
    for name, count in items:
        cells = [str(name), f"{count:,}"] + ([f"{100 * count / total:.1f}%"] if total else [])
        table.add_row(*cells)
    return table


def _years_for_display(by_year: dict[str, int]) -> list[tuple[str, int]]:
    """The last few years one by one and everything older in one row, so the table stays short."""
    known = [(y, n) for y, n in by_year.items() if y != "unknown"]
    rows = known
    if len(known) > _YEARS_SHOWN:
        older, rows = known[: -_YEARS_SHOWN], known[-_YEARS_SHOWN:]
        rows = [(f"{older[0][0]}–{older[-1][0]}", sum(n for _, n in older))] + rows
    if "unknown" in by_year:
        rows = rows + [("unknown", by_year["unknown"])]
    return rows

