"""`biomedica serve`: the search page and API over an archive's index (and the annotation app)."""

from __future__ import annotations

from pathlib import Path

import typer

from biomedica.cli.console import stderr
from biomedica.cli.errors import fail


def serve(
    archive: Path = typer.Argument(..., help="Archive folder (indexed with `biomedica index ARCHIVE`)."),
    index: Path = typer.Option(None, "--index", help="Index folder (default: ARCHIVE/index)."),
    annotations: Path = typer.Option(None, help="Annotation folder (default: ARCHIVE/annotations)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 to share on a network)."),
    port: int = typer.Option(8000, help="Port."),
    allow_host: list[str] = typer.Option(
        [], "--allow-host",
        help="Also accept this name in the Host header (e.g. this machine's name when shared; repeatable).",
    ),
    rrf_k: int = typer.Option(60, "--rrf-k", min=1, help="Reciprocal rank fusion constant of hybrid search."),
    embedding: str = typer.Option(None, help="Embedding name to search (default: the index's first)."),
    model: str = typer.Option(None, help="Query model spec (default: the one the embeddings record)."),
    device: str = typer.Option("cpu", help="Device of the query model (cpu, cuda, auto)."),
) -> None:
    """Search the archive in the browser: keyword, semantic and hybrid search, figure view, export."""
    require_serve_packages()
    from pydantic import ValidationError

    from biomedica.archive.reader import is_archive, shard_paths
    from biomedica.cli.errors import validation_message
    from biomedica.serve.config import ServeConfig

    if not is_archive(archive) or not shard_paths(archive):
        fail(f"{archive}: no archive with samples here; build one first (`biomedica ingest SOURCE --out {archive}`, "
             "or `biomedica demo`), then `biomedica index` it", code=1)
    try:
        config = ServeConfig(archive=archive, index=index, annotations=annotations, host=host, port=port,
                             allowed_hosts=allow_host, rrf_k=rrf_k, embedding=embedding, model=model, device=device)
    except ValidationError as exc:
        fail(validation_message(exc))
    import uvicorn

    try:
        app, annotate = compose_app(config)
    except FileNotFoundError as exc:  # no index (search.reader.IndexMissing), unknown --embedding
        fail(str(exc).replace("biomedica index ARCHIVE", f"biomedica index {archive}"), code=1)
    engine = app.state.engine
    unindexed = int(getattr(engine.index, "unindexed_units", 0) or 0)
    if unindexed:
        stderr.print(f"warning: {unindexed} unit(s) of {archive} are not indexed yet and will not be found; "
                     f"run `biomedica index {archive}` to add them")
    if engine.index.annotations_changed:
        stderr.print(f"warning: the annotation tables changed since {archive} was indexed (a later `biomedica curate`); "
                     f"filters answer from the old ones until you run `biomedica index {archive}`")
    annotate = f", annotation at http://{host}:{port}/annotate/" if annotate else ""
    figures = engine.figures()
    vectors = f"embeddings {engine.embedding}" if engine.embedding else "keyword only (no embeddings indexed)"
    stderr.print(f"search on http://{host}:{port}/  ({figures} figures, {vectors}{annotate}; Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def require_serve_packages() -> None:
    """Import what biomedica[serve] brings, first: a missing one is one line naming that extra (cli.groups),
    not a failure halfway (FastAPI reports a missing python-multipart as a RuntimeError, not an ImportError)."""
    import faiss  # noqa: F401
    import fastapi  # noqa: F401
    import tantivy  # noqa: F401
    import uvicorn  # noqa: F401

    try:
        import python_multipart  # noqa: F401
    except ImportError:
        try:
            import multipart  # noqa: F401  (python-multipart before 0.0.13)
        except ImportError:
            raise ImportError("python-multipart is not installed", name="python_multipart") from None


def compose_app(config):
    """(the search app, whether annotate is mounted): serve's app with the annotation app under /annotate
    when annotations/clusters.parquet exists, sharing one guard and one image responder.

    Here because only the cli may import two stages (serve and annotate).
    """
    from biomedica.serve.app import create_app, mount_annotate

    app = create_app(config)
    if not (config.annotations_dir() / "clusters.parquet").is_file():
        return app, False
    from biomedica.annotate.app import AnnotateConfig
    from biomedica.annotate.app import create_app as create_annotate_app

    annotate_app = create_annotate_app(
        AnnotateConfig(archive=config.archive, annotations=config.annotations_dir(), host=config.host,
                       port=config.port, allowed_hosts=config.allowed_hosts),
        guard=False, images=app.state.images)
    mount_annotate(app, annotate_app)
    return app, True
