"""`biomedica annotate`: serve the annotation app, or export the majority labels."""

from __future__ import annotations

from pathlib import Path

import typer

from biomedica.cli.console import stderr, stdout
from biomedica.cli.errors import fail, output_folder_option


def annotate(
    archive: Path = typer.Argument(..., help="Archive folder (with annotations/clusters.parquet from `curate cluster`)."),
    annotations: Path = typer.Option(
        None, help="Annotation folder (default: ARCHIVE/annotations).", callback=output_folder_option
    ),
    database: Path = typer.Option(None, help="SQLite file of the labels (default: ANNOTATIONS/labels.sqlite)."),
    taxonomy: Path = typer.Option(None, help="Taxonomy YAML (default: the shipped biomedica taxonomy)."),
    samples_per_cluster: int = typer.Option(24, min=1, max=200, help="Images shown per cluster."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 to share on a network)."),
    port: int = typer.Option(8765, help="Port."),
    allow_host: list[str] = typer.Option(
        [], "--allow-host",
        help="Also accept this name in the Host header (e.g. this machine's name when shared; repeatable).",
    ),
    export: bool = typer.Option(False, "--export", help="Do not serve: write the majority labels and exit."),
) -> None:
    """Label clusters in the browser: several annotators, majority vote, kappa, export."""
    from biomedica.annotate.app import AnnotateConfig

    config = AnnotateConfig(archive=archive, annotations=annotations, database=database, taxonomy=taxonomy,
                            samples_per_cluster=samples_per_cluster, host=host, port=port,
                            allowed_hosts=allow_host)
    if export:
        from biomedica.annotate.app import export_labels

        try:
            result = export_labels(config)
        except OSError as exc:  # no labels yet (FileNotFoundError), another writer (ArchiveLocked)
            fail(str(exc))
        report = result.report
        stdout.print(
            f"exported {report.clusters_labelled} clusters ({result.labels.num_rows} samples) from {len(report.annotators)} "
            f"annotators; Fleiss' kappa category {report.fleiss_category}, panel type {report.fleiss_panel_type}"
        )
        return
    try:  # without fastapi/uvicorn: one line naming biomedica[annotate] (cli.groups)
        import uvicorn

        from biomedica.annotate.app import create_app

        app = create_app(config)
    except FileNotFoundError as exc:
        fail(str(exc))
    stderr.print(f"annotation app on http://{host}:{port}/  (labels in {config.database_path()})")
    uvicorn.run(app, host=host, port=port, log_level="warning")
