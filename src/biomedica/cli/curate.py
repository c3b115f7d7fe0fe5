"""`biomedica curate ...`: the curation commands (a Typer sub-app the main CLI mounts as `curate`).

Torch-free steps (`run`, `dedup`, `quality`, `panels`) import nothing heavy; `embed`,
`cluster` and `zeroshot` import torch / open_clip / scikit-learn inside the command.
"""

from __future__ import annotations

from pathlib import Path

import typer

from biomedica.cli.console import stderr, stdout
from biomedica.cli.errors import fail, output_folder_option, resumable_on_interrupt, validation_message
from biomedica.cli.groups import command_group
from biomedica.cli.summary import print_summary

curate_app = command_group(
    "curate", "Annotate an archive: duplicates, quality flags, panel types, subfigures, embeddings, clusters, concepts."
)

ARCHIVE_ARG = typer.Argument(..., help="Archive folder written by `biomedica ingest`.")
ANNOTATIONS_OPT = typer.Option(
    None, "--annotations", help="Annotation folder (default: ARCHIVE/annotations).", callback=output_folder_option
)
EXECUTOR_OPT = typer.Option("local", help="Where shards run: local | ray (the same bytes either way).")
SHARD_WORKERS_OPT = typer.Option(
    1, min=1, help="Shards at once: processes (local; 1 = in this process) or Ray tasks in flight (ray; 1 = one per "
    "cluster CPU).",
)
GPUS_PER_WORKER_OPT = typer.Option(
    0.0, min=0.0, help="ray: share of a GPU each shard task takes (0.25: four tasks share one GPU; 0: CPU).",
)


def _store(archive: Path, annotations: Path | None):
    from biomedica.archive.annotations import AnnotationStore, default_annotations_dir

    return AnnotationStore(annotations or default_annotations_dir(archive))


def _print_results(results) -> None:
    rows = []
    for result in results:
        rows.append((result.step, ", ".join(f"{k} {v}" for k, v in result.counts.items())))
        rows += [("  table", str(result.path)), ("  time", f"{result.seconds:.1f} s")]
    print_summary("biomedica curate", rows)


def _run_steps(archive: Path, annotations: Path | None, steps: tuple[str, ...], dedup=None, quality=None) -> None:
    from biomedica.curate.config import DedupConfig, QualityConfig
    from biomedica.curate.run import run_curate

    try:
        results = run_curate(archive, annotations, steps, dedup or DedupConfig(), quality or QualityConfig())
    except (OSError, ValueError) as exc:  # OSError: also ArchiveLocked (another writer)
        fail(str(exc))
    _print_results(results)


def _dedup_config(near_threshold: int, eval_images: Path | None, leak_threshold: int):
    from pydantic import ValidationError

    from biomedica.curate.config import DedupConfig

    try:
        return DedupConfig(near_threshold=near_threshold, eval_images=eval_images, leak_threshold=leak_threshold)
    except ValidationError as exc:
        fail(validation_message(exc))


@curate_app.command("run")
def run(
    archive: Path = ARCHIVE_ARG,
    annotations: Path = ANNOTATIONS_OPT,
    near_threshold: int = typer.Option(6, help="pHash Hamming distance (of 64) for near-duplicates."),
    eval_images: Path = typer.Option(None, help="Evaluation images (folder or hash table) to flag leaks of."),
    leak_threshold: int = typer.Option(6, help="pHash distance that counts as an eval leak."),
) -> None:
    """The torch-free steps in one go: dedup, quality, panels."""
    _run_steps(archive, annotations, ("dedup", "quality", "panels"),
               dedup=_dedup_config(near_threshold, eval_images, leak_threshold))


@curate_app.command("dedup")
def dedup(
    archive: Path = ARCHIVE_ARG,
    annotations: Path = ANNOTATIONS_OPT,
    near_threshold: int = typer.Option(6, help="pHash Hamming distance (of 64) for near-duplicates."),
    eval_images: Path = typer.Option(None, help="Evaluation images (folder or hash table) to flag leaks of."),
    leak_threshold: int = typer.Option(6, help="pHash distance that counts as an eval leak."),
    workers: int = typer.Option(1, help="Near search: processes (local) or tasks in flight (ray)."),
    executor: str = typer.Option("local", help="Near search: local | ray (units of the partitioned search)."),
    memory: str = typer.Option(
        None, help="Near search memory budget per unit (e.g. 2GB): partitioned search, groups spilled to disk."
    ),
) -> None:
    """Exact and near-duplicate groups with one canonical sample each; eval-set leaks.

    With --memory, --workers > 1 or --executor ray the near search is partitioned by hash
    substring into units of bounded memory (same groups as the single-process search).
    """
    from pydantic import ValidationError

    config = _dedup_config(near_threshold, eval_images, leak_threshold)
    try:
        config = config.model_validate(
            {**config.model_dump(), "workers": workers, "executor": executor, "memory": memory}
        )
    except ValidationError as exc:
        fail(validation_message(exc))
    _run_steps(archive, annotations, ("dedup",), dedup=config)


