"""Run evaluation tasks for one model: load data, embed (cached), score, write one JSON per task.

A task whose data is missing is skipped with one line; a task whose data is broken is
reported as failed with the reason; neither stops the other tasks.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

import biomedica
from biomedica.eval.adapters import DatasetInvalid, DatasetMissing, EvalDataset, load_dataset
from biomedica.eval.embeddings import EmbeddingCache, ImageLoadError, embed_images, embed_texts
from biomedica.eval.formats import write_clip_benchmark
from biomedica.eval.identity import model_record
from biomedica.eval.prompts import has_preset, resolve_prompts
from biomedica.eval.scoring import (
    class_prompts,
    ensemble_class_embeddings,
    score_classification,
    score_multilabel,
    score_retrieval,
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
    prompts: Literal["biomedica", "clip_benchmark", "biomedclip"] = "biomedica"  # eval.prompts presets
    result_format: Literal["biomedica", "clip_benchmark"] = "biomedica"  # clip_benchmark: also eval.formats' file
    linear_probe: bool = False
    probe_shots: list[int | Literal["full"]] = Field(default_factory=lambda: [1, 2, 4, 8, 16, "full"])
    probe_seeds: int = Field(5, ge=1)  # k-shot draws per k (CIs over draws)
    ties: Literal["pessimistic", "clip_benchmark", "optimistic"] = "pessimistic"  # top-k/retrieval ties (metrics.py)
    max_images: int | None = Field(None, ge=1)  # seeded random subset per task, for quick looks
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (autocast on GPU only)
    progress: bool = False

    @field_validator("probe_shots")
    @classmethod
    def _shots(cls, value: list) -> list:
        if not value or any(isinstance(k, int) and k < 1 for k in value):
            raise ValueError("probe_shots: give positive integers and/or 'full', e.g. 1,2,4,8,16,full")
        return list(dict.fromkeys(value))

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


def model_slug(spec: str) -> str:
    """A folder name for a model's exact spec (never its architecture): `hf-hub:org/name` -> `hf-hub_org_name`."""
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", spec).strip("_") or "model"


