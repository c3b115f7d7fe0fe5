import pytest

from biomedica.annotate.agreement import cohen_kappa, fleiss_kappa, majority, pairwise_cohen


def test_fleiss_kappa_matches_the_textbook_example():
    # Fleiss (1971) worked example as given on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]
    ratings = {}
    for item, counts in enumerate(table):
        labels = [str(category) for category, n in enumerate(counts) for _ in range(n)]
        ratings[item] = {f"rater{i}": label for i, label in enumerate(labels)}
    assert fleiss_kappa(ratings) == pytest.approx(0.210, abs=0.001)


def test_cohen_kappa_known_value():
    # 50 items: both yes 20, both no 15, a yes/b no 5, a no/b yes 10 -> kappa 0.4
    a, b = {}, {}
    pairs = [("y", "y")] * 20 + [("n", "n")] * 15 + [("y", "n")] * 5 + [("n", "y")] * 10
    for i, (x, y) in enumerate(pairs):
        a[i], b[i] = x, y
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert pairwise_cohen({i: {"a": x, "b": y} for i, (x, y) in enumerate(pairs)}) == {"a|b": pytest.approx(0.4)}


def test_perfect_and_undefined_agreement():
    same = {i: {"a": "x" if i % 2 else "y", "b": "x" if i % 2 else "y"} for i in range(6)}
    assert fleiss_kappa(same) == pytest.approx(1.0)
    assert fleiss_kappa({0: {"a": "x", "b": "x"}, 1: {"a": "x", "b": "x"}}) is None  # one category only
    assert fleiss_kappa({0: {"a": "x"}}) is None
    assert cohen_kappa({0: "x"}, {0: "x"}) is None


def test_majority():
    assert majority(["a", "b", "a"]) == ("a", pytest.approx(2 / 3))
    assert majority(["a", "b"]) == (None, 0.5)
    assert majority([]) == (None, 0.0)
