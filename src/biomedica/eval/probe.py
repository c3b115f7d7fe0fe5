"""Linear probe on frozen features as the field runs it: k-shot draws, C chosen on a validation split.

Protocol (CLIP paper, Radford et al. 2021, appendix A.3; LAION CLIP_benchmark
`clip_benchmark/metrics/linear_probe.py`, checked at commit 48de38c):

- classifier: scikit-learn L-BFGS logistic regression, max 1000 iterations, on the L2-normalised
  image features (CLIP paper; CLIP_benchmark trains a linear layer with AdamW instead, same sweep).
- regularisation: C swept over 97 log-spaced values 1e-6..1e6 (8 per decade) by the parametric
  binary search of both: start at 1e-6, 1e-4, ..., 1e6, then look left/right of the best at half
  the step (8, 4, 2, 1 grid steps). The best validation top-1 accuracy wins; a tie keeps the
  stronger regularisation (smaller C).
- validation: the task's official `validation:` split when it has one, else a group-aware split of
  the training data (20%, CLIP_benchmark's `--val_proportion`, but never splitting a group).
- final fit: "full" refits on train + validation at the chosen C (CLIP paper "we combine the
  validation split back with the training split", CLIP_benchmark `fewshot_k < 0`); a k-shot fit
  uses the k images per class only (CLIP_benchmark: adding the validation set "would train on more
  data than intended"); the validation split used to choose C is the whole one in both cases.
- k-shot: k images of each class drawn from the training split without replacement, one draw per
  seed (CLIP_benchmark draws once per `--seed`); a k larger than a class's images is skipped with
  the reason (CLIP_benchmark stops with "insufficient data").
- report per k: mean over draws with a 95% t-interval over draws; for "full" (one fit) the CI is a
  bootstrap over test images.
- no train split: the task's images are split by group (EvalDataset.groups: patient, lesion,
  source image; else each image alone) into test (50%) and a pool, the pool into train / validation;
  the result lists exactly which images were test and says so in `train_source`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

C_GRID = np.logspace(-6, 6, 97)  # 8 steps per decade, CLIP paper A.3
C_START = tuple(range(0, 97, 16))  # 1e-6, 1e-4, ..., 1e6
VALIDATION_FRACTION = 0.2
DEFAULT_SHOTS: tuple[int | str, ...] = (1, 2, 4, 8, 16, "full")


class ProbeUnavailable(RuntimeError):
    """The probe cannot run (scikit-learn missing, one class only); the message says why."""


def _logistic_regression(c: float):
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise ProbeUnavailable("linear probe needs scikit-learn: pip install 'biomedica[eval]'") from None
    return LogisticRegression(C=float(c), max_iter=1000, solver="lbfgs")


def fit(x: np.ndarray, y: np.ndarray, c: float):
    """A fitted L-BFGS logistic regression; convergence warnings are silenced (the sweep expects some)."""
    from sklearn.exceptions import ConvergenceWarning

    model = _logistic_regression(c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return model


def class_logits(model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """n x n_classes linear logits (softmax of them = predict_proba); classes the fit never saw get -inf."""
    decision = model.decision_function(x)
    if decision.ndim == 1:  # binary: predict_proba = sigmoid(d) = softmax([0, d])
        decision = np.stack([np.zeros_like(decision), decision], axis=1)
    out = np.full((len(x), n_classes), -np.inf)
    out[:, model.classes_] = decision
    return out


def choose_regularization(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
                          ) -> tuple[float, dict[float, float]]:
    """(best C, validation accuracy of every C tried) by the CLIP paper's parametric binary search."""
    if len(np.unique(train_y)) < 2:
        raise ProbeUnavailable("the training draw has one class only")
    tried: dict[int, float] = {}

    def accuracy(index: int) -> float:
        if index not in tried:
            tried[index] = float(np.mean(fit(train_x, train_y, C_GRID[index]).predict(val_x) == val_y))
        return tried[index]

    def best(indices: Sequence[int]) -> int:  # highest accuracy; ties -> smaller C (stronger regularisation)
        return max(sorted(set(indices)), key=lambda i: (accuracy(i), -i))

    peak = best(C_START)
    step = 8
    while step > 0:
        peak = best([max(peak - step, 0), peak, min(peak + step, len(C_GRID) - 1)])
        step //= 2
    return float(C_GRID[peak]), {float(C_GRID[i]): v for i, v in sorted(tried.items())}