def result_path(out_dir: Path, model_spec: str, task_name: str) -> Path:
    """<out>/<model_slug(spec)>/<task>.json: `tiny-random` and `biomedica-tiny:/x/epoch_3.pt` never share a folder."""
    return Path(out_dir) / model_slug(model_spec) / f"{task_name}.json"


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
        scores = score_retrieval(image_embeddings, text_embeddings, caption_image, config.n_boot, config.seed,
                                 ties=config.ties)
        n_used = len(dataset.images)
    else:
        kept, labels = _label_indices(task, dataset)
        features = image_embeddings[kept]
        class_names, templates, prompt_source = resolve_prompts(task, config.prompts)
        extra["prompts"] = {"preset": config.prompts, "source": prompt_source, "templates": templates,
                            "class_names": class_names}
        prompts = class_prompts(class_names, templates)
        prompt_embeddings = embed_texts(model, [p for group in prompts for p in group], cache)
        class_embeddings = ensemble_class_embeddings(prompt_embeddings, [len(g) for g in prompts])
        logits = 100.0 * features @ class_embeddings.T
        if task.kind == "multilabel":
            scores = score_multilabel(logits, labels, task.class_labels, config.n_boot, config.seed)
        else:
            scores = score_classification(logits, labels, task.class_labels, task.metric, config.n_boot, config.seed,
                                          ties=config.ties)
            if config.linear_probe:
                extra["linear_probe"] = _run_linear_probe(model, task, config, features, labels, dataset, kept)
        n_used = len(kept)
        extra["n_unmapped_labels"] = len(dataset.images) - len(kept)
    score_seconds = time.perf_counter() - started
    primary = task.metric if task.metric in scores["metrics"] else scores["primary_metric"]
    return {
        "biomedica_version": biomedica.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model_record(model),
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


def _probe_split(model, spec, config: EvalConfig, task: TaskSpec):
    """(features, int labels, groups) of an official split given as a DatasetSpec."""
    data = load_dataset(spec.adapter, spec.resolve_root(config.data_dir), spec.options)
    data = _subsample(data, config.max_images, config.seed)
    embeddings, _ = embed_images(
        model, data.images, data.fingerprint, config.cache, config.batch_size, config.loader_threads
    )
    kept, labels = _label_indices(task, data)
    groups = None if data.groups is None else [data.groups[i] for i in kept]
    return embeddings[kept], labels, groups


def _run_linear_probe(model, task: TaskSpec, config: EvalConfig, features: np.ndarray, labels: np.ndarray,
                      dataset: EvalDataset | None = None, kept: np.ndarray | None = None) -> dict:
    """k-shot probes (probe.py): official train/validation splits when the task has them, else group-aware splits.

    Never trains on a test image: without a `train:` split the task's images are split by group
    into test / train / validation, and the result lists the test images and says so.
    """
    from biomedica.eval import probe

    groups = None
    if dataset is not None and dataset.groups is not None and kept is not None:
        groups = [dataset.groups[i] for i in kept]
    group_note = "by EvalDataset.groups" if groups is not None else "no groups known: each image its own group"
    try:
        if task.train is not None:
            try:
                train_x, train_y, train_groups = _probe_split(model, task.train, config, task)
                if task.validation is not None:
                    val_x, val_y, _ = _probe_split(model, task.validation, config, task)
                    val_source = "official validation split"
                else:
                    train_idx, val_idx = probe.split_train_validation(train_y, train_groups, config.seed)
                    val_x, val_y = train_x[val_idx], train_y[val_idx]
                    train_x, train_y = train_x[train_idx], train_y[train_idx]
                    val_source = (f"{round(probe.VALIDATION_FRACTION * 100)}% of the train split, "
                                  f"split {'by group' if train_groups is not None else 'per image (no groups known)'}")
            except DatasetMissing as exc:
                return {"skipped": f"training data missing: {exc}"}
            data = probe.ProbeData(train_x, train_y, val_x, val_y, features, labels,
                                   "official train split", val_source)
        else:
            train_idx, val_idx, test_idx = probe.split_test_train_validation(labels, groups, config.seed)
            positions = kept[test_idx] if kept is not None else test_idx
            data = probe.ProbeData(
                features[train_idx], labels[train_idx], features[val_idx], labels[val_idx],
                features[test_idx], labels[test_idx],
                f"NO TRAIN SPLIT: half of the task's images (split {group_note}); the other half is the probe's "
                "test set (test_indices); zero-shot scores use all images",
                f"{round(probe.VALIDATION_FRACTION * 100)}% of that training half, split {group_note}",
                test_indices=[int(i) for i in positions],
            )
        return probe.run_probe(data, task.class_labels, task.metric or "accuracy", config.probe_shots,
                               config.probe_seeds, config.seed, config.n_boot, config.ties)
    except (probe.ProbeUnavailable, ValueError) as exc:
        return {"skipped": str(exc)}


def write_result(result: dict, out_dir: Path, result_format: str = "biomedica") -> Path:
    """Write <out>/<model_slug(spec)>/<task>.json (+ CLIP_benchmark's file in <...>/clip_benchmark/ when asked).

    Two specs with the same slug (`/a/b_c.pt`, `/a_b/c.pt`) never overwrite each other: a
    folder already holding another spec's result gets a short hash of the spec appended.
    """
    spec = result["model"].get("spec") or result["model"]["name"]
    path = result_path(out_dir, spec, result["task_name"])
    if _other_spec(path, spec):
        path = result_path(out_dir, f"{model_slug(spec)}-{hashlib.sha1(spec.encode()).hexdigest()[:8]}", result["task_name"])
    write_text_atomic(path, json.dumps(result, indent=1, allow_nan=False))
    if result_format == "clip_benchmark":
        write_clip_benchmark(result, path.parent / "clip_benchmark")
    return path


def _other_spec(path: Path, spec: str) -> bool:
    """Whether the folder of `path` holds a result of a different model spec (it belongs to another model)."""
    if not path.parent.is_dir():
        return False
    candidates = [path] if path.is_file() else sorted(path.parent.glob("*.json"))[:1]
    for existing in candidates:
        try:
            model = json.loads(existing.read_text(encoding="utf-8")).get("model", {})
        except (OSError, ValueError, AttributeError):
            return False
        return (model.get("spec") or model.get("name")) != spec
    return False


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
        if task.kind != "retrieval" and not has_preset(task, config.prompts):
            log(f"note {task.name}: no {config.prompts} prompts for this task; using the task file's own (recorded)")
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
        path = write_result(result, config.out_dir, config.result_format)
        low, high = result["score_ci95"] or (None, None)
        ci = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
        score = "n/a" if result["score"] is None else f"{result['score']:.3f}"
        if "linear_probe" in result:
            from biomedica.eval.probe import summary_line

            log(summary_line(task.name, result["linear_probe"]))
        unmapped = result.get("n_unmapped_labels") or 0
        left_out = f" ({unmapped} image(s) whose label is not a task class left out)" if unmapped else ""
        log(f"done {task.name}: {result['primary_metric']} {score}{ci} on {result['n_images']} images{left_out} -> {path}")
        outcomes.append(TaskOutcome(task.name, "ok", "", path, result))
    return outcomes
