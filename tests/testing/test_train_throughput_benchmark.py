"""benchmarks/train_throughput.py --quick, as CI runs it: every row of the originals vs training-ready table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / ".." / "shared" / "fixtures"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (FIXTURES / "images" / "pmc_package_figures").is_dir(), reason="no shared fixtures"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("train-throughput") / "rows.json"
    command = [sys.executable, str(REPO / "benchmarks" / "train_throughput.py"), "--quick", "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def test_both_datasets_hold_the_same_real_fixture_samples(run):
    report, _ = run
    datasets = report["datasets"]
    assert set(datasets) == {"originals", "training-ready"}
    assert datasets["originals"]["samples"] == datasets["training-ready"]["samples"] >= 31
    assert "real fixture figures" in report["archive"]


def test_every_measure_has_a_row_per_dataset_and_source(run):
    rows = run[0]["rows"]
    got = {(r["dataset"], r["source"], r["what"]) for r in rows}
    for dataset in ("originals", "training-ready", "ratio"):
        for source in ("local", "http"):
            assert (dataset, source, "loader") in got
        assert (dataset, "local", "train") in got
        for decoder in ("PIL", "PIL+draft", "torchvision.io.decode_image"):
            assert (dataset, "-", f"decode {decoder}") in got
        assert (dataset, "-", "tokenize caption") in got
    for row in rows:
        assert row["samples_per_s"] > 0, row
        if row["what"] == "loader":
            assert row["per_core"] > 0, row
        if row["what"] == "train" and row["dataset"] != "ratio":
            assert 0 <= row["data_wait"] <= 1, row


def test_training_ready_shards_move_fewer_bytes_per_sample(run):
    report, table = run
    datasets = report["datasets"]
    assert datasets["training-ready"]["bytes_per_sample"] < datasets["originals"]["bytes_per_sample"]
    ratio = next(r for r in report["rows"] if r["dataset"] == "ratio" and r["what"] == "loader")
    assert ratio["bytes_per_sample"] == pytest.approx(
        datasets["originals"]["bytes_per_sample"] / datasets["training-ready"]["bytes_per_sample"])
    assert "training-ready  local  loader" in table and "ratio           http   loader" in table