def draw_shots(labels: np.ndarray, k: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """k indices of each class present in `labels`, without replacement; ValueError names a class too small."""
    chosen = []
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        if len(members) == 0:
            continue
        if len(members) < k:
            raise ValueError(f"class index {c} has {len(members)} training image(s), fewer than {k}")
        chosen.extend(rng.choice(members, size=k, replace=False).tolist())
    return np.sort(np.array(chosen, dtype=int))


def group_folds(labels: np.ndarray, groups: Sequence | None, n_folds: int, seed: int) -> list[np.ndarray]:
    """Index folds that keep every group whole, class balance as even as the groups allow (seeded).

    scikit-learn's StratifiedGroupKFold; without groups each image is its own group.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.asarray(labels)
    group_ids = np.arange(len(labels)) if groups is None else np.unique(np.asarray(groups, dtype=str),
                                                                         return_inverse=True)[1]
    n_groups = len(np.unique(group_ids))
    if n_groups < n_folds:
        raise ValueError(f"{n_groups} group(s) cannot be split into {n_folds} parts")
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the least populated class has only n members"
        return [np.sort(test) for _, test in splitter.split(np.zeros(len(labels)), labels, group_ids)]


def split_train_validation(labels: np.ndarray, groups: Sequence | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: one of 1/VALIDATION_FRACTION group-aware folds is validation."""
    folds = group_folds(labels, groups, round(1 / VALIDATION_FRACTION), seed)
    return np.sort(np.concatenate(folds[1:])), folds[0]


def split_test_train_validation(labels: np.ndarray, groups: Sequence | None, seed: int
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) indices of one labelled set: half the groups test, the rest train/val."""
    test, pool = group_folds(labels, groups, 2, seed)
    pool_groups = None if groups is None else [groups[i] for i in pool]
    train, val = split_train_validation(labels[pool], pool_groups, seed)
    return pool[train], pool[val], test


@dataclass
class ProbeData:
    """Features and int labels of the three splits, and where they came from (recorded in the result)."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    train_source: str
    validation_source: str
    test_indices: list[int] | None = None  # positions in the task's image listing, when test is a part of it


def _t_interval(values: np.ndarray) -> list[float | None]:
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return [None, None]
    from scipy import stats

    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return [round(float(values.mean() - half), 6), round(float(values.mean() + half), 6)]


def run_probe(data: ProbeData, class_labels: Sequence[str], primary: str, shots: Sequence[int | str] = DEFAULT_SHOTS,
              n_draws: int = 5, seed: int = 0, n_boot: int = 1000, ties: str = "pessimistic",
              progress=None) -> dict:
    """Probe results per k: mean and CI over draws, each draw's C and metrics; the splits it used.

    `progress(done, total)` is called after each fit (sweep included) is finished.
    """
    from biomedica.eval.scoring import score_classification

    n_classes = len(class_labels)
    if len(np.unique(data.train_y)) < 2:
        raise ProbeUnavailable("the training split has fewer than two classes")
    per_k: dict[str, dict] = {}
    total = sum(1 if k == "full" else n_draws for k in shots)
    done = 0
    for k in shots:
        key = str(k)
        draws = []
        for draw in range(1 if k == "full" else n_draws):
            draw_seed = seed + draw
            if k == "full":
                idx = np.arange(len(data.train_y))
            else:
                try:
                    idx = draw_shots(data.train_y, int(k), n_classes, np.random.default_rng(draw_seed))
                except ValueError as exc:
                    per_k[key] = {"skipped": f"{k}-shot: {exc}"}
                    break
            x, y = data.train_x[idx], data.train_y[idx]
            if len(np.unique(y)) < 2:
                per_k[key] = {"skipped": f"{k}-shot: the draw has one class only"}
                break
            c, tried = choose_regularization(x, y, data.val_x, data.val_y)
            if k == "full":  # refit on train + validation (CLIP paper, CLIP_benchmark)
                x = np.concatenate([x, data.val_x])
                y = np.concatenate([y, data.val_y])
            model = fit(x, y, c)
            logits = class_logits(model, data.test_x, n_classes)
            scores = score_classification(logits, data.test_y, class_labels, primary,
                                          n_boot if k == "full" else 0, draw_seed, ties=ties)
            draws.append({
                "seed": draw_seed, "C": c, "validation_accuracy": tried[c], "n_train": len(y),
                "metrics": scores["metrics"], "ci95_bootstrap": scores["ci95"] if k == "full" else None,
                "C_tried": {f"{ci:.3g}": round(acc, 6) for ci, acc in tried.items()},
            })
            done += 1
            if progress:
                progress(done, total)
        if key in per_k:
            continue
        names = list(draws[0]["metrics"])
        mean, ci = {}, {}
        for name in names:
            values = np.array([np.nan if d["metrics"][name] is None else d["metrics"][name] for d in draws])
            defined = values[~np.isnan(values)]
            mean[name] = round(float(defined.mean()), 6) if defined.size else None
            ci[name] = draws[0]["ci95_bootstrap"].get(name, [None, None]) if k == "full" else _t_interval(values)
        per_k[key] = {
            "metrics": mean,
            "ci95": ci,
            "ci_method": "bootstrap over test images" if k == "full" else f"t-interval over {len(draws)} draws",
            "n_draws": len(draws),
            "draws": draws,
        }
    primary_metric = primary if primary in next(
        (v["metrics"] for v in per_k.values() if "metrics" in v), {primary: None}) else "accuracy"
    result = {
        "protocol": "L-BFGS logistic regression; C from 97 log-spaced values 1e-6..1e6 by parametric binary search "
                    "on the validation split (CLIP paper A.3); full refits on train+validation, k-shot on its draw",
        "primary_metric": primary_metric,
        "shots": per_k,
        "train_source": data.train_source,
        "validation_source": data.validation_source,
        "n_train": len(data.train_y),
        "n_validation": len(data.val_y),
        "n_test": len(data.test_y),
        "ties": ties,
    }
    if data.test_indices is not None:
        result["test_indices"] = [int(i) for i in data.test_indices]
    full = per_k.get("full", {})
    if "metrics" in full:  # today's flat keys stay: the full-data probe
        result["accuracy"] = full["metrics"].get("accuracy")
        result["balanced_accuracy"] = full["metrics"].get("balanced_accuracy")
        result["regularization"] = full["draws"][0]["C"]
    return result


def summary_line(task_name: str, result: dict) -> str:
    """One line for the run log: per-k primary metric, and where the training data came from."""
    if "skipped" in result:
        return f"probe {task_name}: skipped ({result['skipped']})"
    metric = result["primary_metric"]
    parts = []
    for k, entry in result["shots"].items():
        value = entry.get("metrics", {}).get(metric)
        parts.append(f"{k}:{'n/a' if value is None else f'{value:.3f}'}")
    return (f"probe {task_name}: {metric} by shots {' '.join(parts)}; train = {result['train_source']}; "
            f"validation = {result['validation_source']}; {result['n_test']} test images")
