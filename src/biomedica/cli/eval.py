"""`biomedica eval` commands: run tasks for a model, report, list tasks, build the offline benchmark.

Usage:
  biomedica eval make-offline-benchmark --out eval-data/offline-modality
  biomedica eval run --model tiny-random --tasks offline-modality --data-dir eval-data --out results/
  biomedica eval run --model ViT-B-16:/ckpt/epoch_10.pt --tasks all --out results/
  biomedica eval run --model hf-hub:ORG/NAME --tasks pcam --prompts clip_benchmark --format clip_benchmark
  biomedica eval report results/ --out results/report
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from biomedica.cli.console import stderr, stdout
from biomedica.cli.errors import fail, output_folder_option, validation_message
from biomedica.cli.groups import command_group

app = command_group(
    "eval", "Evaluate CLIP-style models on biomedical zero-shot classification and retrieval tasks."
)


@app.command()
def run(
    model: str = typer.Option(..., "--model", "-m", help="tiny-random, ARCH:TAG, ARCH:/path/ckpt.pt or hf-hub:ORG/NAME."),
    tasks: str = typer.Option("all", "--tasks", "-t", help="all, task names, domain:NAME, or YAML paths (comma list)."),
    out: Path = typer.Option(
        Path("results"), "--out", "-o", help="Folder for <model spec>/<task>.json results.", callback=output_folder_option
    ),
    data_dir: Path = typer.Option(None, help="Where task data roots live (default $BIOMEDICA_EVAL_DATA or ./eval-data)."),
    task_dir: list[Path] = typer.Option([], help="Extra folder(s) of task YAML files."),
    cache_dir: Path = typer.Option(None, help="Embedding cache (default <out>/.embedding-cache)."),
    no_cache: bool = typer.Option(False, help="Do not read or write cached embeddings."),
    batch_size: int = typer.Option(64, min=1),
    loader_threads: int = typer.Option(2, min=1, help="Threads decoding and preprocessing images."),
    n_boot: int = typer.Option(1000, min=0, help="Bootstrap resamples for the 95% CIs (0: none)."),
    linear_probe: bool = typer.Option(False, help="Also fit k-shot logistic-regression probes on frozen features."),
    shots: str = typer.Option("1,2,4,8,16,full", help="Linear-probe shots per class (comma list; full = all)."),
    probe_seeds: int = typer.Option(5, min=1, help="Linear-probe draws per k (mean and 95% CI over draws)."),
    ties: str = typer.Option("pessimistic", help="Top-k/retrieval ties: pessimistic, clip_benchmark, optimistic."),
    max_images: int = typer.Option(None, min=1, help="Seeded random subset per task (quick looks)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    precision: str = typer.Option("auto", help="auto (bf16/fp16 autocast on GPU), fp32, bf16, fp16."),
    seed: int = typer.Option(0),
    prompts: str = typer.Option(
        "biomedica", help="Zero-shot prompts: biomedica (the task file's), clip_benchmark (CLIP_benchmark 1.6.2's "
        "class names/templates where it has the dataset), biomedclip (BiomedCLIP's released template)."),
    result_format: str = typer.Option(
        "biomedica", "--format", help="biomedica, or clip_benchmark: also write CLIP_benchmark's JSON per task "
        "(<out>/<model>/clip_benchmark/)."),
    progress: bool = typer.Option(True),
) -> None:
    """Evaluate one model on tasks; tasks whose data is missing are skipped with one line."""
    from pydantic import ValidationError

    from biomedica.eval.runner import EvalConfig, run_evaluation
    from biomedica.eval.tasks import TaskFileError, default_data_dir, resolve_tasks
    from biomedica.models import ModelLoadError

    try:
        selected = resolve_tasks(tasks, task_dir)
        config = EvalConfig(
            out_dir=out, data_dir=data_dir or default_data_dir(), cache_dir=cache_dir, use_cache=not no_cache,
            batch_size=batch_size, loader_threads=loader_threads, n_boot=n_boot, linear_probe=linear_probe, max_images=max_images,
            probe_shots=[s.strip() for s in shots.split(",") if s.strip()],
            probe_seeds=probe_seeds, ties=ties,
            device=device, precision=precision, seed=seed, progress=progress,
            prompts=prompts, result_format=result_format,
        )
    except TaskFileError as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(validation_message(exc))
    try:
        outcomes = run_evaluation(model, selected, config, log=lambda line: stderr.print(line, markup=False))
    except ModelLoadError as exc:
        fail(str(exc))
    counts = {status: sum(o.status == status for o in outcomes) for status in ("ok", "skipped", "failed")}
    stderr.print(
        f"{counts['ok']} task(s) evaluated, {counts['skipped']} skipped (data missing), {counts['failed']} failed; "
        f"results in {out}"
    )
    if counts["failed"]:
        raise typer.Exit(code=1)


@app.command()
def report(
    results: list[Path] = typer.Argument(..., help="Result folders or JSON files (several models may be mixed)."),
    out: Path = typer.Option(
        Path("report"), "--out", "-o", help="Folder for report.md and plots/<domain>.png.", callback=output_folder_option
    ),
    plots: bool = typer.Option(True, help="Write one bar plot PNG per domain."),
) -> None:
    """Compare models: Markdown table with CIs, domain and overall means, bar plots per domain."""
    from biomedica.eval.report import write_report

    try:
        files = write_report(results, out, plots=plots)
    except FileNotFoundError as exc:
        fail(str(exc))
    typer.echo(files.markdown.read_text(encoding="utf-8"))
    stderr.print(f"wrote {files.markdown} and {len(files.plots)} plot(s) in {out / 'plots'}")


@app.command("list-tasks")
def list_tasks(
    data_dir: Path = typer.Option(None, help="Data dir to check for each task's data."),
    task_dir: list[Path] = typer.Option([], help="Extra folder(s) of task YAML files."),
) -> None:
    """The shipped tasks: domain, kind, whether their data is present, and where to get it."""
    from biomedica.eval.tasks import TaskFileError, default_data_dir, resolve_tasks

    try:
        selected = resolve_tasks("all", task_dir)
    except TaskFileError as exc:
        fail(str(exc))
    base = data_dir or default_data_dir()
    table = Table(title=f"evaluation tasks (data dir: {base})")
    for column in ("task", "domain", "kind", "data"):
        table.add_column(column, no_wrap=True)
    table.add_column("metric", overflow="fold")
    table.add_column("get it", overflow="fold")
    for task in sorted(selected, key=lambda t: (t.domain, t.name)):
        present = task.present_layout(base) is not None
        table.add_row(
            task.name, task.domain, task.kind, "[green]yes[/]" if present else "missing", task.metric or "",
            task.data.source if task.data else "",
        )
    stdout.print(table)


@app.command("make-keys")
def make_keys(
    task: str = typer.Argument(..., help="chexpert-5x200 or rsna-pneumonia."),
    source: Path = typer.Option(..., "--from", help="The publisher's label file (CheXpert train.csv; stage_2_train_labels.csv)."),
    out: Path = typer.Option(..., "--out", "-o", help="Key list to write (the task's data: text names where)."),
    seed: int = typer.Option(0, help="Draw seed (the shipped tasks use 0)."),
    overwrite: bool = typer.Option(False, help="Replace an existing, different key list at --out."),
) -> None:
    """Draw the exact image list a task evaluates from the publisher's own file (rules: biomedica.eval.keys)."""
    import time

    from biomedica.eval.keys import KeyDrawError, write_keys

    started = time.perf_counter()
    try:
        count, digest = write_keys(task, source, out, seed, overwrite)
    except KeyDrawError as exc:
        fail(str(exc))
    stderr.print(f"wrote {count} ids to {out} (sha256 {digest[:16]}, {time.perf_counter() - started:.1f} s)")


