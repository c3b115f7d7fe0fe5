"""Memory budgets as people write them ('2GB', '512MB', '64KB'): one parser for every stage's --memory.

Why: the near-duplicate search, select and the plan file each bound their memory by a budget,
and the same words must mean the same bytes (binary units: 1KB = 1024 bytes) everywhere.
"""

from __future__ import annotations

import re
import sys

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Bytes of a size written like '2GB', '512MB', '64KB', '1.5G' or a plain number of bytes."""
    if isinstance(text, int):
        return text
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"memory {text!r} is not a size; write e.g. 2GB, 512MB or 64KB")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def checked_size(value: str | None) -> str | None:
    """A config validator: the size as written, once it parses (None stays None)."""
    if value is not None:
        parse_size(value)
    return value


def duckdb_memory(text: str | int) -> str:
    """The size as DuckDB's `memory_limit` setting (whole MiB, at least 1)."""
    return f"{max(1, parse_size(text) >> 20)}MiB"


def peak_rss() -> int:
    """This process's peak resident memory in bytes (0 where it cannot be read).

    Linux: VmHWM of /proc/self/status. Not ru_maxrss: Linux carries that across fork and exec,
    so a process started by a 500 MB parent reports at least 500 MB whatever it did itself
    (measured). Elsewhere ru_maxrss (bytes on macOS, KiB on other systems).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
