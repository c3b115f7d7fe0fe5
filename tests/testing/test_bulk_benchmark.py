"""benchmarks/bulk.py --quick: a generated Europe PMC bulk file is read whole, memory flat as it grows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="peak RSS read from /proc (Linux)")]


def test_quick_bulk_benchmark_reads_every_article_with_flat_memory(tmp_path):
    out = tmp_path / "bulk.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bulk.py"), "--quick", "--json", str(out)],
                          check=False, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "read+parse art/s/core" in done.stdout
    small, large = json.loads(out.read_text())["rows"]
    assert (small["articles"], large["articles"]) == (100, 400) and small["errors"] == large["errors"] == 0
    assert large["figures"] > 4 * small["figures"] * 0.9
    assert large["peak_rss_mib"] < small["peak_rss_mib"] + 40  # streamed: 4x the file, not 4x the memory
