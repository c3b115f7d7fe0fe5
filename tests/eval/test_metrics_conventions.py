"""The named metric conventions against scikit-learn and torch.topk: both AUROCs, both mAPs, the ties rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biomedica.eval import metrics as M

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def _random_case(seed: int, n: int = 60, c: int = 4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, c)) * 3, rng.integers(0, c, size=n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_auroc_ovr_softmax_equals_scikit_learn(seed):
    logits, labels = _random_case(seed)
    expected = sklearn_metrics.roc_auc_score(labels, M.softmax(logits), multi_class="ovr", average="macro")
    assert M.macro_auroc_ovr_softmax(logits, labels) == pytest.approx(expected, abs=1e-12)


def test_the_two_auroc_conventions_differ_on_raw_logits():
    logits, labels = _random_case(3)
    raw = M.macro_auroc(logits, labels)
    ovr = M.macro_auroc_ovr_softmax(logits, labels)
    assert raw != pytest.approx(ovr, abs=1e-6)  # softmax couples the classes; both are reported, named
    per_class = [sklearn_metrics.roc_auc_score(labels == c, logits[:, c]) for c in range(logits.shape[1])]
    assert raw == pytest.approx(np.mean(per_class), abs=1e-12)


def test_map_conventions_against_scikit_learn_with_a_class_without_positives():
    rng = np.random.default_rng(0)
    scores = rng.random((40, 4))
    targets = rng.random((40, 4)) < 0.3
    targets[:, 2] = False  # no positive
    with pytest.warns(UserWarning):  # scikit-learn warns and scores that class 0
        expected_all = sklearn_metrics.average_precision_score(targets, scores, average="macro")
    per_class = sklearn_metrics.average_precision_score(targets[:, [0, 1, 3]], scores[:, [0, 1, 3]], average=None)
    assert M.mean_average_precision_all(scores, targets) == pytest.approx(expected_all, abs=1e-12)
    assert M.mean_average_precision(scores, targets)[0] == pytest.approx(per_class.mean(), abs=1e-12)


def test_clip_benchmark_ties_follow_torch_topk_and_sit_between_the_bounds():
    rng = np.random.default_rng(0)
    logits = rng.integers(0, 3, size=(200, 8)).astype(np.float32)  # many ties
    labels = rng.integers(0, 8, size=200)
    for k in (1, 5):
        indices = torch.topk(torch.from_numpy(logits), k, dim=1)[1].numpy()
        expected = np.mean([labels[i] in indices[i] for i in range(len(labels))])
        got = M.topk_accuracy(logits, labels, k, ties="clip_benchmark")
        assert got == pytest.approx(expected)
        assert M.topk_accuracy(logits, labels, k, "pessimistic") <= got <= M.topk_accuracy(logits, labels, k, "optimistic")
    distinct = rng.normal(size=(50, 8))
    lab = rng.integers(0, 8, size=50)
    assert len({M.topk_accuracy(distinct, lab, 3, t) for t in M.TIES}) == 1  # no ties: all rules agree


def test_retrieval_hits_under_each_rule():
    similarity = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # captions x images; 0/1 tied
    owner = np.array([0, 1, 2])
    pess = M.retrieval_hits(similarity, owner, (1, 2), "pessimistic")
    opt = M.retrieval_hits(similarity, owner, (1, 2), "optimistic")
    cb = M.retrieval_hits(similarity, owner, (1, 2), "clip_benchmark")
    assert pess[1][1].tolist() == [False, False, True] and opt[1][1].tolist() == [True, True, True]
    assert cb[1][1].sum() == 2  # torch.topk picks one of the tied pair for each caption
    assert all(cb[2][0]) and all(cb[2][1])
    with pytest.raises(ValueError, match="ties must be one of"):
        M.topk_accuracy(similarity, owner, 1, ties="random")
