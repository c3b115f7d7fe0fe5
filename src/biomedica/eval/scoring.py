"""Turn embeddings into task scores: zero-shot classification, multilabel, retrieval, linear probe.

Inputs are numpy arrays (normalised embeddings, label indices); outputs are plain dicts that
go straight into the results JSON. Bootstrap CIs resample the test images with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from biomedica.eval import metrics as M

RETRIEVAL_KS = (1, 5, 10)


def _clean(value: float) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 6)


def _interval(replicates: np.ndarray) -> list[float | None]:
    low, high = M.percentile_interval(replicates)
    return [_clean(low), _clean(high)]


def class_prompts(class_names: Sequence[Sequence[str]], templates: Sequence[str]) -> list[list[str]]:
    """Every (name, template) prompt of each class, e.g. [["a CT scan.", "a CT image."], ...]."""
    return [[template.replace("{c}", name) for name in names for template in templates] for names in class_names]


def ensemble_class_embeddings(prompt_embeddings: np.ndarray, prompts_per_class: Sequence[int]) -> np.ndarray:
    """Mean of each class's normalised prompt embeddings, re-normalised (CLIP's template ensemble)."""
    bounds = np.cumsum([0, *prompts_per_class])
    means = np.stack([prompt_embeddings[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
    return means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)


def score_classification(
    logits: np.ndarray, labels: np.ndarray, class_labels: Sequence[str], primary: str, n_boot: int, seed: int,
    ties: str = "pessimistic",
) -> dict:
    """Top-1 (and top-5 when >5 classes), balanced accuracy, per-class recall, AUROC; CIs by bootstrap.

    Both macro-AUROC conventions (metrics module docstring) when there are more than two classes.
    `ties` applies to top-5; top-1 is argmax (lowest index wins a tie) except under "clip_benchmark"
    (its acc1 is the first torch.topk index; its balanced accuracy uses argmax, as here).
    """
    n_classes = len(class_labels)
    predictions = np.argmax(logits, axis=1)
    top1_hits = predictions == labels
    if ties == "clip_benchmark":  # its accuracy(): row 0 of torch.topk(max(topk)), topk=(1, 5) from 5 classes
        top1_hits = M.torch_topk_indices(logits, 5 if n_classes >= 5 else 1)[:, 0] == labels
    top5_hits = M.topk_hits(logits, labels, 5, ties) if n_classes > 5 else None

    if primary not in ("accuracy", "balanced_accuracy", "top5_accuracy", "auroc", "macro_auroc"):
        primary = "accuracy"
    # macro AUROC sorts once per class: bootstrapped only when it is the primary metric (speed)
    with_macro_auroc = n_classes > 2

    def all_metrics(idx: np.ndarray | None, macro: bool) -> dict[str, float]:
        every = slice(None) if idx is None else idx
        lg, lb, pr = logits[every], labels[every], predictions[every]
        values = {
            "accuracy": float(np.mean(top1_hits[every])),
            "balanced_accuracy": M.balanced_accuracy(pr, lb, n_classes),
        }
        if n_classes == 2:
            values["auroc"] = M.binary_auroc(lg[:, 1] - lg[:, 0], lb == 1)
        elif macro:
            values["macro_auroc"] = M.macro_auroc(lg, lb)
            values["macro_auroc_ovr_softmax"] = M.macro_auroc_ovr_softmax(lg, lb)
        if top5_hits is not None:
            values["top5_accuracy"] = float(np.mean(top5_hits[every]))
        return values

    point = all_metrics(None, with_macro_auroc)
    boot_macro = with_macro_auroc and primary == "macro_auroc"
    replicates = {name: [] for name in all_metrics(None, boot_macro)}
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        for name, value in all_metrics(rng.integers(0, len(labels), size=len(labels)), boot_macro).items():
            replicates[name].append(value)
    recalls = M.per_class_recall(predictions, labels, n_classes)
    support = np.bincount(labels, minlength=n_classes)
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (labels, predictions), 1)
    if primary not in point:
        primary = "accuracy"
    return {
        "primary_metric": primary,
        "metrics": {k: _clean(v) for k, v in point.items()},
        "ci95": {k: _interval(np.array(v)) for k, v in replicates.items()},
        "bootstrap": [_clean(v) for v in replicates[primary]],
        "per_class": {
            label: {"recall": _clean(r), "support": int(s)} for label, r, s in zip(class_labels, recalls, support)
        },
        "confusion_matrix": confusion.tolist(),
    }


def score_multilabel(scores: np.ndarray, targets: np.ndarray, class_labels: Sequence[str], n_boot: int, seed: int) -> dict:
    """mAP (classes with a positive; and over all classes, see metrics), per-class AP, macro AUROC; bootstrap CIs."""

    def all_metrics(idx: np.ndarray | None) -> dict[str, float]:
        s, t = (scores, targets) if idx is None else (scores[idx], targets[idx])
        aurocs = [M.binary_auroc(s[:, c], t[:, c]) for c in range(t.shape[1])]
        defined = [a for a in aurocs if not np.isnan(a)]
        return {
            "mean_average_precision": M.mean_average_precision(s, t)[0],
            "mean_average_precision_all": M.mean_average_precision_all(s, t),
            "macro_auroc": float(np.mean(defined)) if defined else float("nan"),
        }

    point = all_metrics(None)
    rng = np.random.default_rng(seed)
    replicates = {name: [] for name in point}
    for _ in range(n_boot):
        for name, value in all_metrics(rng.integers(0, len(targets), size=len(targets))).items():
            replicates[name].append(value)
    _, per_class_ap = M.mean_average_precision(scores, targets)
    return {
        "primary_metric": "mean_average_precision",
        "metrics": {k: _clean(v) for k, v in point.items()},
        "ci95": {k: _interval(np.array(v)) for k, v in replicates.items()},
        "bootstrap": [_clean(v) for v in replicates["mean_average_precision"]],
        "per_class": {
            label: {"average_precision": _clean(ap), "support": int(n)}
            for label, ap, n in zip(class_labels, per_class_ap, targets.sum(axis=0))
        },
    }


def score_retrieval(image_embeddings: np.ndarray, text_embeddings: np.ndarray, caption_image: np.ndarray,
                    n_boot: int, seed: int, ties: str = "pessimistic") -> dict:
    """Image->text and text->image recall@1/5/10 (several captions per image); CIs resample images."""
    similarity = text_embeddings @ image_embeddings.T
    hits = M.retrieval_hits(similarity, caption_image, RETRIEVAL_KS, ties)
    n_images = image_embeddings.shape[0]
    captions_of = [np.flatnonzero(caption_image == i) for i in range(n_images)]

    def all_metrics(image_idx: np.ndarray | None) -> dict[str, float]:
        # resample images; each image brings its own captions as text queries
        text_idx = None if image_idx is None else np.concatenate([captions_of[i] for i in image_idx])
        values = {}
        for k in RETRIEVAL_KS:
            i2t = hits[k][0] if image_idx is None else hits[k][0][image_idx]
            values[f"image_to_text_r{k}"] = float(np.mean(i2t)) if i2t.size else float("nan")
        for k in RETRIEVAL_KS:
            t2i = hits[k][1] if text_idx is None else hits[k][1][text_idx]
            values[f"text_to_image_r{k}"] = float(np.mean(t2i)) if t2i.size else float("nan")
        values["mean_recall"] = float(np.mean(list(values.values())))
        return values

    point = all_metrics(None)
    rng = np.random.default_rng(seed)
    replicates = {name: [] for name in point}
    for _ in range(n_boot):
        for name, value in all_metrics(rng.integers(0, n_images, size=n_images)).items():
            replicates[name].append(value)
    return {
        "primary_metric": "mean_recall",
        "metrics": {k: _clean(v) for k, v in point.items()},
        "ci95": {k: _interval(np.array(v)) for k, v in replicates.items()},
        "bootstrap": [_clean(v) for v in replicates["mean_recall"]],
        "n_captions": int(len(caption_image)),
    }
