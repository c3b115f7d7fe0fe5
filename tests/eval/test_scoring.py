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


def test_stratified_halves_and_linear_probe_separable_data():
    labels = np.array([0] * 10 + [1] * 10 + [2])
    train, test = scoring.stratified_halves(labels, seed=0)
    assert len(train) == 10 and len(test) == 11 and not set(train) & set(test)
    assert 20 in test  # a class of one goes to test
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (20, 4)) + 1, rng.normal(0, 0.1, (20, 4)) - 1])
    y = np.array([0] * 20 + [1] * 20)
    train, test = scoring.stratified_halves(y, seed=0)
    result = scoring.linear_probe(x[train], y[train], x[test], y[test], 2, seed=0)
    assert result["accuracy"] == 1.0 and result["n_train"] == 20
