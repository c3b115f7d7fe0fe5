"""Run evaluation tasks for one model: load data, embed (cached), score, write one JSON per task.

A task whose data is missing is skipped with one line; a task whose data is broken is
reported as failed with the reason; neither stops the other tasks.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

import biomedica
from biomedica.eval.adapters import DatasetInvalid, DatasetMissing, EvalDataset, load_dataset
from biomedica.eval.embeddings import EmbeddingCache, ImageLoadError, embed_images, embed_texts
from biomedica.eval.scoring import (
    class_prompts,
    ensemble_class_embeddings,
    linear_probe,
    score_classification,
    score_multilabel,
    score_retrieval,
    stratified_halves,
)
from biomedica.eval.tasks import DatasetSpec, TaskSpec, default_data_dir
from biomedica.io.atomic import write_text_atomic


class EvalConfig(BaseModel):
    """Everything besides the model and the tasks that decides a result (recorded in each JSON)."""

    model_config = ConfigDict(extra="forbid")
    out_dir: Path
    data_dir: Path = Field(default_factory=default_data_dir)
    cache_dir: Path | None = None  # default: <out_dir>/.embedding-cache; set use_cache=False to disable
    use_cache: bool = True
    batch_size: int = Field(64, ge=1)
    loader_threads: int = Field(2, ge=1)
    n_boot: int = Field(1000, ge=0)
    seed: int = 0
    linear_probe: bool = False
    max_images: int | None = Field(None, ge=1)  # seeded random subset per task, for quick looks
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (autocast on GPU only)
    progress: bool = False

    @property
    def cache(self) -> EmbeddingCache:
        if not self.use_cache:
            return EmbeddingCache(None)
        return EmbeddingCache(self.cache_dir or self.out_dir / ".embedding-cache")


@dataclass
class TaskOutcome:
    task: str
    status: str  # ok | skipped | failed
    message: str = ""
    result_path: Path | None = None
    result: dict | None = None


def model_slug(name: str) -> str:
    """A folder name for a model: `hf-hub:org/name` -> `hf-hub_org_name`."""
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", name).strip("_") or "model"


def result_path(out_dir: Path, model_name: str, task_name: str) -> Path:
    return Path(out_dir) / model_slug(model_name) / f"{task_name}.json"


def _label_indices(task: TaskSpec, dataset: EvalDataset) -> tuple[np.ndarray, np.ndarray]:
    """(kept image indices, int labels or multi-hot rows); labels not among the task's classes are dropped."""
    index = {label: i for i, label in enumerate(task.class_labels)}
    if dataset.labels is None:
        raise DatasetInvalid(f"task {task.name}: the dataset gives no labels; set the adapter's label option")
    kept, encoded = [], []
    for i, raw in enumerate(dataset.labels):
        if task.kind == "multilabel":
            values = raw if isinstance(raw, list) else [raw]
            row = np.zeros(len(index), dtype=bool)
            for value in values:
                if value in index:
                    row[index[value]] = True
            kept.append(i)
            encoded.append(row)
        elif raw in index:
            kept.append(i)
            encoded.append(index[raw])
    if not kept or (task.kind == "multilabel" and not np.any(encoded)):
        found = sorted({str(v) for v in dataset.labels})[:10]
        raise DatasetInvalid(
            f"task {task.name}: no image has one of the task's class labels {task.class_labels[:10]}; "
            f"the data has {found}. Fix `classes:` (label = the value in the data)"
        )
    return np.array(kept, dtype=int), np.array(encoded)


def _subsample(dataset: EvalDataset, max_images: int | None, seed: int) -> EvalDataset:
    if not max_images or len(dataset.images) <= max_images:
        return dataset
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(dataset.images), size=max_images, replace=False).tolist())
    subset = dataset.subset(chosen)
    subset.fingerprint = f"{dataset.fingerprint}-sub{max_images}-{seed}"
    return subset


