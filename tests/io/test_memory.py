"""Memory budgets parse one way for every stage; peak RSS is the process's own, not its parent's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from biomedica.io.memory import checked_size, duckdb_memory, parse_size


def test_sizes_parse_in_binary_units():
    assert parse_size("2GB") == 2 << 30 and parse_size("512MiB") == 512 << 20 and parse_size("1.5G") == 3 << 29
    assert parse_size("64kb") == 65_536 and parse_size("1000") == 1000 and parse_size(7) == 7
    assert duckdb_memory("2GB") == "2048MiB" and duckdb_memory("64KB") == "1MiB"
    assert checked_size(None) is None and checked_size("256MB") == "256MB"
    with pytest.raises(ValueError, match="'lots' is not a size; write e.g. 2GB"):
        parse_size("lots")


@pytest.mark.skipif(sys.platform != "linux", reason="the parent's memory leaks into ru_maxrss on Linux")
def test_a_child_of_a_big_parent_reports_its_own_peak():
    ballast = bytearray(300 << 20)
    ballast[:: 4096] = b"\x01" * len(ballast[:: 4096])  # touched: resident
    code = "from biomedica.io.memory import peak_rss; print(peak_rss())"
    child = int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    assert 0 < child < 200 << 20, child  # ru_maxrss would say > 300 MB here
    del ballast
