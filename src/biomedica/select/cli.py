"""`biomedica select`: the command function the main CLI registers (`app.command()(select)`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from biomedica.archive.split import DEFAULT_HELD_OUT_FRACTION

console = Console(stderr=True, soft_wrap=True)  # one line per error: copy-pasteable paths


def select(
    archive: Path = typer.Argument(..., help="Archive folder written by `biomedica ingest`."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the subset (manifest or shards)."),
    annotations: Path = typer.Option(None, help="Annotation folder (default: ARCHIVE/annotations)."),
    where: str = typer.Option(None, help="Extra SQL condition over the `annotated` view (DuckDB)."),
    license_group: list[str] = typer.Option([], "--license-group", help="Keep these groups (repeatable)."),
    min_year: int = typer.Option(None, help="Keep samples published in or after this year."),
    max_year: int = typer.Option(None, help="Keep samples published in or before this year."),
    journal: list[str] = typer.Option([], "--journal", help="Keep these journals (exact title, repeatable)."),
    canonical_only: bool = typer.Option(False, help="One sample per duplicate group (needs `curate dedup`)."),
    exclude_leaks: bool = typer.Option(True, help="Drop samples that match the evaluation set."),
    held_out_fraction: float = typer.Option(
        DEFAULT_HELD_OUT_FRACTION, min=0.0, max=1.0,
        help="Leave out the articles evaluation holds out (this share, as eval's archive adapter); 0 keeps them.",
    ),
    drop_flag: list[str] = typer.Option([], "--drop-flag", help="Drop samples with this quality flag ('any' for all)."),
    panel_type: list[str] = typer.Option([], "--panel-type", help="Keep single and/or multiple panel images."),
    strategy: str = typer.Option("all", help="all | concept-filtered | concept-balanced."),
    concept_level: str = typer.Option("global", help="Concepts the strategy uses: global | local."),
    concept_source: str = typer.Option("auto", help="auto (expert labels, else zero-shot) | labels | zeroshot."),
    include_concept: list[str] = typer.Option([], "--include-concept", help="Keep only these concept ids."),
    exclude_concept: list[str] = typer.Option([], "--exclude-concept", help="Drop these concept ids (concept-filtered)."),
    cap_per_concept: int = typer.Option(None, help="At most this many samples per concept (concept-balanced)."),
    min_concept_score: float = typer.Option(None, help="Zero-shot labels below this score count as unlabelled."),
    seed: int = typer.Option(0, help="Which samples a cap keeps."),
    limit: int = typer.Option(None, min=1, help="At most this many samples."),
    output: str = typer.Option("manifest", help="manifest (shard URL + key) | shards (new WebDataset shards)."),
    samples_per_shard: int = typer.Option(5000, min=1, help="Samples per new shard (--output shards)."),
    overwrite: bool = typer.Option(False, help="Replace a previous selection in --out."),
) -> None:
    """Build a training subset with SQL over the archive and its annotations."""
    from pydantic import ValidationError

    from biomedica.select.config import SelectConfig
    from biomedica.select.run import SelectionExists, run_select

    try:
        config = SelectConfig(
            archive=archive, out=out, annotations=annotations, where=where, license_groups=license_group,
            min_year=min_year, max_year=max_year, journals=journal, canonical_only=canonical_only,
            exclude_leaks=exclude_leaks, held_out_fraction=held_out_fraction, drop_flags=drop_flag,
            panel_types=panel_type, strategy=strategy,
            concept_level=concept_level, concept_source=concept_source, include_concepts=include_concept,
            exclude_concepts=exclude_concept, cap_per_concept=cap_per_concept, min_concept_score=min_concept_score,
            seed=seed, limit=limit, output=output, samples_per_shard=samples_per_shard, overwrite=overwrite,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where_ = ".".join(str(p) for p in error["loc"]) or "options"
        console.print(f"[bold red]error:[/] invalid option {where_}: {error['msg']}")
        raise typer.Exit(code=2)
    try:
        result = run_select(config)
    except (OSError, ValueError, SelectionExists) as exc:  # OSError: also ArchiveLocked (another writer)
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2)
    table = Table(title=f"biomedica select -> {result.out}")
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("selected", f"{result.selected:,} of {result.total:,}")
    for group, count in sorted(result.per_group.items()):
        table.add_row(f"  {group}", f"{count:,}")
    for concept, count in list(result.per_concept.items())[:20]:
        table.add_row(f"  concept {concept}", f"{count:,}")
    table.add_row("held-out eval samples excluded", f"{result.held_out_excluded:,}")
    for applied in result.filters:
        table.add_row("filter", applied)
    if result.shard_pattern:
        table.add_row("shards", result.shard_pattern)
    else:
        table.add_row("manifest", str(result.out / "manifest.parquet"))
    table.add_row("time", f"{result.seconds:.1f} s")
    Console().print(table)
