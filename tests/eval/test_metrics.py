"""Metric functions against hand-computed cases: ties, missing classes, one class, several captions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from biomedica.eval import metrics as M


def test_top1_accuracy_and_argmax_ties_go_to_lowest_index():
    logits = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 0])
    # row 1 is a tie -> predicted 0 (wrong); rows 0 and 2 right; row 3 wrong
    assert M.top1_accuracy(logits, labels) == pytest.approx(0.5)


def test_topk_accuracy_counts_ties_against_the_query():
    logits = np.array([[1.0, 1.0, 0.0], [0.0, 0.5, 1.0]])
    labels = np.array([1, 1])
    assert M.topk_accuracy(logits, labels, 1) == 0.0  # row 0 tied with class 0; row 1 second
    assert M.topk_accuracy(logits, labels, 2) == 1.0


def test_per_class_recall_and_balanced_accuracy_with_a_missing_class():
    labels = np.array([0, 0, 0, 1])
    predictions = np.array([0, 0, 1, 1])
    recalls = M.per_class_recall(predictions, labels, n_classes=3)
    assert recalls[0] == pytest.approx(2 / 3)
    assert recalls[1] == 1.0
    assert math.isnan(recalls[2])  # class 2 has no sample
    assert M.balanced_accuracy(predictions, labels, 3) == pytest.approx((2 / 3 + 1.0) / 2)


def test_balanced_accuracy_with_one_class_is_its_recall():
    assert M.balanced_accuracy(np.array([0, 1, 0]), np.array([0, 0, 0]), 2) == pytest.approx(2 / 3)


def test_binary_auroc_hand_case_with_ties():
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.4])
    positive = np.array([0, 0, 1, 1, 1], dtype=bool)
    # pairs (pos, neg): 0.35>0.1 1, 0.35<0.4 0, 0.8>both 2, 0.4>0.1 1, 0.4=0.4 0.5 -> 4.5 / 6
    assert M.binary_auroc(scores, positive) == pytest.approx(4.5 / 6)


def test_binary_auroc_is_nan_with_one_class_and_half_when_all_tied():
    assert math.isnan(M.binary_auroc(np.array([0.2, 0.3]), np.array([True, True])))
    assert M.binary_auroc(np.ones(4), np.array([1, 0, 1, 0], dtype=bool)) == 0.5


def test_macro_auroc_skips_classes_without_positives():
    logits = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0]])
    labels = np.array([0, 1, 0])
    # class 0: pos scores .9,.6 vs neg .2 -> 1.0 ; class 1: pos .8 vs .1,.4 -> 1.0 ; class 2 absent
    assert M.macro_auroc(logits, labels) == 1.0


def test_average_precision_hand_case_and_tied_scores():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    positive = np.array([1, 0, 1, 0], dtype=bool)
    assert M.average_precision(scores, positive) == pytest.approx((1.0 + 2 / 3) / 2)
    # a tie between a positive and a negative forms one threshold: precision 1/2 at recall 1
    assert M.average_precision(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)
    assert math.isnan(M.average_precision(scores, np.zeros(4, dtype=bool)))


def test_mean_average_precision_leaves_out_classes_without_positives():
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1], [0.7, 0.6, 0.2]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0]], dtype=bool)
    mean, per_class = M.mean_average_precision(scores, targets)
    assert per_class[0] == pytest.approx(1.0)
    assert per_class[1] == pytest.approx(1.0)  # .8 and .6 outrank .1
    assert math.isnan(per_class[2])
    assert mean == pytest.approx(1.0)


def test_retrieval_positions_with_several_captions_per_image():
    # 3 images; captions 0,1 -> image 0, caption 2 -> image 1, caption 3 -> image 2
    similarity = np.array(
        [
            [0.1, 0.9, 0.0],  # caption 0 prefers image 1 -> its image 0 is at position 1
            [0.8, 0.2, 0.1],  # caption 1 finds image 0 first
            [0.3, 0.3, 0.0],  # caption 2: tie between image 0 and its image 1 -> position 1 (pessimistic)
            [0.0, 0.1, 0.5],  # caption 3 finds image 2 first
        ]
    )
    owner = np.array([0, 0, 1, 2])
    assert M.text_to_image_positions(similarity, owner).tolist() == [1, 0, 1, 0]
    # image 0: best own caption 0.8; other captions >= 0.8: none -> 0
    # image 1: own 0.3; others >= 0.3: caption 0 (0.9) -> 1
    # image 2: own 0.5; none -> 0
    assert M.image_to_text_positions(similarity, owner).tolist() == [0, 1, 0]
    recalls = M.recall_at_k(M.text_to_image_positions(similarity, owner), (1, 5))
    assert recalls == {1: 0.5, 5: 1.0}


def test_identical_embeddings_score_no_better_than_chance_in_retrieval():
    similarity = np.zeros((4, 4))
    positions = M.text_to_image_positions(similarity, np.arange(4))
    assert positions.tolist() == [3, 3, 3, 3]
    assert M.recall_at_k(positions, (1,))[1] == 0.0


def test_bootstrap_is_seeded_and_interval_brackets_the_mean():
    values = np.array([0.0, 1.0] * 50)
    stat = lambda idx: float(values[idx].mean())  # noqa: E731
    first = M.bootstrap_replicates(stat, len(values), n_boot=200, seed=3)
    second = M.bootstrap_replicates(stat, len(values), n_boot=200, seed=3)
    assert np.array_equal(first, second)
    low, high = M.percentile_interval(first)
    assert low < 0.5 < high
    assert 0.35 < low and high < 0.65


def test_percentile_interval_ignores_nan_and_handles_all_nan():
    assert M.percentile_interval(np.array([np.nan, 1.0, 1.0])) == (1.0, 1.0)
    assert all(math.isnan(v) for v in M.percentile_interval(np.array([np.nan])))


def test_unweighted_mean_and_mean_of_replicates():
    assert M.unweighted_mean({"a": 0.2, "b": 0.6, "c": float("nan")}) == pytest.approx(0.4)
    low, high = M.mean_of_replicates([np.array([0.0, 1.0]), np.array([1.0, 1.0, 5.0])])
    # replicate-wise means: [0.5, 1.0]
    assert 0.5 <= low <= high <= 1.0
