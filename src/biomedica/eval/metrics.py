"""Evaluation metrics as pure numpy functions: classification, multilabel, retrieval, bootstrap.

No torch here: every function takes arrays of scores and labels, so the metrics are tested
on hand-computed cases and reused on cached embeddings. Conventions (documented once):

- labels are integer class indices 0..C-1; a class in the task but absent from the labels is
  "missing": its recall is NaN and it is left out of balanced accuracy and macro means.
- argmax ties go to the lowest class index (numpy's rule).
- ranking ties in top-k and retrieval (`ties`, EvalConfig.ties):
  "pessimistic" (default): every tie counts against the query, so identical embeddings never look
  like a perfect model; "clip_benchmark": the order torch.topk returns, exactly as LAION
  CLIP_benchmark's `accuracy()` and `recall_at_k()` (clip_benchmark/metrics/zeroshot_*.py). torch
  does not specify that order for ties (it differs by device and size), so this reproduces their
  number on the same device, nothing more; "optimistic": every tie counts for the query (an upper
  bound). With distinct scores all three agree.
- AUROC ties between a positive and a negative count one half (Mann-Whitney).
- an undefined value (AUROC with one class present, mAP of a class with no positive) is NaN;
  results files write it as null.

Two macro-AUROC conventions (both reported, named):
- `macro_auroc`: each class's raw logit column (zero-shot: 100 x cosine similarity with the class
  prompt) against the rest, averaged over classes with both positives and negatives; this
  harness's number since the start, and what "one class vs rest" zero-shot scoring per prompt gives.
- `macro_auroc_ovr_softmax`: scikit-learn `roc_auc_score(y, softmax(logits), multi_class="ovr",
  average="macro")`: the softmax couples the classes, so it differs from the raw-logit value; this
  is what code that feeds predicted probabilities to scikit-learn reports (typical of linear-probe
  and supervised baselines). Equality with scikit-learn is tested (tests/eval/test_metrics.py).

Two multilabel mAP conventions (both reported, named):
- `mean_average_precision`: mean AP over classes with at least one positive in the test set
  (a class without positives has no defined AP; torchmetrics' macro average drops NaN classes too).
- `mean_average_precision_all`: mean over every class, a class without positives counting 0:
  what scikit-learn `average_precision_score(average="macro")` returns (it sets recall to 1 and
  the AP to 0 for such a class) and what CLIP_benchmark's `average_precision_per_class` gives
  (`precision[truth].sum() / max(n_positive, 1)`), so its `mean_average_precision` equals this one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose highest logit is the true class."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return float("nan")
    return float(np.mean(np.argmax(logits, axis=1) == labels))


TIES = ("pessimistic", "clip_benchmark", "optimistic")


def _check_ties(ties: str) -> None:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {', '.join(TIES)}, not {ties!r}")


def torch_topk_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Row-wise top-k column indices in torch.topk's order (CLIP_benchmark's tie rule), on CPU float32."""
    import torch

    k = min(k, scores.shape[1])
    return torch.topk(torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32)), k, dim=1)[1].numpy()


def topk_hits(logits: np.ndarray, labels: np.ndarray, k: int, ties: str = "pessimistic") -> np.ndarray:
    """Per row: whether the true class is among the top k under the `ties` rule (module docstring)."""
    _check_ties(ties)
    labels = np.asarray(labels)
    if ties == "clip_benchmark":
        return (torch_topk_indices(logits, k) == labels[:, None]).any(axis=1)
    true = logits[np.arange(len(labels)), labels]
    if ties == "optimistic":
        return (logits > true[:, None]).sum(axis=1) < k
    return (logits >= true[:, None]).sum(axis=1) - 1 < k


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int, ties: str = "pessimistic") -> float:
    """Fraction of rows whose true class is in the top k; by default ties count against."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return float("nan")
    return float(np.mean(topk_hits(logits, labels, k, ties)))


def per_class_recall(predictions: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Recall of each class (length n_classes); NaN for a class with no sample."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    support = np.bincount(labels, minlength=n_classes).astype(float)
    hits = np.bincount(labels[predictions == labels], minlength=n_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, hits / np.maximum(support, 1), np.nan)


def balanced_accuracy(predictions: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """Mean recall over the classes present in `labels` (missing classes are left out)."""
    recalls = per_class_recall(predictions, labels, n_classes)
    present = recalls[~np.isnan(recalls)]
    return float(present.mean()) if present.size else float("nan")


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (as scipy.stats.rankdata 'average'), vectorised."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts  # 0-based position of each distinct value's first copy
    return (starts + (counts + 1) / 2.0)[inverse.reshape(-1)]


def binary_auroc(scores: np.ndarray, is_positive: np.ndarray) -> float:
    """Area under the ROC curve; ties count one half; NaN unless both classes are present."""
    scores, is_positive = np.asarray(scores, dtype=float), np.asarray(is_positive, dtype=bool)
    n_pos, n_neg = int(is_positive.sum()), int((~is_positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(scores)
    return float((ranks[is_positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def macro_auroc(logits: np.ndarray, labels: np.ndarray) -> float:
    """One-vs-rest AUROC averaged over classes present with both positives and negatives."""
    values = [binary_auroc(logits[:, c], labels == c) for c in range(logits.shape[1])]
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def macro_auroc_ovr_softmax(logits: np.ndarray, labels: np.ndarray) -> float:
    """scikit-learn's roc_auc_score(labels, softmax(logits), multi_class="ovr") (macro); classes absent: left out."""
    return macro_auroc(softmax(np.asarray(logits, dtype=float)), labels)


