"""`biomedica index`: build or update the search index of an archive (keyword + vectors + filters)."""

from __future__ import annotations

from pathlib import Path

import typer

from biomedica.cli.errors import fail, output_folder_option, validation_message
from biomedica.cli.summary import print_summary


def index(
    archive: Path = typer.Argument(..., help="Archive folder written by `biomedica ingest`."),
    index_dir: Path = typer.Option(
        None, "--index", help="Index folder (default: ARCHIVE/index).", callback=output_folder_option
    ),
    annotations: Path = typer.Option(None, help="Annotation folder (default: ARCHIVE/annotations)."),
    embeddings: list[str] = typer.Option(
        [], "--embeddings", help="Embedding folder name under annotations/embeddings/ (repeatable; default: all)."
    ),
    exact_max: int = typer.Option(20_000, min=1, help="Exact vector search up to this many vectors, IVF above."),
    nlist: int = typer.Option(None, min=1, help="IVF lists (default: automatic)."),
    nprobe: int = typer.Option(32, min=1, help="IVF lists searched per query."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Build or update the search index: new units only, superseded copies removed, filters refreshed."""
    import faiss  # noqa: F401  biomedica[index], checked first: a missing one is one line naming it (cli.groups)
    import tantivy  # noqa: F401
    from pydantic import ValidationError
    from tqdm import tqdm

    from biomedica.index.build import NothingToIndex, build_index
    from biomedica.index.config import IndexConfig

    try:
        config = IndexConfig(archive=archive, index_dir=index_dir, annotations=annotations, embeddings=embeddings,
                             exact_max=exact_max, nlist=nlist, nprobe=nprobe)
    except ValidationError as exc:
        fail(validation_message(exc))
    bars: list = []

    def advance(done: int, total: int) -> None:
        if not bars:  # made on the first docs: a refusal prints its one line alone
            bars.append(tqdm(desc="index", unit="doc", total=total, disable=not progress))
        bars[0].update(done)

    try:
        result = build_index(config, progress=advance)
    except (NothingToIndex, OSError, ValueError) as exc:  # OSError: also ArchiveLocked (another index run)
        fail(str(exc))
    finally:
        for bar in bars:
            bar.close()
    rows = [
        ("units new / skipped", f"{result.units_new:,} / {result.units_skipped:,}"),
        ("docs added", f"{result.docs_added:,}"),
        ("docs removed (superseded)", f"{result.docs_removed:,}"),
        *([("docs of an interrupted run redone", f"{result.docs_repaired:,}")] if result.docs_repaired else []),
        ("docs live / total", f"{result.docs_live:,} / {result.docs_total:,}"),
        ("filters", "refreshed" if result.filters_refreshed else "unchanged"),
    ]
    for v in result.vectors:
        recall = f", recall@10 {v.recall_at_10:.3f}" if v.recall_at_10 is not None else ""
        retrained = ", retrained" if v.retrained else ""  # centroids retrained: the count passed 8x their training count
        rows.append((f"vectors {v.name} {v.kind}", f"+{v.added:,} = {v.total:,} ({v.mode}{retrained}{recall})"))
    rows += [("note", note) for note in result.notes]
    rows += [("time", f"{result.seconds:.1f} s"), ("throughput", f"{result.docs_per_second:,.0f} docs/s")]
    print_summary(f"biomedica index -> {result.index_dir}", rows)
