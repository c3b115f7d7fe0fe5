"""Search speed: index build, size on disk, query latency and recall, on synthetic data, one core.

Usage:
    python benchmarks/search.py                          # sizes 100000,1000000
    python benchmarks/search.py --sizes 100000 --only vectors
    python benchmarks/search.py --quick                  # small sizes (a smoke run, well under a minute)

Every scenario is a function `(size, args) -> list of rows` registered in SCENARIOS; the rows
of all scenarios are printed as one Markdown table (columns below). Latencies are one query
per call (as a server answers them), k=10, after a warm-up, pinned to `--threads` cores
(default 1: OpenMP, BLAS and the process's CPU affinity).

What each row measures:
- vectors: synthetic clustered float vectors (dim 512, `--clusters` 1000 centres, Gaussian noise
  of sd `--noise` 2.0 around unit-sd centres, L2-normalised: same-cluster cosines near 0.2,
  others near 0 +- 0.04, so neighbours are findable but not trivially (noise 1.0 gives recall
  1.0 everywhere, 3.0 near-random neighbours); queries are fresh draws, not stored vectors).
  "build" is `update_vectors` from nothing: the exact index (segments, `exact_max` = N) and the
  IVF index (seeded spherical k-means on a sample of 64 vectors per list, all N added, recall
  measured on 200 stored vectors). "open" is `VectorIndex.open` (memory-mapped). Query rows:
  exact and IVF (nprobe 32) with no filter, a 30% filter and a 1% filter (random doc ids);
  recall@10 is the IVF's result against exact search of the same query and filter.
"""

from __future__ import annotations

import os