def average_precision(scores: np.ndarray, is_positive: np.ndarray) -> float:
    """Average precision (area under precision-recall, step-wise; tied scores form one step); NaN without positives."""
    scores, is_positive = np.asarray(scores, dtype=float), np.asarray(is_positive, dtype=bool)
    n_pos = int(is_positive.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_pos = scores[order], is_positive[order]
    # one threshold per distinct score: the last index of each run of equal scores
    last_of_run = np.flatnonzero(np.r_[np.diff(sorted_scores) != 0, True])
    true_pos = np.cumsum(sorted_pos)[last_of_run]
    predicted = last_of_run + 1
    precision = true_pos / predicted
    recall = true_pos / n_pos
    recall_steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_steps * precision))


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Multilabel mAP: (mean over classes with a positive, AP per class with NaN for the others)."""
    targets = np.asarray(targets, dtype=bool)
    per_class = np.array([average_precision(scores[:, c], targets[:, c]) for c in range(scores.shape[1])])
    defined = per_class[~np.isnan(per_class)]
    return (float(defined.mean()) if defined.size else float("nan")), per_class


def mean_average_precision_all(scores: np.ndarray, targets: np.ndarray) -> float:
    """Multilabel mAP over every class, a class without positives counting 0 (scikit-learn, CLIP_benchmark)."""
    _, per_class = mean_average_precision(scores, targets)
    return float(np.nan_to_num(per_class, nan=0.0).mean()) if per_class.size else float("nan")


def text_to_image_positions(similarity: np.ndarray, caption_image: np.ndarray, ties: str = "pessimistic") -> np.ndarray:
    """For each caption (row of similarity, shape captions x images): 0-based position of its image.

    Position = how many other images score at least as high ("pessimistic") or higher ("optimistic").
    """
    _check_ties(ties)
    if ties == "clip_benchmark":
        raise ValueError("clip_benchmark ties have no position; use retrieval_hits")
    caption_image = np.asarray(caption_image)
    true = similarity[np.arange(len(caption_image)), caption_image]
    if ties == "optimistic":
        return (similarity > true[:, None]).sum(axis=1)
    return (similarity >= true[:, None]).sum(axis=1) - 1


def image_to_text_positions(similarity: np.ndarray, caption_image: np.ndarray, ties: str = "pessimistic") -> np.ndarray:
    """For each image: 0-based position of its best caption among all captions.

    An image with several captions is a hit when any of them is retrieved; the position is the
    number of other images' captions scoring at least as high ("pessimistic") or higher
    ("optimistic") than its best own caption. `similarity` is captions x images.
    """
    _check_ties(ties)
    if ties == "clip_benchmark":
        raise ValueError("clip_benchmark ties have no position; use retrieval_hits")
    caption_image = np.asarray(caption_image)
    n_images = similarity.shape[1]
    by_image = similarity.T  # images x captions
    own = caption_image[None, :] == np.arange(n_images)[:, None]
    best_own = np.where(own, by_image, -np.inf).max(axis=1)
    beats = by_image > best_own[:, None] if ties == "optimistic" else by_image >= best_own[:, None]
    return np.where(own, False, beats).sum(axis=1)


def retrieval_hits(similarity: np.ndarray, caption_image: np.ndarray, ks: Sequence[int],
                   ties: str = "pessimistic") -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """k -> (image->text hit per image, text->image hit per caption) under the `ties` rule.

    "clip_benchmark" runs torch.topk(k) per k as CLIP_benchmark's recall_at_k does (an image is a
    hit when any of its captions is in its top k texts).
    """
    caption_image = np.asarray(caption_image)
    if ties != "clip_benchmark":
        i2t = image_to_text_positions(similarity, caption_image, ties)
        t2i = text_to_image_positions(similarity, caption_image, ties)
        return {k: (i2t < k, t2i < k) for k in ks}
    hits = {}
    for k in ks:
        t2i = (torch_topk_indices(similarity, k) == caption_image[:, None]).any(axis=1)
        top_texts = torch_topk_indices(np.ascontiguousarray(similarity.T), k)  # images x k caption indices
        i2t = (caption_image[top_texts] == np.arange(similarity.shape[1])[:, None]).any(axis=1)
        hits[k] = (i2t, t2i)
    return hits


def recall_at_k(positions: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """Fraction of queries whose target position is below k, for each k."""
    positions = np.asarray(positions)
    if positions.size == 0:
        return {k: float("nan") for k in ks}
    return {k: float(np.mean(positions < k)) for k in ks}


def bootstrap_replicates(
    statistic: Callable[[np.ndarray], float], n: int, n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
    """`statistic(indices)` on n_boot resamples (with replacement) of range(n); seeded, reproducible."""
    rng = np.random.default_rng(seed)
    return np.array([statistic(rng.integers(0, n, size=n)) for _ in range(n_boot)], dtype=float)


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile confidence interval of bootstrap replicates, ignoring NaN replicates."""
    replicates = np.asarray(replicates, dtype=float)
    replicates = replicates[~np.isnan(replicates)]
    if replicates.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)


def unweighted_mean(values: Mapping[str, float]) -> float:
    """Mean over tasks, each task counting once (as DataComp); NaN values are left out."""
    defined = [v for v in values.values() if v is not None and not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def mean_of_replicates(replicate_sets: Sequence[np.ndarray], confidence: float = 0.95) -> tuple[float, float]:
    """CI of a mean over tasks: average the tasks' bootstrap replicates index by index, then take percentiles.

    Tasks are resampled independently, so replicate i of the mean is the mean of the tasks'
    replicate i; sets of different lengths are cut to the shortest.
    """
    sets = [np.asarray(r, dtype=float) for r in replicate_sets if r is not None and len(r)]
    if not sets:
        return float("nan"), float("nan")
    length = min(len(r) for r in sets)
    stacked = np.stack([r[:length] for r in sets])
    return percentile_interval(np.nanmean(stacked, axis=0), confidence)
