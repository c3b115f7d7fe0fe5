"""`biomedica demo`: generate the embedded sample corpus, ingest it, inspect the archive."""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console

from biomedica.archive.inspect import inspect_archive, render_report
from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import IngestSummary, run_ingest


def run_demo(
    out: Path, n_articles: int = 24, workers: int = 2, seed: int = 0, console: Console | None = None
) -> IngestSummary:
    """Write `out/corpus`, build `out/archive` from it (fresh each time), and show what is inside."""
    console = console or Console(stderr=True)
    out = Path(out)
    corpus, archive = out / "corpus", out / "archive"
    for folder in (corpus, archive):
        if folder.exists():
            shutil.rmtree(folder)
    info = write_demo_corpus(corpus, DemoCorpusConfig(n_articles=n_articles, seed=seed))
    console.print(f"[bold]demo corpus[/]: {info} written to {corpus}")
    config = IngestConfig(
        input=corpus, output=archive, workers=workers, articles_per_unit=max(1, n_articles // 4)
    )
    summary = run_ingest(config, console=console)
    render_report(inspect_archive(archive), Console())
    console.print(
        f"\n[bold green]done[/]: archive at {archive.resolve()}\n"
        f"  load it:  python -c \"import webdataset as wds; "
        f"print(next(iter(wds.WebDataset('{archive.resolve()}/commercial/000000.tar', shardshuffle=False))).keys())\"\n"
        f"  inspect:  biomedica inspect {archive}",
        soft_wrap=True,
    )
    return summary