THREADS = os.environ.get("BENCH_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy/faiss load BLAS
    os.environ.setdefault(_var, THREADS)

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

COLUMNS = ["scenario", "N", "build s", "disk per 1M", "p50 ms", "p95 ms", "p99 ms", "recall@10", "note"]


def row(scenario: str, n: int, **values) -> dict:
    """One table row; missing columns print as '-'."""
    out = {"scenario": scenario, "N": f"{n:,}", **values}
    print("  " + ", ".join(f"{k}={v}" for k, v in out.items()), file=sys.stderr, flush=True)
    return out


def percentiles(seconds: list[float]) -> dict:
    p50, p95, p99 = np.percentile(np.asarray(seconds) * 1e3, [50, 95, 99])
    return {"p50 ms": f"{p50:.2f}", "p95 ms": f"{p95:.2f}", "p99 ms": f"{p99:.2f}"}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def per_million(nbytes: int, n: int) -> str:
    return f"{nbytes / n * 1e6 / 2**30:.2f} GiB"


def clustered_vectors(n: int, dim: int, clusters: int, seed: int, noise: float = 2.0) -> np.ndarray:
    """n L2-normalised float32 vectors around `clusters` fixed random centres (centre seed fixed, draws by `seed`)."""
    centres = np.random.default_rng(12345).standard_normal((clusters, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = centres[rng.integers(0, clusters, m)] + noise * rng.standard_normal((m, dim), dtype=np.float32)
        out[start:start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def time_queries(search: Callable, queries: np.ndarray, allowed: np.ndarray | None) -> tuple[list[float], np.ndarray]:
    """Per-query seconds (one query per call, after two warm-up calls) and the result ids."""
    for q in queries[:2]:
        search(q[None, :], 10, allowed)
    seconds, ids = [], []
    for q in queries:
        start = time.perf_counter()
        got, _ = search(q[None, :], 10, allowed)
        seconds.append(time.perf_counter() - start)
        ids.append(got[0])
    return seconds, np.stack(ids)


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    hits = total = 0
    for a, e in zip(approx, exact):
        truth = set(e[e >= 0].tolist())
        hits += len(truth & set(a.tolist()))
        total += len(truth)
    return hits / total if total else float("nan")


def scenario_vectors(n: int, args) -> list[dict]:
    """Exact and IVF vector indexes over n synthetic clustered vectors (see the module docstring)."""
    from biomedica.search.vectors import VectorIndex, update_vectors

    rows = []
    dim = args.dim
    start = time.perf_counter()
    x = clustered_vectors(n, dim, args.clusters, seed=1, noise=args.noise)
    ids = np.arange(n, dtype=np.int64)
    queries = clustered_vectors(args.queries, dim, args.clusters, seed=2, noise=args.noise)
    print(f"vectors N={n:,}: data in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    rng = np.random.default_rng(3)
    filters = {"none": None, "30%": rng.random(n) < 0.30, "1%": rng.random(n) < 0.01}
    work = Path(tempfile.mkdtemp(prefix="bench-vectors-", dir=args.workdir))
    try:
        exact_dir, ivf_dir = work / "exact", work / "ivf"
        built = update_vectors(exact_dir, ids, x, exact_max=n, threads=args.threads)
        rows.append(row("vector build exact", n, **{"build s": f"{built.seconds:.1f}",
                        "disk per 1M": per_million(folder_bytes(exact_dir), n), "note": "float32 segments (mmap)"}))
        built = update_vectors(ivf_dir, ids, x, exact_max=min(args.exact_max, n - 1), threads=args.threads)
        del x
        ivf = VectorIndex.open(ivf_dir)
        rows.append(row("vector build IVF", n, **{
            "build s": f"{built.seconds:.1f}", "disk per 1M": per_million(folder_bytes(ivf_dir), n),
            "recall@10": f"{built.recall_at_10:.3f}",
            "note": f"nlist {ivf.nlist}, k-means on {ivf.manifest['trained_on']:,}; recall on 200 stored vectors",
        }))
        opened = []
        for _ in range(5):
            t0 = time.perf_counter()
            VectorIndex.open(ivf_dir)
            VectorIndex.open(exact_dir)
            opened.append(time.perf_counter() - t0)
        rows.append(row("vector open (exact + IVF)", n, **percentiles(opened), note="5 opens, memory-mapped"))
        exact = VectorIndex.open(exact_dir)
        for label, allowed in filters.items():
            n_exact = args.queries if n <= 200_000 else max(20, args.queries // 4)
            seconds, _ = time_queries(exact.search, queries[:n_exact], allowed)
            rows.append(row(f"vector exact, filter {label}", n, **percentiles(seconds), note=f"{n_exact} queries"))
            seconds, ivf_ids = time_queries(ivf.search, queries, allowed)
            truth, _ = exact.search(queries, 10, allowed)  # all queries at once (BLAS): the reference
            rows.append(row(f"vector IVF, filter {label}", n, **percentiles(seconds),
                            **{"recall@10": f"{recall(ivf_ids, truth):.3f}"},
                            note=f"nprobe {ivf.nprobe}{' (exact over subset)' if label == '1%' else ''}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


SCENARIOS: dict[str, Callable[[int, argparse.Namespace], list[dict]]] = {
    "vectors": scenario_vectors,
}


def print_table(rows: list[dict], args) -> None:
    print(f"\n### Search benchmark ({args.threads} thread(s); {os.cpu_count()} CPUs on the machine)\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "|".join("---" for _ in COLUMNS) + "|")
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "-")) for c in COLUMNS) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated N")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--quick", action="store_true", help="sizes 20000 and fewer queries (a smoke run)")
    parser.add_argument("--threads", type=int, default=int(THREADS))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=2.0,
                        help="noise sd per dimension (centres have sd 1): 2.0 puts same-cluster cosines near 0.2")
    parser.add_argument("--exact-max", type=int, default=100_000, help="IVF rows: the vector index's exact_max")
    parser.add_argument("--workdir", default=None, help="where indexes are built (default: the temp dir)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.queries, args.exact_max = "20000", 50, 5000
    if hasattr(os, "sched_setaffinity") and args.threads:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    from biomedica.search.vectors import set_threads

    set_threads(args.threads)
    rows = []
    for name in args.only.split(","):
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
        for size in (int(s) for s in args.sizes.split(",")):
            rows.extend(SCENARIOS[name](size, args))
    print_table(rows, args)


if __name__ == "__main__":
    main()
