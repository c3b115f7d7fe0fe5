"""Report: Markdown comparison with domain/overall means and CIs, one PNG per domain, from result JSONs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from biomedica.eval.report import build_table, load_results, render_markdown, write_report


def _result(model, task, domain, score, seed):
    rng = np.random.default_rng(seed)
    replicates = np.clip(rng.normal(score, 0.02, 100), 0, 1).round(4).tolist()
    return {
        "model": {"name": model}, "task_name": task, "domain": domain, "primary_metric": "accuracy",
        "score": score, "score_ci95": [score - 0.04, score + 0.04], "bootstrap": replicates,
    }


@pytest.fixture
def results_dir(tmp_path):
    rows = [
        _result("model-a", "pcam", "pathology", 0.80, 0), _result("model-a", "lc25000-lung", "pathology", 0.60, 1),
        _result("model-a", "pneumoniamnist", "radiology", 0.50, 2),
        _result("model-b", "pcam", "pathology", 0.70, 3), _result("model-b", "lc25000-lung", "pathology", 0.90, 4),
        _result("model-b", "pneumoniamnist", "radiology", 0.40, 5),
    ]
    for row in rows:
        path = tmp_path / "results" / row["model"]["name"] / f"{row['task_name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(row))
    (tmp_path / "results" / ".embedding-cache").mkdir()
    (tmp_path / "results" / ".embedding-cache" / "k.json").write_text(json.dumps({"what": "image"}))
    (tmp_path / "results" / "notes.json").write_text("[1, 2]")
    return tmp_path / "results"


def test_domain_and_overall_means_are_unweighted_over_tasks(results_dir):
    table = build_table(load_results([results_dir]))
    assert table.models == ["model-a", "model-b"]
    assert table.domains == {"pathology": ["lc25000-lung", "pcam"], "radiology": ["pneumoniamnist"]}
    assert table.domain_means[("model-a", "pathology")][0] == pytest.approx(0.70)
    mean, low, high, n = table.overall["model-b"]
    assert mean == pytest.approx((0.7 + 0.9 + 0.4) / 3) and n == 3
    assert low < mean < high


def test_markdown_and_plots(results_dir, tmp_path):
    files = write_report([results_dir], tmp_path / "report")
    text = files.markdown.read_text()
    assert "| pathology | pcam | accuracy | 80.0 [76.0, 84.0] | 70.0 [66.0, 74.0] |" in text
    assert "| **pathology** | **mean** |  | **70.0 [" in text
    assert "**overall**" in text and "(3 tasks)" in text
    assert sorted(p.name for p in files.plots) == ["pathology.png", "radiology.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in files.plots)


def test_different_task_sets_are_flagged(results_dir):
    results = [r for r in load_results([results_dir]) if not (r["model"]["name"] == "model-b" and r["task_name"] == "pcam")]
    assert "different task sets" in render_markdown(build_table(results))


def test_no_results_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="biomedica eval run"):
        write_report([tmp_path], tmp_path / "out")
