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
console = Console(stderr=True, soft_wrap=True)  # one line per error: copy-pasteable paths


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


@app.command()
def ingest(
    input: str = typer.Argument(
        None,
        help="dir: folder of JATS XML (.xml/.nxml) + images, any layout. pmc-package: mirror folder or "
        "http(s) base URL. pmc-cloud: leave out.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Archive folder to create, or to resume."),
    source: str = typer.Option("dir", help="Source reader: dir | pmc-package | pmc-cloud."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes (ray: tasks in flight)."),
    executor: str = typer.Option("local", help="Where work units run: local | ray | array (Slurm job array)."),
    articles_per_unit: int = typer.Option(
        500, min=1, help="Input documents per work unit (one shard per license group per unit)."
    ),
    lossy_images: bool = typer.Option(False, help="Convert TIFF/GIF/other images to JPEG instead of lossless PNG."),
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
        False, help="pmc-cloud: sync: fetch only new or changed versions and append units to the archive."
    ),
    requests_per_second: float = typer.Option(None, min=0.01, help="Network sources: request rate limit."),
    max_concurrency: int = typer.Option(16, min=1, help="Network sources: requests in flight per process."),
    cache_dir: Path = typer.Option(None, help="Network sources: on-disk cache so a re-run downloads nothing twice."),
) -> None:
    """Build (or resume) an archive from a source."""
    from pydantic import ValidationError

    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import IngestSettingsMismatch, run_ingest
    from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig
    from biomedica.net import NetConfig

    try:
        net = NetConfig(
            endpoint_url=endpoint_url,
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
        config = IngestConfig(
            source=source,
            input=input,
            output=out,
            workers=workers,
            executor=executor,
            articles_per_unit=articles_per_unit,
            lossy_images=lossy_images,
            limit=None if source == "pmc-cloud" else limit,
            progress=progress,
            file_list=file_list,
            license_groups=tuple(license_group) if license_group else None,
            net=net,
            pmc_cloud=cloud,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "options"
        _fail(f"invalid option {where}: {first['msg']}")
    if incremental and source != "pmc-cloud":
        _fail("--incremental works with --source pmc-cloud (the bucket's etags tell what changed)")
    try:
        if incremental:
            from biomedica.ingest.run import make_source
            from biomedica.ingest.sync import run_sync

            run_sync(config, make_source(config), console=console)
        else:
            run_ingest(config, console=console)
    except (FileNotFoundError, IngestSettingsMismatch, ValueError, OSError) as exc:
        _fail(str(exc))


@app.command()
def enrich(
    archive: Path = typer.Argument(..., help="Archive folder written by `biomedica ingest`."),
    api_key: str = typer.Option(None, envvar="NCBI_API_KEY", help="NCBI API key: 10 requests/s instead of 3."),
    email: str = typer.Option(None, help="Contact e-mail sent to NCBI with each request."),
    batch_size: int = typer.Option(200, min=1, max=200, help="PMIDs per efetch request."),
    base_url: str = typer.Option(None, help="E-utilities base URL (default NCBI's)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Add MeSH terms, publication types and missing abstracts/DOIs from PubMed (enrichment/*.parquet)."""
    from pydantic import ValidationError

    from biomedica.enrich import EnrichConfig, enrich_archive

    options = {"archive": archive, "api_key": api_key, "email": email, "batch_size": batch_size, "progress": progress}
    if base_url:
        options["base_url"] = base_url
    try:
        config = EnrichConfig(**options)
        enrich_archive(config, console=console)
    except ValidationError as exc:
        _fail(f"invalid option: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
    except (FileNotFoundError, ValueError, OSError) as exc:
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
    from biomedica.annotate.cli import annotate
    from biomedica.curate.cli import curate_app
    from biomedica.eval.cli import app as eval_app
    from biomedica.select.cli import select
    from biomedica.train.cli import app as train_app

    app.add_typer(curate_app, name="curate", help="Dedup, quality flags, embeddings, clusters, concept labels.")
    app.command(help="Build a training subset with SQL over archive + annotations.")(select)
    app.command(help="The expert annotation web app for clusters.")(annotate)
    app.add_typer(train_app, name="train", help="Streaming continual pre-training on OpenCLIP (YAML config).")
    app.add_typer(eval_app, name="eval", help="Zero-shot classification and retrieval benchmarks.")


_register_stage_apps()

if __name__ == "__main__":  # pragma: no cover
    app()
