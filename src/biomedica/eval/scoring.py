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
    logits: np.ndarray, labels: np.ndarray, class_labels: Sequence[str], primary: str, n_boot: int, seed: int
) -> dict:
    """Top-1 (and top-5 when >5 classes), balanced accuracy, per-class recall, AUROC; CIs by bootstrap."""
    n_classes = len(class_labels)
    predictions = np.argmax(logits, axis=1)

    if primary not in ("accuracy", "balanced_accuracy", "top5_accuracy", "auroc", "macro_auroc"):
        primary = "accuracy"
    # macro AUROC sorts once per class: bootstrapped only when it is the primary metric (speed)
    with_macro_auroc = n_classes > 2

    def all_metrics(idx: np.ndarray | None, macro: bool) -> dict[str, float]:
        lg, lb, pr = (logits, labels, predictions) if idx is None else (logits[idx], labels[idx], predictions[idx])
        values = {
            "accuracy": float(np.mean(pr == lb)),
            "balanced_accuracy": M.balanced_accuracy(pr, lb, n_classes),
        }
        if n_classes == 2:
            values["auroc"] = M.binary_auroc(lg[:, 1] - lg[:, 0], lb == 1)
        elif macro:
            values["macro_auroc"] = M.macro_auroc(lg, lb)
        if n_classes > 5:
            values["top5_accuracy"] = M.topk_accuracy(lg, lb, 5)
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
    """Mean average precision over classes with a positive, per-class AP, macro AUROC; CI by bootstrap."""

    def all_metrics(idx: np.ndarray | None) -> dict[str, float]:
        s, t = (scores, targets) if idx is None else (scores[idx], targets[idx])
        aurocs = [M.binary_auroc(s[:, c], t[:, c]) for c in range(t.shape[1])]
        defined = [a for a in aurocs if not np.isnan(a)]
        return {
            "mean_average_precision": M.mean_average_precision(s, t)[0],
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
                    n_boot: int, seed: int) -> dict:
    """Image->text and text->image recall@1/5/10 (several captions per image); CIs resample images."""
    similarity = text_embeddings @ image_embeddings.T
    i2t = M.image_to_text_positions(similarity, caption_image)
    t2i = M.text_to_image_positions(similarity, caption_image)
    n_images = image_embeddings.shape[0]
    captions_of = [np.flatnonzero(caption_image == i) for i in range(n_images)]

    def all_metrics(image_idx: np.ndarray | None) -> dict[str, float]:
        if image_idx is None:
            p_i2t, p_t2i = i2t, t2i
        else:  # resample images; each image brings its own captions as text queries
            p_i2t = i2t[image_idx]
            p_t2i = t2i[np.concatenate([captions_of[i] for i in image_idx])]
        values = {}
        for k, v in M.recall_at_k(p_i2t, RETRIEVAL_KS).items():
            values[f"image_to_text_r{k}"] = v
        for k, v in M.recall_at_k(p_t2i, RETRIEVAL_KS).items():
            values[f"text_to_image_r{k}"] = v
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


def stratified_halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: each class split in half at random (seeded); a class of one goes to test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = len(members) // 2
        train.extend(members[:cut])
        test.extend(members[cut:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(test, dtype=int))


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 n_classes: int, seed: int, regularization: float = 1.0) -> dict:
    """Logistic regression on frozen features (scikit-learn): accuracy and balanced accuracy on test."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return {"skipped": "linear probe needs scikit-learn: pip install 'biomedica[eval]'"}
    if len(np.unique(train_y)) < 2:
        return {"skipped": "linear probe needs at least two classes in the training split"}
    classifier = LogisticRegression(C=regularization, max_iter=2000, random_state=seed)
    classifier.fit(train_x, train_y)
    predictions = classifier.predict(test_x)
    return {
        "accuracy": _clean(float(np.mean(predictions == test_y))),
        "balanced_accuracy": _clean(M.balanced_accuracy(predictions, test_y, n_classes)),
        "n_train": int(len(train_y)),
        "n_test": int(len(test_y)),
        "regularization": regularization,
    }
