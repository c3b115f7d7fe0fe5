"""Inter-annotator agreement and majority vote, as pure functions over {item: {annotator: label}}.

Fleiss' kappa uses the usual generalisation to a varying number of raters per item
(items with fewer than two ratings are left out); Cohen's kappa is computed for every pair
of annotators over the items both rated. Kappa is None when it is undefined (fewer than
two rated items, or every rating in one category so chance agreement is 1).
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations


def majority(labels: list[str]) -> tuple[str | None, float]:
    """(most common label, its share); None when the top two tie."""
    if not labels:
        return None, 0.0
    counts = Counter(labels).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None, counts[0][1] / len(labels)
    return counts[0][0], counts[0][1] / len(labels)


def fleiss_kappa(ratings: dict[object, dict[str, str]]) -> float | None:
    """Fleiss' kappa over items rated by at least two annotators."""
    items = [list(by_annotator.values()) for by_annotator in ratings.values() if len(by_annotator) >= 2]
    if len(items) < 2:
        return None
    category_totals: Counter = Counter()
    agreement_sum = 0.0
    total = 0
    for labels in items:
        n = len(labels)
        counts = Counter(labels)
        category_totals.update(counts)
        total += n
        agreement_sum += (sum(c * c for c in counts.values()) - n) / (n * (n - 1))
    observed = agreement_sum / len(items)
    expected = sum((count / total) ** 2 for count in category_totals.values())
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def cohen_kappa(first: dict[object, str], second: dict[object, str]) -> float | None:
    """Cohen's kappa of two annotators over the items both rated."""
    common = sorted(set(first) & set(second), key=str)
    if len(common) < 2:
        return None
    n = len(common)
    observed = sum(first[i] == second[i] for i in common) / n
    a = Counter(first[i] for i in common)
    b = Counter(second[i] for i in common)
    expected = sum(a[c] * b[c] for c in set(a) | set(b)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def pairwise_cohen(ratings: dict[object, dict[str, str]]) -> dict[str, float | None]:
    """Cohen's kappa for each pair of annotators: {"alice|bob": kappa}."""
    by_annotator: dict[str, dict[object, str]] = {}
    for item, labels in ratings.items():
        for annotator, label in labels.items():
            by_annotator.setdefault(annotator, {})[item] = label
    return {
        f"{a}|{b}": cohen_kappa(by_annotator[a], by_annotator[b]) for a, b in combinations(sorted(by_annotator), 2)
    }
