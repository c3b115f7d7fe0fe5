"""Result files in other tools' formats: CLIP_benchmark 1.6.2 (`--format clip_benchmark`).

CLIP_benchmark's `eval` writes one JSON per (dataset, model, task) (clip_benchmark/cli.py, `dump`):

    {"dataset": ..., "model": ..., "pretrained": ..., "task": "zeroshot_classification" | "zeroshot_retrieval",
     "metrics": {...}, "language": "en"}

named `{dataset}_{pretrained}_{model}_{language}_{task}.json` (its default --output; `pretrained` is the
file's basename when it is a path, `/` in the dataset becomes `_`). Its `build` command turns a
folder of these into a CSV. Metric keys and their meaning (clip_benchmark/metrics):

    zeroshot_classification, single label: acc1, acc5 (NaN when fewer than 5 classes), mean_per_class_recall
        (= sklearn balanced_accuracy_score = our balanced_accuracy)
    zeroshot_classification, multilabel: mean_average_precision over ALL classes, a class without
        positives counting 0 (its average_precision_per_class divides by max(positives, 1))
    zeroshot_retrieval: image_retrieval_recall@k (text query -> image = our text_to_image_rK) and
        text_retrieval_recall@k (image query -> any of its captions = our image_to_text_rK), k = 1, 5, 10
        (CLIP_benchmark's --recall_k 1 5 10)

Like CLIP_benchmark (json.dump's default), an undefined acc5 is written as the bare token NaN.
Ties: CLIP_benchmark ranks by torch.topk order; our default counts ties against the model
(EvalConfig.ties), which only differs when scores tie exactly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from biomedica.eval.prompts import clip_benchmark_dataset
from biomedica.io.atomic import write_text_atomic
from biomedica.models.spec import ModelLoadError, parse_model_spec

FORMATS = ("biomedica", "clip_benchmark")
RETRIEVAL_KS = (1, 5, 10)


def _model_and_pretrained(spec_text: str) -> tuple[str, str]:
    """(--model, --pretrained) as CLIP_benchmark takes them: ARCH and a tag or path; random -> random@SEED."""
    try:
        spec = parse_model_spec(spec_text)
    except ModelLoadError:
        return spec_text, ""
    if spec.is_hub:
        return spec.arch, ""
    if spec.is_random:
        return spec.arch, f"random@{spec.seed}"
    return spec.arch, str(spec.path) if spec.is_path else (spec.pretrained or "")


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def clip_benchmark_metrics(result: dict) -> dict[str, float]:
    """CLIP_benchmark's metric dict from one of our result dicts (keys and conventions in the module docstring)."""
    metrics = result["metrics"]
    if result["kind"] == "retrieval":
        out = {}
        for k in RETRIEVAL_KS:
            out[f"image_retrieval_recall@{k}"] = _number(metrics.get(f"text_to_image_r{k}"))
            out[f"text_retrieval_recall@{k}"] = _number(metrics.get(f"image_to_text_r{k}"))
        return out
    if result["kind"] == "multilabel":
        per_class = [v.get("average_precision") for v in result["per_class"].values()]
        values = [0.0 if v is None else float(v) for v in per_class]  # no positives -> 0, as CLIP_benchmark
        return {"mean_average_precision": sum(values) / len(values) if values else float("nan")}
    n_classes = len(result["per_class"])
    if n_classes < 5:
        acc5 = float("nan")
    elif n_classes == 5:
        acc5 = 1.0  # every class is within the top 5
    else:
        acc5 = _number(metrics.get("top5_accuracy"))
    return {"acc1": _number(metrics["accuracy"]), "acc5": acc5,
            "mean_per_class_recall": _number(metrics["balanced_accuracy"])}


def clip_benchmark_record(result: dict) -> dict:
    """The JSON CLIP_benchmark's `eval` would dump for this task and model."""
    model, pretrained = _model_and_pretrained(result["model"].get("spec") or result["model"]["name"])
    task = "zeroshot_retrieval" if result["kind"] == "retrieval" else "zeroshot_classification"
    return {
        "dataset": clip_benchmark_dataset(result["task_name"]) or result["task_name"],
        "model": model,
        "pretrained": pretrained,
        "task": task,
        "metrics": clip_benchmark_metrics(result),
        "language": "en",
    }


def clip_benchmark_filename(record: dict) -> str:
    """CLIP_benchmark's default output name, {dataset}_{pretrained}_{model}_{language}_{task}.json, made file-safe."""
    pretrained = Path(record["pretrained"]).name if "/" in record["pretrained"] else record["pretrained"]
    name = f"{record['dataset'].replace('/', '_')}_{pretrained}_{record['model']}_{record['language']}_{record['task']}"
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", name) + ".json"


def write_clip_benchmark(result: dict, folder: Path) -> Path:
    """Write the CLIP_benchmark-format JSON of one result into `folder` (bare NaN allowed, as json.dump writes it)."""
    record = clip_benchmark_record(result)
    path = Path(folder) / clip_benchmark_filename(record)
    write_text_atomic(path, json.dumps(record))
    return path
