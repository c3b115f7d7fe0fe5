"""`biomedica select`: build a training subset with SQL over the archive and its annotations."""

from __future__ import annotations

from pathlib import Path

import typer

from biomedica.cli.console import stderr
from biomedica.cli.errors import fail, output_folder_option, validation_message
from biomedica.cli.summary import print_summary


def select(
    archive: Path = typer.Argument(..., help="Archive folder written by `biomedica ingest`."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder for the subset (manifest or shards).", callback=output_folder_option
    ),
    annotations: Path = typer.Option(None, help="Annotation folder (default: ARCHIVE/annotations)."),
    where: str = typer.Option(
        None,
        help="Extra SQL condition over the `annotated` view (raw DuckDB SQL, e.g. \"year >= 2020\"). It runs "
        "sandboxed: one condition, files readable only inside the archive and annotations folders.",
    ),
    keys: Path = typer.Option(
        None, "--keys",
        help="Keep only the keys of this key manifest (a select manifest.parquet, a `serve` export, or JSON Lines "
        "of {shard, key}); keys the archive lacks are reported. Combines with the other filters.",
    ),
    license_group: list[str] = typer.Option([], "--license-group", help="Keep these groups (repeatable)."),
    min_year: int = typer.Option(None, help="Keep samples published in or after this year."),
    max_year: int = typer.Option(None, help="Keep samples published in or before this year."),
    journal: list[str] = typer.Option([], "--journal", help="Keep these journals (exact title, repeatable)."),
    canonical_only: bool = typer.Option(False, help="One sample per duplicate group (needs `curate dedup`)."),
    exclude_leaks: bool = typer.Option(True, help="Drop samples that match the evaluation set."),
    exclude_held_out: bool = typer.Option(
        True, "--exclude-held-out/--include-held-out",
        help="Leave out the articles the eval held-out retrieval split holds out (default), so training never sees "
        "them; --include-held-out keeps them.",
    ),
    held_out_fraction: float = typer.Option(
        None, min=0.0, max=1.0,
        help="The share of articles evaluation holds out (default 0.05, as eval's archive adapter); 0 keeps them.",
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
    unit: str = typer.Option(
        "figure", help="figure | subfigure: one sample per panel of each selected figure, written as crops with their "
        "subcaptions (needs `biomedica curate subfigures` and --output shards).",
    ),
    samples_per_shard: int = typer.Option(5000, min=1, help="Samples per new shard (--output shards)."),
    image_size: int = typer.Option(
        None, help="Write training-ready copies resized to this many pixels (288 measured best for OpenCLIP's 224 px "
        "crops; never upscaled) instead of the stored bytes (--output shards; the json keeps the original's key, "
        "size and sha256).",
    ),
    image_format: str = typer.Option(None, help="jpeg (default) | webp: encoding of the training-ready copies."),
    quality: int = typer.Option(None, help="Encoder quality of the training-ready copies (1-100; default 85)."),
    resize_mode: str = typer.Option(
        None, help="shorter-side (default) | longer-side | center-crop: which side --image-size sets.",
    ),
    workers: int = typer.Option(None, min=1, help="Processes writing shards in parallel (default: all cores; "
                                "ray: tasks in flight)."),
    executor: str = typer.Option("local", help="Where shards are written (--output shards): local | ray (same bytes)."),
    memory: str = typer.Option("2GB", help="DuckDB's memory budget for the query (e.g. 2GB, 512MB); beyond it sorts "
                               "spill to disk in --out, so a manifest of any size streams within it."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    overwrite: bool = typer.Option(False, help="Replace a previous selection in --out."),
) -> None:
    """Build a training subset with SQL over the archive and its annotations."""
    from pydantic import ValidationError
    from tqdm import tqdm

    from biomedica.cli.errors import resumable_on_interrupt
    from biomedica.select.config import SelectConfig
    from biomedica.select.run import SelectionExists, run_select

    split = {} if held_out_fraction is None else {"held_out_fraction": held_out_fraction}
    given = {"workers": workers, "image_format": image_format, "quality": quality, "resize_mode": resize_mode}
    optional = {name: value for name, value in given.items() if value is not None}
    image_flags = [flag for flag, value in (("--image-format", image_format), ("--quality", quality),
                                            ("--resize-mode", resize_mode)) if value is not None]
    if image_size is None and image_flags:  # even at their default value: a given option is never ignored
        fail(f"{' and '.join(image_flags)} only apply to training-ready copies; add --image-size (e.g. --image-size "
             "288) or drop them")
    try:
        config = SelectConfig(
            archive=archive, out=out, annotations=annotations, where=where, keys=keys, license_groups=license_group,
            min_year=min_year, max_year=max_year, journals=journal, canonical_only=canonical_only,
            exclude_leaks=exclude_leaks, drop_flags=drop_flag, panel_types=panel_type, strategy=strategy,
            concept_level=concept_level, concept_source=concept_source, include_concepts=include_concept,
            exclude_concepts=exclude_concept, cap_per_concept=cap_per_concept, min_concept_score=min_concept_score,
            seed=seed, limit=limit, output=output, unit=unit, samples_per_shard=samples_per_shard, overwrite=overwrite,
            exclude_held_out=exclude_held_out, image_size=image_size, executor=executor, memory=memory, **split,
            **optional,
        )
    except ValidationError as exc:
        fail(validation_message(exc))
    try:
        interrupted = f"interrupted; run the same command again to finish the shards in {out} (it resumes)"
        with resumable_on_interrupt(interrupted), tqdm(desc="select", unit="sample", disable=not progress,
                                                       dynamic_ncols=True) as bar:
            def step(rows: int, total: int) -> None:
                bar.total = total
                bar.update(rows)

            result = run_select(config, progress=step)
    except (OSError, ValueError, SelectionExists) as exc:  # OSError: also ArchiveLocked (another writer)
        fail(str(exc))
    listed = []
    if result.keys_listed is not None:
        missing = len(result.keys_missing)
        shown = [key if len(key) <= 40 else key[:37] + "..." for key in result.keys_missing[:3]]
        example = f" (e.g. {', '.join(shown)})" if missing else ""
        listed = [("keys listed", f"{result.keys_listed:,}"),
                  ("  not in the archive or superseded", f"{missing:,}{example}")]
    if result.unit == "subfigure":
        selected = [
            ("figures selected", f"{result.figures_selected:,} of {result.total:,}"),
            ("  without subfigure rows (rerun `curate subfigures`)", f"{result.figures_without_panels:,}"),
            ("panels selected", f"{result.selected:,}"),
            ("panels written (crops)", f"{result.panels_written:,}"),
            ("figures failed to decode", f"{result.figures_failed:,} (errors in {result.out / 'errors'})"),
            ("panels skipped (undecodable figure or empty box)", f"{result.panels_skipped:,}"),
        ]
    else:
        selected = [("selected", f"{result.selected:,} of {result.total:,}")]
    print_summary(f"biomedica select -> {result.out}", [
        *selected,
        *listed,
        *((f"  {group}", f"{count:,}") for group, count in sorted(result.per_group.items())),
        *((f"  concept {concept}", f"{count:,}") for concept, count in list(result.per_concept.items())[:20]),
        ("held-out eval samples excluded", f"{result.held_out_excluded:,}"),
        *(("filter", applied) for applied in result.filters),
        ("shards", result.shard_pattern) if result.shard_pattern else ("manifest", str(result.out / "manifest.parquet")),
        *(_shard_rows(result, config) if result.output == "shards" else []),
        ("time", f"{result.seconds:.1f} s"),
    ])
    if result.failed and result.unit == "figure":
        stderr.print(
            f"[yellow]{result.failed:,} selected image(s) did not decode or transform, so they are not in "
            f"{result.out}[/] (errors in {result.out / 'errors'}); the other samples are written"
        )
        raise typer.Exit(code=1)
    if result.unit == "subfigure" and (result.figures_without_panels or result.figures_failed or result.failed):
        # the selection is written, but some chosen figures gave no panels: say so and exit 1, never 0
        stderr.print(
            f"[yellow]{result.figures_without_panels:,} selected figure(s) have no rows in subfigures.parquet and "
            f"{result.figures_failed:,} did not decode ({result.failed:,} panel(s) failed), so their panels are not in "
            f"{result.out}[/] (errors in {result.out / 'errors'}); run "
            f"`biomedica curate subfigures {config.archive}` (it resumes: only new shards are read), then select again "
            "with --overwrite"
        )
        raise typer.Exit(code=1)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"


def _shard_rows(result, config) -> list[tuple[str, str]]:
    """Summary rows of the shard step: shards, samples, failures, bytes in/out, throughput."""
    written = max(result.samples_written, 1)
    image = result.image
    kind = "byte copies" if image is None else (
        f"training-ready: {image.get('size')} px {image.get('mode')}, {image.get('format')} q{image.get('quality')}")
    return [
        ("images", kind),
        ("shards written / resumed", f"{result.shards_written:,} / {result.shards_resumed:,}"),
        ("samples written", f"{result.samples_written:,}"),
        ("samples failed", f"{result.failed:,}"),
        ("image bytes in -> out", (f"{_size(result.bytes_in)} -> {_size(result.bytes_out)} "
                                   f"({_size(result.bytes_in / written)} -> {_size(result.bytes_out / written)} per sample)")),
        ("shard bytes", f"{_size(result.tar_bytes)} ({_size(result.tar_bytes / written)} per sample)"),
        ("executor", f"{config.executor} ({config.workers} workers)"),
        ("samples/s (this run)", f"{result.samples_per_second:,.1f}"),
    ]