def _layout_options(task: TaskSpec, spec: DatasetSpec, root: Path) -> dict:
    """The layout's options; a relative `keys_file` found beside the task file (shipped lists) is made absolute.

    Otherwise it stays relative and the adapter reads it under the data root (lists a user draws).
    """
    options = dict(spec.options)
    keys_file = options.get("keys_file")
    if isinstance(keys_file, str) and keys_file and not Path(keys_file).is_absolute() and task.source_dir:
        shipped = task.source_dir / keys_file
        if shipped.is_file():
            options["keys_file"] = str(shipped)
    return options


def load_task_dataset(task: TaskSpec, data_dir: Path) -> tuple[EvalDataset, DatasetSpec, Path]:
    """Load the first of the task's layouts whose root (and `file`) exist: (dataset, that layout, its root).

    DatasetMissing lists every layout tried when none is present; errors of the present layout propagate.
    """
    found = task.present_layout(Path(data_dir))
    if found is None:
        tried = [str(task.layout_target(spec, Path(data_dir))) for spec in task.dataset_layouts]
        raise DatasetMissing(f"data not found at {' or at '.join(tried)}")
    _, spec, root = found
    return load_dataset(spec.adapter, root, _layout_options(task, spec, root)), spec, root


def evaluate_task(
    model, task: TaskSpec, config: EvalConfig, dataset: EvalDataset | None = None,
    layout: tuple[DatasetSpec, Path] | None = None,
) -> dict:
    """Score one task for one model and return the result dict (written by run_evaluation).

    `layout` = (the DatasetSpec used, its root) as returned by load_task_dataset with `dataset`.
    """
    if dataset is None:
        dataset, spec, root = load_task_dataset(task, config.data_dir)
    elif layout is not None:
        spec, root = layout
    else:
        spec = task.dataset_layouts[0]
        root = spec.resolve_root(config.data_dir)
    layout_index = next((i for i, s in enumerate(task.dataset_layouts) if s == spec), 0)
    dataset = _subsample(dataset, config.max_images, config.seed)
    cache = config.cache
    started = time.perf_counter()
    image_embeddings, from_cache = embed_images(
        model, dataset.images, dataset.fingerprint, cache, config.batch_size, config.loader_threads, config.progress
    )
    embed_seconds = time.perf_counter() - started
    started = time.perf_counter()
    extra: dict = {}
    if task.kind == "retrieval":
        if dataset.captions is None:
            raise DatasetInvalid(f"task {task.name}: the dataset gives no captions; set the adapter's caption option")
        texts = [text for captions in dataset.captions for text in captions]
        caption_image = np.array([i for i, captions in enumerate(dataset.captions) for _ in captions], dtype=int)
        text_embeddings = embed_texts(model, texts, cache)
        scores = score_retrieval(image_embeddings, text_embeddings, caption_image, config.n_boot, config.seed)
        n_used = len(dataset.images)
    else:
        kept, labels = _label_indices(task, dataset)
        features = image_embeddings[kept]
        prompts = class_prompts([c.names for c in task.classes], task.templates)
        prompt_embeddings = embed_texts(model, [p for group in prompts for p in group], cache)
        class_embeddings = ensemble_class_embeddings(prompt_embeddings, [len(g) for g in prompts])
        logits = 100.0 * features @ class_embeddings.T
        if task.kind == "multilabel":
            scores = score_multilabel(logits, labels, task.class_labels, config.n_boot, config.seed)
        else:
            scores = score_classification(logits, labels, task.class_labels, task.metric, config.n_boot, config.seed)
            if config.linear_probe:
                extra["linear_probe"] = _run_linear_probe(model, task, config, features, labels)
        n_used = len(kept)
        extra["n_unmapped_labels"] = len(dataset.images) - len(kept)
    score_seconds = time.perf_counter() - started
    primary = task.metric if task.metric in scores["metrics"] else scores["primary_metric"]
    return {
        "biomedica_version": biomedica.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "name": model.name,
            "fingerprint": model.fingerprint,
            "device": getattr(model, "device", None),
            "precision": getattr(model, "precision", None),
        },
        "task_name": task.name,
        "domain": task.domain,
        "kind": task.kind,
        "primary_metric": primary,
        "score": scores["metrics"][primary],
        "score_ci95": scores["ci95"].get(primary),
        **{k: v for k, v in scores.items() if k != "primary_metric"},
        "n_images": n_used,
        **extra,
        "dataset": {
            "root": str(Path(root).resolve()),
            "layout_index": layout_index,
            "adapter": spec.adapter,
            "fingerprint": dataset.fingerprint,
            "n_listed": len(dataset.images),
            "notes": dataset.notes,
        },
        "timings": {
            "embed_images_s": round(embed_seconds, 3),
            "images_from_cache": from_cache,
            "images_per_s": None if from_cache else round(len(dataset.images) / max(embed_seconds, 1e-9), 1),
            "score_s": round(score_seconds, 3),
        },
        "config": {
            "task": task.model_dump(mode="json"),
            "eval": config.model_dump(mode="json", exclude={"progress"}),
        },
    }


