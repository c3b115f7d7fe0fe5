"""benchmarks/scale.py --quick: every section measures, growth is reported, projections are marked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[list[dict], str]:
    out = tmp_path_factory.mktemp("scale") / "rows.json"
    command = [sys.executable, str(REPO / "benchmarks" / "scale.py"), "--quick", "--only", "plan,dedup,select",
               "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def _measured(rows: list[dict], stage: str) -> dict[int, dict]:
    return {r["scale"]: r for r in rows if r["stage"] == stage and not r.get("projected")}


def test_plan_runs_the_real_scan_at_each_scale(run):
    rows, _ = run
    plan = _measured(rows, "plan")
    assert set(plan) == {1, 4, 24}, [r.get("error") for r in plan.values()]
    # 4 inventory rows per version; one article in ten has two versions and only the latest is kept
    assert plan[1]["items"] == 455 and plan[24]["items"] > 20 * plan[1]["items"]
    # during an ingest a worker receives the plan file's path, not the etags: small at every size
    assert all(0 < r["pickled_bytes"] < 10_000 for r in plan.values())
    assert plan[24]["inline_bytes"] > 20 * plan[1]["inline_bytes"]
    assert all(r["peak_mb"] >= r["base_mb"] > 0 for r in plan.values())
    bounded = _measured(rows, "plan file (bounded)")
    assert {s: r["items"] for s, r in bounded.items()} == {s: r["items"] for s, r in plan.items()}


def test_select_filters_every_generated_row(run):
    rows, _ = run
    select = _measured(rows, "select")
    assert set(select) == {1, 4, 24}
    for scale, row in select.items():
        assert row["total"] == 10_000 * scale
        assert 0 < row["selected"] < row["total"]


def test_dedup_measures_two_sizes_and_projects_24x_and_64_cores(run):
    rows, _ = run
    assert len({r["size"] for r in rows if r["stage"] == "dedup w1" and not r.get("projected")}) == 2
    projected = [r for r in rows if r["stage"].startswith("dedup") and r.get("projected")]
    assert any(r["scale"] == 24 and "64 cores" in r["unit"] for r in projected)


def test_table_marks_projections_and_prints_growth(run):
    _, table = run
    assert "| stage" in table and "~ projected" in table
    assert "- plan: x4 work:" in table and "- select: x4 work:" in table