@curate_app.command("quality")
def quality(
    archive: Path = ARCHIVE_ARG,
    annotations: Path = ANNOTATIONS_OPT,
    min_side: int = typer.Option(64, help="Flag images with a side below this (px)."),
    max_aspect: float = typer.Option(5.0, help="Flag images with a long/short side ratio above this."),
    min_caption_words: int = typer.Option(3, help="Flag captions with fewer words (after the label)."),
) -> None:
    """Quality flags with reasons: tiny, extreme aspect, empty/boilerplate/short, non-English captions."""
    from pydantic import ValidationError

    from biomedica.curate.config import QualityConfig

    try:
        config = QualityConfig(min_side=min_side, min_pixels=min_side * min_side, max_aspect=max_aspect,
                               min_caption_words=min_caption_words)
    except ValidationError as exc:
        fail(validation_message(exc))
    _run_steps(archive, annotations, ("quality",), quality=config)


@curate_app.command("panels")
def panels(archive: Path = ARCHIVE_ARG, annotations: Path = ANNOTATIONS_OPT) -> None:
    """Panel type (single / multiple) per image from caption panel letters and image layout."""
    _run_steps(archive, annotations, ("panels",))


@curate_app.command("subfigures")
def subfigures(
    archive: Path = ARCHIVE_ARG,
    annotations: Path = ANNOTATIONS_OPT,
    detector: str = typer.Option("auto", help="gutter (no model) | model (needs --weights) | auto (model when --weights)."),
    weights: Path = typer.Option(None, help="Local weights of the model detector (`curate train-subfigure-detector`)."),
    device: str = typer.Option("auto", help="Model detector device: auto (GPU when present), cpu, cuda, cuda:N."),
    score_threshold: float = typer.Option(None, help="Model detector: keep boxes scoring at least this."),
    nms_iou: float = typer.Option(None, help="Model detector: non-maximum suppression IoU."),
    ocr: str = typer.Option("auto", help="Panel letters by OCR: auto (ocr extra installed; compound-looking figures "
                            "only, ~1-2 s of CPU each) | on (required) | off."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    executor: str = EXECUTOR_OPT,
    shard_workers: int = SHARD_WORKERS_OPT,
    gpus_per_worker: float = GPUS_PER_WORKER_OPT,
) -> None:
    """Panel boxes and subcaptions per figure -> annotations/subfigures.parquet; one part per shard, re-run resumes."""
    from pydantic import ValidationError
    from tqdm import tqdm

    from biomedica.curate.subfigures.run import SubfigureConfig, run_subfigures

    try:
        config = SubfigureConfig(detector=detector, weights=weights, device=device, score_threshold=score_threshold,
                                 nms_iou=nms_iou, ocr=ocr, progress=progress, executor=executor,
                                 shard_workers=shard_workers, gpus_per_worker=gpus_per_worker)
    except ValidationError as exc:
        fail(validation_message(exc))
    try:
        with resumable_on_interrupt(), tqdm(desc="subfigures", unit="fig", disable=not config.progress) as bar:
            result = run_subfigures(archive, _store(archive, annotations), config, progress=bar.update)
    except (OSError, ValueError, ImportError, RuntimeError) as exc:  # OSError: also ArchiveLocked; ValueError: settings
        fail(str(exc))
    table = "" if result.panels_updated is None else f"; panels.parquet: {result.panels_updated:,} panel types from the detector"
    print_summary("biomedica curate subfigures", [
        ("detector", result.detector + (f" + OCR letters ({result.ocr_figures:,} figures read)" if result.ocr else "")),
        ("figures in", f"{result.figures + result.failed:,}"),
        ("panels out", f"{result.panels:,}"),
        ("  single / multiple figures", f"{result.single:,} / {result.multiple:,}"),
        ("  panels with an aligned subcaption", f"{result.aligned:,}"),
        ("failed (errors/curate-subfigures-*)", f"{result.failed:,} figures, {result.failed_shards:,} unreadable shards"),
        ("executor", f"{config.executor} ({config.shard_workers} shard workers)"),
        ("shards done / skipped (already done)", f"{result.shards_done:,} / {result.shards_skipped:,}"),
        ("table", f"{result.path} ({result.table_rows:,} panels of {result.table_figures:,} figures){table}"),
        ("time", f"{result.seconds:.1f} s ({result.figures_per_second:.1f} figures/s)"),
    ])
    if result.failed or result.failed_shards:  # the table is written without them: exit 1, never 0 with figures left out
        stderr.print(f"[yellow]{result.failed:,} figure(s) could not be read or detected and {result.failed_shards:,} "
                     "shard(s) could not be read, so they have no subfigure rows[/]; each is named in the annotations' "
                     "errors (`biomedica inspect` shows them); fix or re-ingest them and rerun (done shards are skipped)")
        raise typer.Exit(code=1)


def _embed_config(model, pretrained, model_config_json, name, batch_size, device, captions, workers=0, progress=True,
                  executor="local", shard_workers=1, gpus_per_worker=0.0):
    from pydantic import ValidationError

    from biomedica.curate.config import EmbedConfig

    try:
        return EmbedConfig(model=model, pretrained=pretrained, model_config_json=model_config_json, name=name,
                           batch_size=batch_size, device=device, captions=captions, workers=workers, progress=progress,
                           executor=executor, shard_workers=shard_workers, gpus_per_worker=gpus_per_worker)
    except ValidationError as exc:
        fail(validation_message(exc))


MODEL_OPT = typer.Option(
    ..., "--model", help="Model spec, as eval and train take it: tiny-random, ARCH:TAG, ARCH:/path.pt, hf-hub:ORG/NAME, "
    "timm:NAME[:/path/weights] (or a bare ARCH with --pretrained).",
)
PRETRAINED_OPT = typer.Option(None, help="Older form: pretrained tag or checkpoint file of a bare ARCH (timm:NAME: local weights).")
CONFIG_JSON_OPT = typer.Option(None, "--model-config", help="Custom OpenCLIP model config JSON to register first.")
NAME_OPT = typer.Option(None, "--name", help="Embedding folder name (default: from the model).")
BATCH_OPT = typer.Option(64, min=1, help="Images per batch.")
DEVICE_OPT = typer.Option("auto", help="auto (GPU when present), cpu, cuda, cuda:N.")


@curate_app.command("embed")
def embed(
    archive: Path = ARCHIVE_ARG,
    annotations: Path = ANNOTATIONS_OPT,
    model: str = MODEL_OPT,
    pretrained: str = PRETRAINED_OPT,
    model_config: Path = CONFIG_JSON_OPT,
    name: str = NAME_OPT,
    batch_size: int = BATCH_OPT,
    device: str = DEVICE_OPT,
    captions: bool = typer.Option(True, help="Also embed captions (OpenCLIP models)."),
    workers: int = typer.Option(0, min=0, help="Image decoding threads per shard worker (0: in its main thread)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    executor: str = EXECUTOR_OPT,
    shard_workers: int = SHARD_WORKERS_OPT,
    gpus_per_worker: float = GPUS_PER_WORKER_OPT,
) -> None:
    """Image (and caption) embeddings, float16, one part per shard; re-run resumes."""
    from tqdm import tqdm

    from biomedica.curate.embed import embed_archive

    config = _embed_config(model, pretrained, model_config, name, batch_size, device, captions, workers, progress,
                           executor, shard_workers, gpus_per_worker)
    try:
        with tqdm(desc="embed", unit="img", disable=not config.progress) as bar:
            result = embed_archive(archive, _store(archive, annotations), config, progress=bar.update)
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: biomedica.models.ModelLoadError
        fail(str(exc))
    stdout.print(
        f"embedded {result.samples} samples from {result.shards_done} shards ({result.shards_skipped} already done, "
        f"{result.failed} undecodable) -> {result.folder} (dim {result.dim}, float16)"
    )
    stdout.print(f"executor {result.executor} ({result.shard_workers} shard workers): {result.seconds:.1f} s, "
                 f"{result.samples_per_second:.1f} samples/s")


@curate_app.command("cluster")
def cluster(
    archive: Path = ARCHIVE_ARG,
    annotations: Path = ANNOTATIONS_OPT,
    embeddings: str = typer.Option(..., help="Embedding folder name under annotations/embeddings/."),
    k: int = typer.Option(2000, min=2, help="Number of clusters."),
    pca_dim: int = typer.Option(64, min=1, help="PCA dimensions before K-means."),
    iterations: int = typer.Option(25, min=1, help="K-means iterations."),
    restarts: int = typer.Option(1, min=1, help="K-means runs from different seeds (best kept)."),
    backend: str = typer.Option("auto", help="auto (faiss when installed), faiss, sklearn."),
    seed: int = typer.Option(0),
    assign_only: bool = typer.Option(False, help="Keep the saved model; only assign (new samples get existing ids)."),
    fit_sample: int = typer.Option(None, min=2, help="Fit PCA + K-means on at most this many vectors (seeded sample)."),
    cluster_workers: int = typer.Option(1, "--workers", min=1, help="Processes (or Ray tasks) assigning embedding parts."),
    executor: str = typer.Option("local", help="local or ray: where the per-part assignment runs."),
) -> None:
    """PCA + K-means over image embeddings; saves the model and writes clusters.parquet."""
    from pydantic import ValidationError

    from biomedica.curate.cluster import cluster_archive
    from biomedica.curate.config import ClusterConfig
    from biomedica.exec import ExecutorError

    try:
        config = ClusterConfig(embeddings=embeddings, k=k, pca_dim=pca_dim, iterations=iterations, restarts=restarts,
                               backend=backend, seed=seed, fit_sample=fit_sample, workers=cluster_workers,
                               executor=executor)
    except ValidationError as exc:
        fail(validation_message(exc))
    try:
        run = cluster_archive(archive, _store(archive, annotations), config, refit=not assign_only)
    except (OSError, ValueError, ImportError, ExecutorError) as exc:
        fail(str(exc))
    model = run.model
    stdout.print(f"{run.rows} samples in {model.k} clusters ({model.info['backend']}, "
                 f"PCA {model.info['input_dim']}->{model.info['pca_dim']}, fit {model.info['fit_seconds']} s "
                 f"on {model.info['train_vectors']} vectors); {run.parts} parts assigned by {config.executor} x "
                 f"{config.workers} in {run.seconds:.1f} s ({run.rows / max(run.seconds, 1e-9):,.0f} samples/s)")


@curate_app.command("zeroshot")
def zeroshot(
    archive: Path = ARCHIVE_ARG,
    annotations: Path = ANNOTATIONS_OPT,
    model: str = MODEL_OPT,
    pretrained: str = PRETRAINED_OPT,
    model_config: Path = CONFIG_JSON_OPT,
    name: str = NAME_OPT,
    batch_size: int = BATCH_OPT,
    device: str = DEVICE_OPT,
    taxonomy: Path = typer.Option(None, help="Taxonomy YAML (default: the shipped biomedica taxonomy)."),
    top_k: int = typer.Option(3, min=1, help="Local concepts kept per image."),
    executor: str = EXECUTOR_OPT,
    shard_workers: int = SHARD_WORKERS_OPT,
    gpus_per_worker: float = GPUS_PER_WORKER_OPT,
) -> None:
    """Zero-shot global/local concept labels per image from a CLIP model and the taxonomy prompts."""
    import time

    from biomedica.curate.concepts import zero_shot_labels
    from biomedica.curate.config import ZeroShotConfig

    config = ZeroShotConfig(embed=_embed_config(model, pretrained, model_config, name, batch_size, device, False,
                                                executor=executor, shard_workers=shard_workers,
                                                gpus_per_worker=gpus_per_worker),
                            taxonomy=taxonomy, top_k=top_k)
    started = time.perf_counter()
    try:
        table = zero_shot_labels(archive, _store(archive, annotations), config)
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: biomedica.models.ModelLoadError
        fail(str(exc))
    counts: dict[str, int] = {}
    for concept in table.column("zs_global").to_pylist():
        counts[concept] = counts.get(concept, 0) + 1
    stdout.print(f"labelled {table.num_rows} samples: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
    seconds = time.perf_counter() - started
    stdout.print(f"executor {executor} ({shard_workers} shard workers): {seconds:.1f} s, "
                 f"{table.num_rows / max(seconds, 1e-9):.1f} samples/s")


DETECTOR_OUT_OPT = typer.Option(..., "--out", help="Weights file to write (.pt), for `curate subfigures --weights`.")
BACKBONE_WEIGHTS_OPT = typer.Option(None, help="Local state dict for the backbone (nothing is downloaded).")


@curate_app.command("train-subfigure-detector")
def train_subfigure_detector(
    archive: Path = ARCHIVE_ARG,
    out: Path = DETECTOR_OUT_OPT,
    config: str = typer.Option("tiny", "--config", help="Preset: tiny (CPU, minutes), mid (CPU, longer), gpu."),
    steps: int = typer.Option(None, min=1, help="Training steps (default: the preset's)."),
    batch_size: int = typer.Option(None, min=1, help="Figures per step (default: the preset's)."),
    lr: float = typer.Option(None, min=0.0, help="Learning rate (default: the preset's)."),
    seed: int = typer.Option(0, help="Generator and weight seed; evaluation uses seed + 1 on the eval pool."),
    device: str = DEVICE_OPT,
    eval_figures: int = typer.Option(200, min=0, help="Held-out synthetic figures to evaluate on (0: none)."),
    calibrate_figures: int = typer.Option(100, min=0, help="Training-pool figures (seed + 2) that pick the score "
                                          "and NMS thresholds stored with the weights (0: keep the preset's)."),
    max_minutes: float = typer.Option(None, min=0.0, help="Stop training after this many minutes (weights kept)."),
    pool_limit: int = typer.Option(None, min=1, help="At most this many single-panel images per pool."),
    backbone_weights: Path = BACKBONE_WEIGHTS_OPT,
    overwrite: bool = typer.Option(False, help="Replace an existing --out weights file."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train the `model` panel detector on synthetic compound figures made from the archive's single-panel images."""
    import time

    from pydantic import ValidationError
    from tqdm import tqdm

    from biomedica.curate.subfigures.evaluate import evaluate_detector, synthetic_figures
    from biomedica.curate.subfigures.model import DetectorConfig, ModelDetector, calibrate_thresholds, train_detector
    from biomedica.curate.subfigures.synthetic import SyntheticConfig, single_panel_pool

    overrides = {k: v for k, v in {"steps": steps, "batch_size": batch_size, "lr": lr,
                                   "backbone_weights": backbone_weights}.items() if v is not None}
    try:
        detector_config = DetectorConfig.preset(config, **overrides)
    except ValidationError as exc:
        fail(validation_message(exc))
    except ValueError as exc:
        fail(str(exc))
    try:
        train_pool = single_panel_pool(archive, "train", pool_limit)
        if not train_pool:
            fail(f"{archive}: no single-panel images in the training pool; ingest more articles "
                 "(or check annotations/panels.parquet)")
        eval_pool = single_panel_pool(archive, "eval", pool_limit) if eval_figures else []
        with tqdm(total=detector_config.steps, desc="train", unit="step", disable=not progress) as bar:
            def step_done(step: int, loss: float) -> None:
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
                bar.update(1)

            report = train_detector(train_pool, detector_config, out, seed=seed, device=device, progress=step_done, overwrite=overwrite,
                                    max_seconds=max_minutes * 60 if max_minutes else None)
        rows = [("train pool", f"{len(train_pool)} images"), ("preset", detector_config.name),
                ("steps", f"{report.steps} x {detector_config.batch_size} figures"),
                ("loss", f"{report.first_loss:.3f} -> {report.final_loss:.3f}"),
                ("time", f"{report.seconds:.1f} s ({report.samples_per_s:.1f} figures/s, {report.device})"),
                ("weights", str(out))]
        synthetic = SyntheticConfig(max_side=detector_config.figure_max_side)
        if calibrate_figures:
            chosen = calibrate_thresholds(out, synthetic_figures(train_pool, calibrate_figures, seed + 2, synthetic),
                                          device=device)
            rows.append(("thresholds", f"score {chosen['score_threshold']}, NMS {chosen['nms_iou']} "
                                       f"(picked on {chosen['figures']} training-pool figures)"))
        if eval_figures:
            figures = synthetic_figures(eval_pool, eval_figures, seed + 1, synthetic)
            started = time.perf_counter()
            result = evaluate_detector(ModelDetector(out, device=device), figures, "synthetic", hints=False).report
            seconds = time.perf_counter() - started
            pool_note = f"{len(eval_pool)} images" if eval_pool else "0 images (drawn plots only)"
            rows += [("eval pool", pool_note), ("eval figures", f"{result.figures} (seed {seed + 1})"),
                     ("eval mAP@0.5", f"{result.map50:.3f}"), ("eval mean IoU", f"{result.mean_iou:.3f}"),
                     ("eval figure accuracy", f"{result.figure_accuracy:.3f}"),
                     ("eval panels true/pred", f"{result.panels_true}/{result.panels_pred}"),
                     ("eval time", f"{seconds:.1f} s ({result.figures / max(seconds, 1e-9):.1f} figures/s)")]
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: biomedica.models.ModelLoadError
        fail(str(exc))
    print_summary("biomedica curate train-subfigure-detector", rows)