@app.command("make-offline-benchmark")
def make_offline_benchmark(
    out: Path = typer.Option(
        Path("eval-data/offline-modality"), "--out", "-o", help="Folder to create.", callback=output_folder_option
    ),
    images_per_class: int = typer.Option(40, min=2),
    image_size: int = typer.Option(96, min=16),
    seed: int = typer.Option(0),
) -> None:
    """Write the offline modality benchmark (pydicom-data + scikit-image images) and its task.yaml."""
    from biomedica.eval.offline_benchmark import OfflineBenchmarkConfig, build_offline_benchmark

    try:
        built = build_offline_benchmark(
            out, OfflineBenchmarkConfig(images_per_class=images_per_class, image_size=image_size, seed=seed)
        )
    except (FileExistsError, RuntimeError) as exc:
        fail(str(exc))
    summary = ", ".join(f"{label} {n} ({built.sources[label]} sources)" for label, n in built.counts.items())
    stderr.print(f"wrote {sum(built.counts.values())} images: {summary}")
    stderr.print(f"task file: {built.task_file}  (run: biomedica eval run --model tiny-random --tasks {built.task_file})")


@app.command("subfigures")
def subfigures(
    labels: Path = typer.Option(Path("tests/data/subfigures"), help="Folder with real_panels.json and real_captions.json."),
    fixtures: Path = typer.Option(Path("../shared/fixtures"), help="Folder the labels' image paths are relative to."),
    weights: Path = typer.Option(None, help="Model detector weights (`curate train-subfigure-detector`); else gutter only."),
    device: str = typer.Option("cpu", help="Model detector device: cpu, cuda, cuda:N."),
    archive: Path = typer.Option(None, help="Archive whose eval-split single images make the synthetic set."),
    synthetic: int = typer.Option(200, min=0, help="Held-out synthetic figures (needs --archive; 0: none)."),
    seed: int = typer.Option(1, help="Generator seed of the synthetic set (training uses 0)."),
    ocr: bool = typer.Option(False, help="Also rows with the panel letters OCR reads (needs the ocr extra; ~1 s a figure)."),
    out: Path = typer.Option(None, help="Also write the rows as JSON here."),
) -> None:
    """Panel detection (figure accuracy, mAP@0.5, mean IoU) and caption splitting (exact match) against hand labels."""
    import json

    from pydantic import ValidationError
    from tqdm import tqdm

    from biomedica.curate.subfigures.evaluate import SubfigureEvalConfig, markdown_table, run_evaluation

    try:
        config = SubfigureEvalConfig(labels=labels, fixtures=fixtures, weights=weights, device=device, archive=archive,
                                     synthetic=synthetic, seed=seed, ocr=ocr)
    except ValidationError as exc:
        fail(validation_message(exc))
    try:
        with tqdm(desc="subfigures", unit="fig") as bar:
            rows = run_evaluation(config, progress=bar.update)
    except (OSError, ValueError, RuntimeError, ImportError) as exc:  # RuntimeError: model load / device
        fail(str(exc))
    stdout.print(markdown_table(rows), markup=False, highlight=False, soft_wrap=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
        stderr.print(f"rows written to {out}")
