"""`biomedica publish`: the archive as a hub dataset repository (a folder, or uploaded) with its dataset card."""

from __future__ import annotations

from pathlib import Path

import typer

from biomedica.cli.errors import fail, validation_message
from biomedica.cli.summary import print_summary


def publish(
    archive: Path = typer.Argument(..., help="Archive folder written by `biomedica ingest`."),
    to: str = typer.Option(..., "--to", help="A folder (/abs, ./rel, or an existing one), or a hub dataset "
                           "repository ORG/NAME or hf://datasets/ORG/NAME (uploaded with huggingface_hub)."),
    license_group: list[str] = typer.Option(
        [], "--license-group", help="Licence group to publish (repeatable or comma-separated; default: commercial "
        "and noncommercial; `other` only when named)."),
    embeddings: list[str] = typer.Option(
        [], "--embeddings", help="Embedding folder under annotations/embeddings/ to publish as config embeddings-NAME."),
    annotations: bool = typer.Option(True, help="Publish the annotation tables as configs annotations-TABLE."),
    annotations_dir: Path = typer.Option(None, help="Annotation folder (default: ARCHIVE/annotations)."),
    private: bool = typer.Option(False, help="Create the hub repository private."),
    revision: str = typer.Option(None, help="Hub branch to commit to (created when missing; default main)."),
    staging: Path = typer.Option(None, help="Folder laid out before an upload (default: beside the archive)."),
    dry_run: bool = typer.Option(False, help="Say what would be written or uploaded; write nothing."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Lay the archive out as a dataset repository (shards per licence group, indexes, annotations,
    embeddings, a README.md dataset card declaring every config and feature); upload it for ORG/NAME."""
    from pydantic import ValidationError
    from tqdm import tqdm

    from biomedica.publish.config import PublishConfig
    from biomedica.publish.layout import PublishError
    from biomedica.publish.run import run_publish

    groups = [g.strip() for value in license_group for g in value.split(",") if g.strip()]
    try:
        config = PublishConfig(archive=archive, to=to, license_groups=tuple(groups) or None, embeddings=tuple(embeddings),
                               annotations=annotations, annotations_dir=annotations_dir, private=private,
                               revision=revision, staging=staging, dry_run=dry_run)
    except ValidationError as exc:
        fail(validation_message(exc))
    bar = tqdm(desc="publish", unit="B", unit_scale=True, disable=not progress, leave=False)
    try:
        result = run_publish(config, progress=bar.update, total=lambda n: setattr(bar, "total", n))
    except (PublishError, OSError, ValueError) as exc:  # ValueError: also ManifestError
        fail(str(exc))
    finally:
        bar.close()
    laid = result.layout
    verb = "would place" if dry_run else "placed"
    rows = [
        ("to", result.target + (f" (laid out in {laid.folder})" if result.uploaded or (dry_run and result.token) else "")),
        ("licence groups", ", ".join(laid.groups)),
        ("samples (in the tars)", f"{laid.samples:,}"),
        ("configs", ", ".join(c.name for c in laid.configs)),
        (f"files {verb} / unchanged", f"{len(laid.files) - laid.unchanged:,} / {laid.unchanged:,}"
         + (f" (hard links {laid.linked:,}, copies {laid.copied:,}, written {laid.written:,})" if not dry_run else "")),
        ("bytes", f"{laid.bytes_total:,} ({laid.bytes_placed:,} {verb})"),
    ]
    if result.token is not None:
        rows.append(("token", f"from {result.token.source}" if result.token.value else "no token"))
    if result.uploaded:
        rows.append(("uploaded", (f"{result.uploaded.files:,} files to {result.uploaded.revision}: "
                                 f"{result.uploaded.commit_url or result.uploaded.repo_url}")))
    rows += [("note", note) for note in laid.notes]
    rows += [("time", f"{result.seconds:.1f} s"), ("throughput", f"{result.bytes_per_second / 1e6:,.1f} MB/s")]
    print_summary(f"biomedica publish {archive} -> {result.target}", rows)
