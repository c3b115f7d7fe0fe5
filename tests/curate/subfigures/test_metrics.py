import math

import pytest

from biomedica.curate.subfigures.boxes import Box
from biomedica.curate.subfigures.metrics import (
    DetectionReport,
    average_precision,
    figure_accuracy,
    figure_boxes,
    match_boxes,
    mean_iou,
    normalise_text,
    subcaption_exact_match,
    subcaption_match_rate,
)

LEFT, RIGHT = Box(0, 0, 10, 10), Box(10, 0, 20, 10)


def test_match_boxes_is_one_to_one_best_first():
    shifted = Box(0, 0, 10, 8)  # IoU 0.8 with LEFT
    matches = match_boxes([shifted, LEFT], [LEFT, RIGHT])
    assert matches == [(1, 0, 1.0)]  # the exact box takes LEFT; the shifted one finds nothing left
    assert match_boxes([Box(0, 0, 10, 4)], [LEFT]) == []  # IoU 0.4 < 0.5


def test_average_precision_hand_computed():
    # ranked: hit (0.9), miss (0.8), hit (0.7) over 2 truths -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    # all-point interpolation: 1/2 * 1 + 1/2 * 2/3 = 5/6
    preds = [[Box(0, 0, 10, 10, 0.9), Box(50, 50, 60, 60, 0.8), Box(10, 0, 20, 10, 0.7)]]
    assert average_precision(preds, [[LEFT, RIGHT]]) == pytest.approx(5 / 6)
    # the miss ranked last does not lower AP
    reordered = [[Box(0, 0, 10, 10, 0.9), Box(50, 50, 60, 60, 0.1), Box(10, 0, 20, 10, 0.7)]]
    assert average_precision(reordered, [[LEFT, RIGHT]]) == pytest.approx(1.0)


def test_average_precision_pools_figures_and_counts_duplicates_as_misses():
    # figure 0: a duplicate of LEFT; figure 1: nothing found. 3 truths; ranked hit, miss -> AP = 1/3 * 1
    preds = [[Box(0, 0, 10, 10, 0.9), Box(0, 0, 10, 10, 0.5)], []]
    assert average_precision(preds, [[LEFT, RIGHT], [LEFT]]) == pytest.approx(1 / 3)
    assert math.isnan(average_precision([[]], [[]]))
    with pytest.raises(ValueError, match="one list per figure"):
        average_precision([[]], [])


def test_mean_iou_and_figure_accuracy():
    half = Box(0, 0, 10, 5)  # IoU 0.5 with LEFT
    assert mean_iou([[half], [LEFT]], [[LEFT, RIGHT], [LEFT]]) == pytest.approx((0.5 + 0 + 1) / 3)
    # figure 0 exact, figure 1 has an extra box, figure 2 misses one
    preds = [[LEFT, RIGHT], [LEFT, RIGHT, Box(30, 30, 40, 40)], [LEFT]]
    truths = [[RIGHT, LEFT], [LEFT, RIGHT], [LEFT, RIGHT]]
    assert figure_accuracy(preds, truths) == pytest.approx(1 / 3)


def test_single_figures_evaluate_as_the_whole_image():
    assert figure_boxes([], 40, 30) == [Box(0, 0, 40, 30)]
    assert figure_boxes([Box(2, 2, 20, 20, 0.7)], 40, 30) == [Box(0, 0, 40, 30, 0.7)]
    assert figure_boxes([LEFT, RIGHT], 40, 30) == [LEFT, RIGHT]


def test_detection_report_row():
    report = DetectionReport.evaluate([[LEFT, RIGHT], [LEFT]], [[LEFT, RIGHT], [Box(0, 0, 20, 20)]])
    row = report.as_row()
    # 3 truths, ranked LEFT, RIGHT (hits) then LEFT of figure 1 (IoU 0.25: miss): AP = 2/3
    assert row == {"figures": 2, "map50": pytest.approx(0.6667, abs=1e-4), "mean_iou": pytest.approx(0.75),
                   "figure_accuracy": 0.5, "panels_true": 3, "panels_pred": 3}


def test_subcaption_exact_match_normalises_whitespace_dashes_and_label_case():
    truth = {"": "Imaging overview.", "a": "CT of the head \u2013 axial.", "b": "MRI."}
    assert subcaption_exact_match({"": "Imaging  overview.", "A": "CT of the head - axial.\n", "b": "MRI."}, truth)
    assert not subcaption_exact_match({"": "Imaging overview.", "a": "CT of the head - axial."}, truth)
    assert not subcaption_exact_match({"": "Imaging overview.", "a": "CT of the head.", "b": "MRI."}, truth)
    assert normalise_text(" x\u2014y\t z ") == "x-y z"
    assert subcaption_match_rate([truth, {}], [truth, {"a": "x"}]) == 0.5
