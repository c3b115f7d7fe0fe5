"""Near-duplicate search at PMC scale: partitioned pHash search time and peak memory vs size and workers.

Usage:
    python benchmarks/dedup_scale.py                      # 1M and 4M hashes, t=6, 1 and 2 workers, 2GB budget
    python benchmarks/dedup_scale.py --sizes 250000 --workers 1,2 --memory 256MB
    python benchmarks/dedup_scale.py --quick              # 50k hashes (a smoke run, seconds)

Library use: `measure(n_hashes, workers, threshold, memory) -> dict` in a fresh process; benchmarks/scale.py
calls `measure_in_process` from a child process of its own.

What a row measures: `curate.dedup_partition.near_groups` on n random 64-bit hashes with 5%
planted near copies (3 random bit flips; `testing.scale_data.planted_hashes`): save the distinct
hashes to a run folder, plan the units (one histogram pass), search every unit on the
local executor (spawned processes; inline for 1 worker) and merge the spilled groups with
the streaming union-find. Each measurement runs in a fresh spawned process, so
`parent_peak_mb` is that process's peak RSS (hashes + labels + Python, numpy and pyarrow);
`worker_peak_mb` is the largest peak RSS a unit's process reported (with 1 worker, the
same process). The projection fits time = a * n^b through the two largest sizes measured
on one worker and divides by the cores (units are independent: at least 4 per worker),
which assumes a shared file system fast enough to stream the memory-mapped hashes.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def measure_in_process(n_hashes: int, workers: int, threshold: int, memory: str, executor: str = "local") -> dict:
    """One row measured here (a fresh process: peak RSS is the search's); benchmarks/scale.py calls it."""
    sys.path.insert(0, str(REPO / "src"))
    from biomedica.curate.dedup_partition import near_groups
    from biomedica.io.memory import peak_rss
    from biomedica.testing.scale_data import planted_hashes

    hashes = np.unique(planted_hashes(n_hashes))
    with tempfile.TemporaryDirectory(prefix="dedup-scale-") as tmp:
        start = time.perf_counter()
        search = near_groups(hashes, threshold, memory=memory, workers=workers, executor=executor, work_dir=Path(tmp))
        seconds = time.perf_counter() - start
    groups = len(np.unique(search.labels))
    return {
        "n_hashes": n_hashes,
        "distinct": len(hashes),
        "threshold": threshold,
        "workers": workers,
        "executor": executor,
        "memory": memory,
        "units": search.units,
        "block_units": search.block_units,
        "largest_unit": search.largest_unit,
        "pairs": search.pairs,
        "grouped": int(len(hashes) - groups),
        "seconds": round(seconds, 2),
        "search_s": round(search.search_seconds, 2),
        "merge_s": round(search.merge_seconds, 2),
        "hashes_per_s": round(len(hashes) / seconds),
        "parent_peak_mb": round(peak_rss() / 2**20),
        "worker_peak_mb": round(max(search.worker_peak_rss, 0) / 2**20),
    }


def measure(n_hashes: int, workers: int = 1, threshold: int = 6, memory: str = "2GB", executor: str = "local") -> dict:
    """One row: partitioned near search of n_hashes synthetic pHashes, in a fresh process (clean peak RSS)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure_in_process, n_hashes, workers, threshold, memory, executor).result()


def project(rows: list[dict], n_target: int, cores: int) -> dict | None:
    """Time at n_target on `cores` from a power-law fit of the two largest one-worker rows."""
    single = sorted((r for r in rows if r["workers"] == 1), key=lambda r: r["n_hashes"])
    if len(single) < 2:
        return None
    (n1, t1), (n2, t2) = [(r["n_hashes"], r["seconds"]) for r in single[-2:]]
    exponent = math.log(t2 / t1) / math.log(n2 / n1) if t1 > 0 and n2 > n1 else 1.0
    one_core = t2 * (n_target / n2) ** exponent
    return {"n_hashes": n_target, "exponent": round(exponent, 2), "one_core_s": round(one_core),
            "cores": cores, "seconds": round(one_core / cores)}


COLUMNS = ["n_hashes", "workers", "memory", "units", "block_units", "pairs", "grouped", "seconds", "search_s",
           "merge_s", "hashes_per_s", "parent_peak_mb", "worker_peak_mb"]


def print_table(rows: list[dict]) -> None:
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,4000000", help="comma-separated hash counts")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--threshold", type=int, default=6)
    parser.add_argument("--memory", default="2GB", help="per-unit budget")
    parser.add_argument("--project", type=int, default=24_000_000, help="hash count to project to")
    parser.add_argument("--cores", type=int, default=64, help="cores to project to")
    parser.add_argument("--quick", action="store_true", help="50k hashes only (smoke run)")
    args = parser.parse_args()
    sizes = [50_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    rows = []
    for n in sizes:
        for workers in (int(w) for w in args.workers.split(",")):
            rows.append(measure(n, workers, args.threshold, args.memory))
            print(f"measured n={n} workers={workers}: {rows[-1]['seconds']} s", file=sys.stderr)
    print(f"near-duplicate search, threshold {args.threshold}, budget {args.memory} per unit")
    print_table(rows)
    guess = project(rows, args.project, args.cores)
    if guess:
        print(f"\nprojected (fit t ~ n^{guess['exponent']} through the two largest 1-worker rows, not measured): "
              f"{args.project:,} hashes = {guess['one_core_s']} s on one core, ~{guess['seconds']} s on "
              f"{args.cores} cores (ideal split; units are independent)")


if __name__ == "__main__":
    main()