def _run_linear_probe(model, task: TaskSpec, config: EvalConfig, features: np.ndarray, labels: np.ndarray) -> dict:
    """Train on the task's `train:` data when given, else on a seeded stratified half of the test data."""
    if task.train is not None:
        try:
            train_data = load_dataset(task.train.adapter, task.train.resolve_root(config.data_dir), task.train.options)
        except DatasetMissing as exc:
            return {"skipped": f"training data missing: {exc}"}
        train_data = _subsample(train_data, config.max_images, config.seed)
        train_embeddings, _ = embed_images(
            model, train_data.images, train_data.fingerprint, config.cache, config.batch_size, config.loader_threads
        )
        kept, train_labels = _label_indices(task, train_data)
        result = linear_probe(train_embeddings[kept], train_labels, features, labels, len(task.class_labels), config.seed)
        result["train_source"] = "train split"
        return result
    train_idx, test_idx = stratified_halves(labels, config.seed)
    result = linear_probe(features[train_idx], labels[train_idx], features[test_idx], labels[test_idx],
                          len(task.class_labels), config.seed)
    result["train_source"] = "stratified half of the test data (no train split given)"
    return result


def write_result(result: dict, out_dir: Path) -> Path:
    path = result_path(out_dir, result["model"]["name"], result["task_name"])
    write_text_atomic(path, json.dumps(result, indent=1, allow_nan=False))
    return path


def run_evaluation(
    model_spec: str | object,
    tasks: list[TaskSpec],
    config: EvalConfig,
    log: Callable[[str], None] = print,
) -> list[TaskOutcome]:
    """Evaluate `model_spec` (a --model string or a loaded ClipModel) on every task; one JSON per task.

    An image-only model is refused (models.spec.NoTextTower) once loaded, before anything is embedded.
    """
    from biomedica.models import load_model
    from biomedica.models.spec import no_text_tower

    model = None if isinstance(model_spec, str) else model_spec
    outcomes: list[TaskOutcome] = []
    for task in tasks:
        try:
            dataset, spec, root = load_task_dataset(task, config.data_dir)
        except DatasetMissing as exc:
            hint = f" Get it: {task.data.source}" if task.data else ""
            message = f"{exc}.{hint}"
            log(f"skip {task.name}: {message}")
            outcomes.append(TaskOutcome(task.name, "skipped", message))
            continue
        except (DatasetInvalid, OSError, ValueError) as exc:
            log(f"FAIL {task.name}: {exc}")
            outcomes.append(TaskOutcome(task.name, "failed", str(exc)))
            continue
        for note in dataset.notes:
            log(f"note {task.name}: {note}")
        if model is None:
            model = load_model(model_spec, device=config.device, precision=config.precision)
        if model.tokenizer is None:  # before any image is embedded: every task scores against text
            raise no_text_tower(model.name, "eval")
        try:
            result = evaluate_task(model, task, config, dataset, layout=(spec, root))
        except (DatasetInvalid, ImageLoadError) as exc:
            log(f"FAIL {task.name}: {exc}")
            outcomes.append(TaskOutcome(task.name, "failed", str(exc)))
            continue
        path = write_result(result, config.out_dir)
        low, high = result["score_ci95"] or (None, None)
        ci = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
        score = "n/a" if result["score"] is None else f"{result['score']:.3f}"
        log(f"done {task.name}: {result['primary_metric']} {score}{ci} on {result['n_images']} images -> {path}")
        outcomes.append(TaskOutcome(task.name, "ok", "", path, result))
    return outcomes
