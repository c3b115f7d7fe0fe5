"""Demo charts: drawn from seeded data, and the facts they return are the ones drawn."""

from __future__ import annotations

import random

import numpy as np
import pytest

from biomedica.testing.corpus.charts import _PALETTE, CHART_KINDS, draw_chart


@pytest.mark.parametrize("kind", CHART_KINDS)
def test_chart_fits_and_is_deterministic(kind):
    first, second = draw_chart(kind, random.Random(3), 200), draw_chart(kind, random.Random(3), 200)
    assert first.kind == kind and first.modality == ("diagram" if kind == "flow" else "chart")
    assert max(first.image.size) <= 200 and first.image.mode == "RGB"
    assert first.image.tobytes() == second.image.tobytes()


def test_bar_chart_draws_one_coloured_bar_per_group():
    chart = draw_chart("bar", random.Random(5), 256)
    pixels = np.asarray(chart.image).reshape(-1, 3)
    drawn = [colour for colour in _PALETTE if (pixels == colour).all(axis=1).sum() > 50]
    assert len(drawn) == len(chart.groups) >= 3
    assert chart.variable and chart.unit and chart.n > 0


def test_scatter_reports_the_correlation_it_drew():
    for seed in range(5):
        chart = draw_chart("scatter", random.Random(seed), 160)
        assert -1.0 <= chart.correlation <= 1.0 and abs(chart.correlation) > 0.2  # slope 0.3-0.9, noise 0.12
        assert 25 <= chart.n <= 70


def test_flow_diagram_counts_add_up():
    for seed in range(10):
        assessed, excluded, randomised, arm_a, arm_b, analysed_a, analysed_b = draw_chart(
            "flow", random.Random(seed), 160
        ).counts
        assert assessed == excluded + randomised
        assert randomised == arm_a + arm_b
        assert 0 < analysed_a <= arm_a and 0 < analysed_b <= arm_b


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown chart kind 'pie'"):
        draw_chart("pie", random.Random(0), 100)
