"""`biomedica ingest`: build (or resume, or incrementally sync) an archive from a source."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from biomedica.cli.console import stderr
from biomedica.cli.errors import fail, output_folder_option, resumable_on_interrupt, validation_message
from biomedica.cli.summary import print_summary

if TYPE_CHECKING:
    from biomedica.ingest.run import IngestSummary


def ingest(
    input: str = typer.Argument(
        None,
        help="dir: folder of JATS XML (.xml/.nxml) + images, any layout. pmc-package: mirror folder or "
        "http(s) base URL. pmc-cloud: leave out.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Archive folder to create, or to resume.", callback=output_folder_option
    ),
    source: str = typer.Option("dir", help="Source reader: dir | pmc-package | pmc-cloud."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes (ray: tasks in flight)."),
    executor: str = typer.Option("local", help="Where work units run: local | ray | array (Slurm job array)."),
    articles_per_unit: int = typer.Option(
        500, min=1, help="Input documents per work unit (one shard per license group per unit); each article of a "
        "Europe PMC bulk file is one document."
    ),
    lossy_images: bool = typer.Option(False, help="Convert TIFF/GIF/other images to JPEG instead of lossless PNG."),
    max_xml_bytes: int = typer.Option(
        None, min=1, help="dir, pmc-package: refuse a larger XML file (xml-too-large in errors/; in a Europe PMC bulk "
        "file: a larger article). Default 64 MiB."
    ),
    max_image_bytes: int = typer.Option(
        None, min=1, help="dir, pmc-package: refuse a larger image (image-too-large in errors/). Default 256 MiB."
    ),
    limit: int = typer.Option(None, min=1, help="Only the first N articles (a sample)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    file_list: str = typer.Option(None, help="pmc-package: oa_file_list.csv/.txt (path or URL)."),
    license_group: list[str] = typer.Option(
        None, help="pmc-package: keep only this license group from the file list (repeatable)."
    ),
    bucket: str = typer.Option("pmc-oa-opendata", help="pmc-cloud: bucket (or a mirror in the same layout)."),
    endpoint_url: str = typer.Option(None, help="pmc-cloud: S3 endpoint (default AWS)."),
    select: str = typer.Option("inventory", help="pmc-cloud: list articles by inventory | prefix | ids."),
    ids: Path = typer.Option(None, help="pmc-cloud: file with one PMCID per line (implies --select ids)."),
    prefix: str = typer.Option("PMC", help="pmc-cloud: key prefix for --select prefix."),
    license: list[str] = typer.Option(None, help="pmc-cloud: keep only this license_code (repeatable)."),
    include_retracted: bool = typer.Option(False, help="pmc-cloud: keep retracted articles."),
    all_versions: bool = typer.Option(False, help="pmc-cloud: every version, not only the latest."),
    incremental: bool = typer.Option(
        False, help="pmc-cloud: the old name of what every ingest does: fetch only new or changed versions."
    ),
    frozen: bool = typer.Option(
        False, help="Refuse, instead of appending new units, when the input differs from what the archive holds."
    ),
    requests_per_second: float = typer.Option(None, min=0.01, help="Network sources: request rate limit."),
    max_concurrency: int = typer.Option(16, min=1, help="Network sources: requests in flight per process."),
    retries: int = typer.Option(
        4, min=0, help="Network sources: retries of a failed or damaged read (exponential backoff)."
    ),
    cache_dir: Path = typer.Option(None, help="Network sources: on-disk cache so a re-run downloads nothing twice."),
) -> None:
    """Build (or resume) an archive from a source."""
    from pydantic import ValidationError

    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest
    from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig
    from biomedica.net import NetConfig, RetryPolicy

    try:
        net = NetConfig(
            endpoint_url=endpoint_url,
            retry=RetryPolicy(retries=retries),
            requests_per_second=requests_per_second,
            max_concurrency=max_concurrency,
            cache_dir=cache_dir,
        )
        cloud = None
        if source == "pmc-cloud":
            cloud = PmcCloudConfig(
                bucket=bucket,
                net=net,
                select="ids" if ids else select,
                ids_file=ids,
                prefix=prefix,
                licenses=tuple(license) if license else None,
                include_retracted=include_retracted,
                all_versions=all_versions,
                limit=limit,
            )
        caps = {"max_xml_bytes": max_xml_bytes, "max_image_bytes": max_image_bytes}
        config = IngestConfig(
            **{name: value for name, value in caps.items() if value is not None},
            source=source,
            input=input,
            output=out,
            workers=workers,
            executor=executor,
            articles_per_unit=articles_per_unit,
            lossy_images=lossy_images,
            limit=None if source == "pmc-cloud" else limit,
            frozen=frozen,
            progress=progress,
            file_list=file_list,
            license_groups=tuple(license_group) if license_group else None,
            net=net,
            pmc_cloud=cloud,
        )
    except ValidationError as exc:
        fail(validation_message(exc))
    if incremental and source != "pmc-cloud":
        fail("--incremental works with --source pmc-cloud (and is the default: every ingest appends new or changed "
             "documents); leave the flag out")
    try:
        with resumable_on_interrupt():
            if incremental:
                from biomedica.ingest.run import make_source
                from biomedica.ingest.sync import run_sync

                summary = run_sync(config, make_source(config), log=stderr.print).ingest
            else:
                summary = run_ingest(config)
    except (OSError, ValueError) as exc:  # settings mismatch, lock, missing input, a unit's error
        fail(exc)
    print_ingest_summary(summary)
    exit_if_unfetched(summary)


def exit_if_unfetched(summary: IngestSummary) -> None:
    """Exit 1 (after the summary) when objects could not be fetched intact: the job was partly not done.

    Documents that are themselves unusable (bad XML, a missing image) are the archive's
    content and exit 0, as before; a network read that failed on every attempt is not.
    """
    if summary.unfetched:
        message = (
            f"{len(summary.unfetched):,} document(s) have objects that could not be fetched intact after the retries "
            f"(first: {summary.unfetched[0]}); the archive lacks them: see {summary.archive}/errors/ for each one, "
            "and rerun the same command to fetch them again"
        )
        stderr.print(f"[bold red]error:[/] {escape(message)}")
        raise typer.Exit(code=1)


def print_ingest_summary(summary: IngestSummary) -> None:
    """What the build did and what the archive now holds, with throughput."""
    from biomedica.records import LICENSE_GROUPS

    rate = summary.items_run / summary.seconds if summary.seconds else 0.0
    removed = ""
    if summary.removed_items:
        shown = ", ".join(summary.removed_items[:3]) + (" ..." if len(summary.removed_items) > 3 else "")
        removed = f"{shown} (no longer in the input; their samples stay in the archive)"
    broken = "; ".join(f"unit {u}: {', '.join(p[:2])}" for u, p in summary.broken_units.items())
    print_summary("biomedica ingest", [
        ("input documents (processed now)", f"{summary.items_total:,} ({summary.items_run:,})"),
        ("compared with the archive", summary.growth_line),
        *((("removed documents", removed),) if removed else ()),
        *((("units redone (files were missing)", broken),) if broken else ()),
        ("work units (run / skipped, already done)", f"{summary.units_run} / {summary.units_skipped}"),
        ("articles", f"{summary.articles:,}"),
        *((f"samples {group}", f"{summary.samples.get(group, 0):,}") for group in LICENSE_GROUPS),
        ("samples total", f"{summary.samples_total:,}"),
        *((("samples superseded (by a newer or duplicate copy)", f"{summary.samples_superseded:,}"),
           ("samples live", f"{summary.samples_live:,}")) if summary.samples_superseded else ()),
        ("failed (errors/)", f"{summary.errors:,}"),
        *((f"  {kind}", f"{n:,}") for kind, n in summary.errors_by_kind.items()),
        ("time", f"{summary.seconds:.1f} s"),
        ("throughput", f"{rate:.1f} docs/s this run"),
        ("archive", str(summary.archive)),
    ])
