"""benchmarks/reliability.py --quick, scenarios kill and concurrent (2 runs each), as CI runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="the benchmark reads /proc")]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("reliability") / "reliability.json"
    command = [sys.executable, str(REPO / "benchmarks" / "reliability.py"), "--quick", "--runs", "2",
               "--scenario", "concurrent", "--scenario", "kill", "--json", str(out)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return {s["name"]: s for s in json.loads(out.read_text())["scenarios"]}


def test_a_second_writer_is_refused_and_nothing_is_lost(report):
    concurrent = report["concurrent"]
    assert concurrent["setup_error"] is None
    assert (concurrent["tried"], concurrent["survived"], concurrent["lost"]) == (2, 2, 0), concurrent["reasons"]


def test_a_rerun_after_kill_9_of_the_main_process_equals_a_clean_build(report):
    kill = report["kill"]
    assert kill["setup_error"] is None
    assert (kill["tried"], kill["lost"], kill["samples_lost"]) == (2, 0, 0), kill["reasons"]
    orphans = "processes of the killed run alive 10 s after the kill"
    assert set(kill["reasons"]) <= {orphans}, kill["reasons"]  # orphans are the next test's


def test_no_process_of_a_killed_run_survives_10_s(report):
    kill = report["kill"]
    assert kill["survived"] == kill["tried"] == 2, kill["reasons"]
