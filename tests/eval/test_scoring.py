"""Scoring on hand-made embeddings: template ensembles, classification, multilabel, retrieval, probe."""

from __future__ import annotations

import numpy as np
import pytest

from biomedica.eval import scoring


def test_class_prompts_and_ensemble():
    prompts = scoring.class_prompts([["CT", "CT scan"], ["MRI"]], ["a {c}.", "an image of {c}."])
    assert prompts == [["a CT.", "an image of CT.", "a CT scan.", "an image of CT scan."], ["a MRI.", "an image of MRI."]]
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    ensembled = scoring.ensemble_class_embeddings(embeddings, [2, 1])
    assert np.allclose(ensembled, [[np.sqrt(0.5), np.sqrt(0.5)], [1.0, 0.0]])


def test_score_classification_values_and_ci():
    logits = np.array([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0], [1.0, 2.0]])
    labels = np.array([0, 1, 1, 1])
    result = scoring.score_classification(logits, labels, ["neg", "pos"], "accuracy", n_boot=200, seed=0)
    assert result["metrics"]["accuracy"] == 0.75
    assert result["metrics"]["balanced_accuracy"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert result["metrics"]["auroc"] == pytest.approx(2 / 3)  # pos scores -1, 1, -3 vs neg -1
    assert result["per_class"]["pos"] == {"recall": pytest.approx(2 / 3), "support": 3}
    assert result["confusion_matrix"] == [[1, 0], [1, 2]]
    low, high = result["ci95"]["accuracy"]
    assert 0.0 <= low <= 0.75 <= high <= 1.0
    assert len(result["bootstrap"]) == 200


def test_score_retrieval_two_captions_per_image():
    images = np.eye(3)
    texts = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 0, 1.0], [0, 1.0, 0]])
    owner = np.array([0, 0, 2, 1])
    result = scoring.score_retrieval(images, texts, owner, n_boot=50, seed=0)
    assert result["metrics"]["image_to_text_r1"] == 1.0
    assert result["metrics"]["text_to_image_r1"] == 1.0
    assert result["metrics"]["mean_recall"] == 1.0
    assert result["n_captions"] == 4


def test_score_multilabel_map():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.3]])
    targets = np.array([[1, 0], [0, 1], [0, 0]], dtype=bool)
    result = scoring.score_multilabel(scores, targets, ["a", "b"], n_boot=20, seed=0)
    assert result["metrics"]["mean_average_precision"] == 1.0
    assert result["per_class"]["b"]["support"] == 1


def test_score_multilabel_reports_both_map_conventions():
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1], [0.6, 0.3, 0.2]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=bool)  # class 2 has no positive
    result = scoring.score_multilabel(scores, targets, ["a", "b", "c"], n_boot=10, seed=0)
    assert result["metrics"]["mean_average_precision"] == 1.0
    assert result["metrics"]["mean_average_precision_all"] == pytest.approx(2 / 3)
    assert result["per_class"]["c"]["average_precision"] is None


def test_score_classification_reports_both_auroc_conventions():
    logits = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 2.5], [2.0, 2.1, 0.0], [0.5, 0.1, 0.2]])
    labels = np.array([0, 1, 2, 0, 2])
    result = scoring.score_classification(logits, labels, ["a", "b", "c"], "accuracy", n_boot=0, seed=0)
    assert {"macro_auroc", "macro_auroc_ovr_softmax"} <= set(result["metrics"])
    assert result["ci95"]["accuracy"] == [None, None]  # n_boot=0: no interval


def test_retrieval_ties_conventions_bound_each_other():
    images = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # images 0 and 1 are identical
    texts = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    owner = np.array([0, 1, 2])
    got = {t: scoring.score_retrieval(images, texts, owner, n_boot=0, seed=0, ties=t)["metrics"]
           for t in ("pessimistic", "clip_benchmark", "optimistic")}
    assert got["pessimistic"]["text_to_image_r1"] == pytest.approx(1 / 3)  # the tied pair both miss
    assert got["optimistic"]["text_to_image_r1"] == 1.0
    assert got["pessimistic"]["text_to_image_r1"] <= got["clip_benchmark"]["text_to_image_r1"] <= 1.0
    assert got["clip_benchmark"]["text_to_image_r5"] == 1.0
