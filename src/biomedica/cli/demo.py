"""`biomedica demo`: generate the embedded sample corpus, ingest it, inspect the archive."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from biomedica.cli.console import stderr
from biomedica.cli.errors import output_folder_option

if TYPE_CHECKING:
    from biomedica.ingest.run import IngestSummary


def demo(
    out: Path = typer.Option(
        Path("demo-out"), "--out", "-o", help="Where the demo corpus and archive go.", callback=output_folder_option
    ),
    articles: int = typer.Option(24, min=1, help="Number of generated articles."),
    workers: int = typer.Option(2, "--workers", "-w", min=1),
    seed: int = typer.Option(0),
) -> None:
    """Generate a small PMC-like corpus from real medical images, ingest it, and inspect it."""
    run_demo(out, n_articles=articles, workers=workers, seed=seed)


def run_demo(out: Path, n_articles: int = 24, workers: int = 2, seed: int = 0) -> IngestSummary:
    """Write `out/corpus`, build `out/archive` from it (fresh each time), and show what is inside."""
    from biomedica.archive.inspect import inspect_archive
    from biomedica.cli.ingest import print_ingest_summary
    from biomedica.cli.inspect import render_report
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest
    from biomedica.io.lock import LOCK_NAME, ArchiveLock
    from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus

    out = Path(out)
    corpus, archive = out / "corpus", out / "archive"
    with ArchiveLock(archive, "biomedica demo"):  # a demo (or any writer) still busy there refuses this one
        for path in [corpus] + [p for p in archive.iterdir() if p.name != LOCK_NAME]:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        info = write_demo_corpus(corpus, DemoCorpusConfig(n_articles=n_articles, seed=seed))
        stderr.print(f"[bold]demo corpus[/]: {info} written to {corpus}")
        config = IngestConfig(
            input=corpus, output=archive, workers=workers, articles_per_unit=max(1, n_articles // 4)
        )
        summary = run_ingest(config)  # takes the same lock again (re-entrant)
    print_ingest_summary(summary)
    render_report(inspect_archive(archive))
    stderr.print(
        f"\n[bold green]done[/]: archive at {archive.resolve()}\n"
        f"  load it:  python -c \"import webdataset as wds; "
        f"print(next(iter(wds.WebDataset('{archive.resolve()}/commercial/000000.tar', shardshuffle=False))).keys())\"\n"
        f"  inspect:  biomedica inspect {archive}",
    )
    return summary
