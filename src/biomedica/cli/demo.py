"""`biomedica demo`: generate the embedded sample corpus, ingest it, inspect the archive.

A rerun deletes nothing it did not create in that run: the corpus is generated beside the
old one and only the demo's own files are rewritten in place (byte-identical when nothing
changed), the archive grows like any other ingest, and annotations, labels or any other file
a user put under `--out` stay as they are. Other demo settings than the folder was built with
are refused in one line.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from biomedica.cli.console import stderr
from biomedica.cli.errors import fail, output_folder_option

if TYPE_CHECKING:
    from biomedica.ingest.run import IngestSummary

DEMO_SETTINGS = "demo-settings.json"


def demo(
    out: Path = typer.Option(
        Path("demo-out"), "--out", "-o", help="Where the demo corpus and archive go.", callback=output_folder_option
    ),
    articles: int = typer.Option(24, min=1, help="Number of generated articles."),
    workers: int = typer.Option(2, "--workers", "-w", min=1),
    seed: int = typer.Option(0),
) -> None:
    """Generate a small PMC-like corpus from real medical images, ingest it, and inspect it."""
    from biomedica.io.settings import SettingsMismatch

    try:
        run_demo(out, n_articles=articles, workers=workers, seed=seed)
    except SettingsMismatch as exc:
        fail(exc)
    except OSError as exc:  # another writer holds the archive (ArchiveLocked), a disk error
        fail(exc)


def run_demo(out: Path, n_articles: int = 24, workers: int = 2, seed: int = 0) -> IngestSummary:
    """Write `out/corpus`, ingest it into `out/archive` (growing or resuming it), show what is inside.

    Raises SettingsMismatch when `out` holds a demo of other settings (or an archive built otherwise).
    """
    from biomedica.archive.inspect import inspect_archive
    from biomedica.cli.ingest import print_ingest_summary
    from biomedica.cli.inspect import render_report
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest
    from biomedica.io.lock import ArchiveLock
    from biomedica.io.settings import check_settings

    out = Path(out)
    corpus, archive = out / "corpus", out / "archive"
    fix = f"use --out elsewhere, or rerun with the options {out} was built with (nothing was changed)"
    config = IngestConfig(input=corpus, output=archive, workers=workers, articles_per_unit=max(1, n_articles // 4))
    with ArchiveLock(archive, "biomedica demo"):  # a demo (or any writer) still busy there refuses this one
        _check_archive_settings(archive, config, fix)
        check_settings(out / DEMO_SETTINGS, {"articles": n_articles, "seed": seed}, f"the demo in {out}", fix)
        info = _write_corpus(corpus, n_articles, seed)
        stderr.print(f"[bold]demo corpus[/]: {info} written to {corpus}")
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


def _check_archive_settings(archive: Path, config, fix: str) -> None:
    """Refuse before writing anything when the archive there was built with other unit/image settings."""
    from biomedica.ingest.run import SETTINGS_FILE
    from biomedica.io.settings import check_settings

    if (archive / SETTINGS_FILE).is_file():
        check_settings(archive / SETTINGS_FILE, config.archive_settings(), str(archive), fix, record=False)


def _write_corpus(corpus: Path, n_articles: int, seed: int):
    """Generate the corpus in a new folder beside `corpus`, then move each file whose bytes differ into place.

    Files under `corpus` the generator does not write are left alone; the scratch folder is this run's own.
    """
    from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus

    corpus.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".corpus-", dir=corpus.parent))
    try:
        info = write_demo_corpus(scratch, DemoCorpusConfig(n_articles=n_articles, seed=seed))
        for new in sorted(p for p in scratch.rglob("*") if p.is_file()):
            target = corpus / new.relative_to(scratch)
            if target.is_file() and not target.is_symlink() and _same_bytes(new, target):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(new, target)  # the demo's own file, regenerated
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dataclasses.replace(info, out_dir=corpus)


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return a.read_bytes() == b.read_bytes()
