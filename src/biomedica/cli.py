"""The `biomedica` command line: one entry point, one subcommand per stage.

Each subcommand builds a typed config and calls the library function of its stage; heavy
imports happen inside the command so `biomedica --help` stays fast and torch-free.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(
    name="biomedica",
    help="Turn PubMed Central Open Access into a streaming biomedical image-caption archive.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


@app.command()
def ingest(
    input: Path = typer.Argument(..., help="Folder of JATS XML files (.xml/.nxml) and figure images, any layout."),
    out: Path = typer.Option(..., "--out", "-o", help="Archive folder to create, or to resume."),
    source: str = typer.Option("dir", help="Source reader: dir."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes."),
    executor: str = typer.Option("local", help="Where work units run: local (process pool)."),
    articles_per_unit: int = typer.Option(
        500, min=1, help="Input files per work unit (one shard per license group per unit)."
    ),
    lossy_images: bool = typer.Option(False, help="Convert TIFF/GIF/other images to JPEG instead of lossless PNG."),
    limit: int = typer.Option(None, min=1, help="Only the first N input files (a sample)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Build (or resume) an archive from a source."""
    from pydantic import ValidationError

    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import IngestSettingsMismatch, run_ingest

    try:
        config = IngestConfig(
            source=source,
            input=input,
            output=out,
            workers=workers,
            executor=executor,
            articles_per_unit=articles_per_unit,
            lossy_images=lossy_images,
            limit=limit,
            progress=progress,
        )
    except ValidationError as exc:
        _fail(f"invalid option: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
    try:
        run_ingest(config, console=console)
    except (FileNotFoundError, IngestSettingsMismatch, ValueError) as exc:
        _fail(str(exc))


@app.command()
def inspect(
    archive: Path = typer.Argument(..., help="Archive folder written by `biomedica ingest`."),
    top: int = typer.Option(10, min=1, help="How many journals to list."),
    verify: bool = typer.Option(False, help="Also check every file against its unit marker (sizes, sha256)."),
) -> None:
    """Counts per license group, year, journal; errors by kind; one sample."""
    from biomedica.archive.inspect import inspect_archive, render_report

    try:
        report = inspect_archive(archive, top_journals=top, verify=verify)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    render_report(report, Console())


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", "-o", help="Where the demo corpus and archive go."),
    articles: int = typer.Option(24, min=1, help="Number of generated articles."),
    workers: int = typer.Option(2, "--workers", "-w", min=1),
    seed: int = typer.Option(0),
) -> None:
    """Generate a small PMC-like corpus from real medical images, ingest it, and inspect it."""
    from biomedica.demo.run import run_demo

    run_demo(out, n_articles=articles, workers=workers, seed=seed, console=console)


def _register_stage_apps() -> None:
    """Stage sub-apps live beside their stage; their heavy imports stay inside their commands."""
    from biomedica.eval.cli import app as eval_app

    app.add_typer(eval_app, name="eval", help="Zero-shot classification and retrieval benchmarks.")


_register_stage_apps()

if __name__ == "__main__":  # pragma: no cover
    app()
