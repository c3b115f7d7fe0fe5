"""Panel detection and subcaption metrics, as the subfigure literature reports them.

Boxes are compared per figure; a figure judged single is evaluated as one whole-image box on
both sides (`figure_boxes` does that for a detector's [] or one box), so a detector that calls
a single figure single scores a hit, and one that splits it scores misses and extras.

- `average_precision`: PASCAL VOC all-point interpolated AP, every figure's predictions pooled
  and ranked by score (greedy matching to the best unmatched truth box of the same figure).
- `mean_iou`: mean over truth boxes of the best IoU with a prediction of the same figure.
- `figure_accuracy`: share of figures whose predictions match every truth box one-to-one at
  IoU >= 0.5 with no extra prediction (the ImageCLEF 2016 "separation accuracy" reading).
- `subcaption_exact_match`: a caption's split equals the hand split (lead and every
  label -> text), after normalising whitespace and dashes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from biomedica.curate.subfigures.boxes import Box, whole_image


def figure_boxes(boxes: Sequence[Box], width: int, height: int) -> list[Box]:
    """Boxes as evaluated: none or one box (a single figure) is the whole image."""
    if len(boxes) <= 1:
        return [whole_image(width, height, boxes[0].score if boxes else 1.0)]
    return list(boxes)


def match_boxes(pred: Sequence[Box], truth: Sequence[Box], iou: float = 0.5) -> list[tuple[int, int, float]]:
    """One-to-one (pred index, truth index, IoU) pairs with IoU >= `iou`, highest IoU first (greedy)."""
    pairs = sorted(
        ((p.iou(t), i, j) for i, p in enumerate(pred) for j, t in enumerate(truth)),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    used_pred: set[int] = set()
    used_truth: set[int] = set()
    matches = []
    for overlap, i, j in pairs:
        if overlap < iou:
            break
        if i in used_pred or j in used_truth:
            continue
        used_pred.add(i)
        used_truth.add(j)
        matches.append((i, j, overlap))
    return matches


def average_precision(preds: Sequence[Sequence[Box]], truths: Sequence[Sequence[Box]], iou: float = 0.5) -> float:
    """VOC all-point AP over all figures pooled; predictions ranked by `Box.score` (nan without truth boxes)."""
    _same_length(preds, truths)
    total = sum(len(t) for t in truths)
    if total == 0:
        return math.nan
    ranked = sorted(((box.score, f, k) for f, boxes in enumerate(preds) for k, box in enumerate(boxes)),
                    key=lambda item: -item[0])  # stable: ties keep figure order
    taken = [set() for _ in truths]
    hits: list[bool] = []
    for _, f, k in ranked:
        box = preds[f][k]
        best, best_j = 0.0, -1
        for j, truth in enumerate(truths[f]):
            if j in taken[f]:
                continue
            overlap = box.iou(truth)
            if overlap > best:
                best, best_j = overlap, j
        hit = best_j >= 0 and best >= iou
        if hit:
            taken[f].add(best_j)
        hits.append(hit)
    # precision / recall after each ranked prediction, then the all-point interpolated area
    recall, precision = [0.0], [0.0]
    tp = 0
    for n, hit in enumerate(hits, start=1):
        tp += hit
        recall.append(tp / total)
        precision.append(tp / n)
    recall.append(1.0)
    precision.append(0.0)
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    return sum((recall[i] - recall[i - 1]) * precision[i] for i in range(1, len(recall)) if recall[i] != recall[i - 1])


def mean_iou(preds: Sequence[Sequence[Box]], truths: Sequence[Sequence[Box]]) -> float:
    """Mean over every truth box of its best IoU with a prediction of the same figure (0 when none)."""
    _same_length(preds, truths)
    scores = [max((p.iou(t) for p in pred), default=0.0) for pred, truth in zip(preds, truths, strict=True)
              for t in truth]
    return sum(scores) / len(scores) if scores else math.nan


def figure_correct(pred: Sequence[Box], truth: Sequence[Box], iou: float = 0.5) -> bool:
    """Every truth box found one-to-one at IoU >= `iou`, and no extra prediction."""
    return len(pred) == len(truth) and len(match_boxes(pred, truth, iou)) == len(truth)


def figure_accuracy(preds: Sequence[Sequence[Box]], truths: Sequence[Sequence[Box]], iou: float = 0.5) -> float:
    """Share of figures that are `figure_correct`."""
    _same_length(preds, truths)
    if not truths:
        return math.nan
    return sum(figure_correct(p, t, iou) for p, t in zip(preds, truths, strict=True)) / len(truths)


_DASHES = re.compile("[\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d]")


def normalise_text(text: str | None) -> str:
    """Whitespace runs to one space, every dash to '-', stripped (what exact match compares)."""
    return " ".join(_DASHES.sub("-", text or "").split())


def subcaption_exact_match(pred: Mapping[str | None, str | None], truth: Mapping[str | None, str | None]) -> bool:
    """One caption's split equals the hand split: same labels (case-folded) with the same texts.

    Keys are panel labels; the caller puts the lead (text shared by all panels) under "" or None.
    """
    def norm(split: Mapping[str | None, str | None]) -> dict[str, str]:
        return {normalise_text(label).casefold(): normalise_text(text) for label, text in split.items()}

    return norm(pred) == norm(truth)


def subcaption_match_rate(preds: Sequence[Mapping], truths: Sequence[Mapping]) -> float:
    """Share of captions whose split is an exact match."""
    _same_length(preds, truths)
    if not truths:
        return math.nan
    return sum(subcaption_exact_match(p, t) for p, t in zip(preds, truths, strict=True)) / len(truths)


@dataclass(frozen=True)
class DetectionReport:
    """The detection numbers of one detector on one set of figures."""

    figures: int
    map50: float
    mean_iou: float
    figure_accuracy: float
    panels_true: int
    panels_pred: int

    @classmethod
    def evaluate(cls, preds: Sequence[Sequence[Box]], truths: Sequence[Sequence[Box]]) -> DetectionReport:
        """Preds and truths per figure, already as evaluated (see `figure_boxes`)."""
        return cls(
            figures=len(truths),
            map50=average_precision(preds, truths, 0.5),
            mean_iou=mean_iou(preds, truths),
            figure_accuracy=figure_accuracy(preds, truths, 0.5),
            panels_true=sum(len(t) for t in truths),
            panels_pred=sum(len(p) for p in preds),
        )

    def as_row(self) -> dict:
        """A flat dict for a results table, rates rounded to 4 places."""
        row = asdict(self)
        for name in ("map50", "mean_iou", "figure_accuracy"):
            row[name] = round(row[name], 4) if not math.isnan(row[name]) else None
        return row


def _same_length(preds: Sequence, truths: Sequence) -> None:
    if len(preds) != len(truths):
        raise ValueError(f"{len(preds)} predicted figures for {len(truths)} truth figures: pass one list per figure")
