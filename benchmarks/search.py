"""Search speed: index build, size on disk, query latency and recall, on synthetic data, one core.

Usage:
    python benchmarks/search.py                          # sizes 100000,1000000
    python benchmarks/search.py --sizes 100000 --only vectors
    python benchmarks/search.py --quick                  # small sizes (a smoke run, about a minute)
    python benchmarks/search.py --sizes 100000 --only search,server

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
- search: a complete index folder over N synthetic PMC-shaped captions (benchmarks/search_corpus.py)
  and 2 x N clustered vectors (image, text; as wide as `--query-model`'s text tower), written by
  the functions `biomedica index` runs (index_unit, write_docs_part, write_filter_columns of
  build_filter_table over synthetic annotation tables, update_all_vectors over embedding parts
  written as `curate embed` writes them, state.json): build seconds and bytes per
  1M per part; `SearchIndex.open` time and RSS in fresh processes; then `SearchEngine.search`
  (limit 20, two filters: licence group + year range, cycled) for keyword, semantic and hybrid,
  the query embedding timed apart (and cached before the search is timed).
- server: the real app (`create_app`, uvicorn, one worker, pinned to one CPU) over that index;
  `--clients` httpx threads on the other CPU alternate keyword and hybrid searches with two
  filters for `--server-seconds`; req/s and client-side latency (queueing included).
A projection to 24M figures (disk and RSS, fixed + per-doc cost fitted over the sizes built)
closes the output.
"""

from __future__ import annotations

import os

THREADS = os.environ.get("BENCH_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy/faiss load BLAS
    os.environ.setdefault(_var, THREADS)

import argparse
import itertools
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
ALL_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []  # before main() pins

COLUMNS = ["scenario", "N", "build s", "disk per 1M", "p50 ms", "p95 ms", "p99 ms", "recall@10", "RSS", "req/s", "note"]


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


# --- the search index (keyword + docs + filters + vectors) and serve's engine over it ----------------------

EMBEDDING = "bench"  # the embedding name the synthetic index records
UNIT = 20_000  # docs per synthetic unit (one docs_part + one round of writer.add, as build does per unit)
FILTER_SETS = (  # two filters per query (licence group + year range), cycled over the queries
    {"license_group": ["commercial"], "year_from": 2015, "year_to": 2025},
    {"license_group": ["noncommercial"], "year_from": 2010, "year_to": 2020},
    {"license_group": ["commercial", "noncommercial"], "year_from": 2020, "year_to": 2025},
)
_BUILT: dict[int, dict] = {}  # N -> the synthetic index built for it (shared by the search and server scenarios)


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def rss_of(pid: int | str = "self") -> int:
    """Resident set size in bytes (/proc; 0 where there is none)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def query_model(args) -> tuple[object, int]:
    """The query text model (loaded once) and its embedding width: the vectors are made that wide."""
    if not hasattr(args, "_model"):
        from biomedica.models.load import load_model

        args._model = load_model(args.query_model, "cpu")
        args._dim = int(np.asarray(args._model.text_vectors(["dim"])).shape[1])
    return args._model, args._dim


def synthetic_annotations(docs, folder: Path, seed: int = 5) -> None:
    """panels / concepts / clusters / dedup / quality tables keyed like curate's, so filters.parquet has its real columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    keys = docs.column("key")
    n = len(keys)
    folder.mkdir(parents=True, exist_ok=True)
    concepts = np.array([f"c{i:03d}" for i in range(120)], dtype=object)
    pq.write_table(pa.table({"key": keys, "panel_type": pa.array(np.where(rng.random(n) < 0.6, "multiple", "single"))}),
                   folder / "panels.parquet")
    pq.write_table(pa.table({"key": keys, "zs_global": pa.array(concepts[rng.integers(0, 12, n)].tolist()),
                             "zs_local": pa.array(concepts[rng.integers(12, 120, n)].tolist())}), folder / "concepts.parquet")
    pq.write_table(pa.table({"key": keys, "cluster": pa.array(rng.integers(0, 2_000, n).astype(np.int32))}),
                   folder / "clusters.parquet")
    dup = rng.random(n) < 0.05  # 5% near-duplicates in groups of two
    group = np.where(dup, (np.arange(n) // 2).astype(str), None)
    pq.write_table(pa.table({"key": keys, "canonical": pa.array(~dup | (np.arange(n) % 2 == 0)),
                             "dup_group": pa.array(group.tolist(), pa.string())}), folder / "dedup.parquet")
    flags = [["low_resolution"] if r < 0.03 else (["blank"] if r < 0.04 else []) for r in rng.random(n)]
    pq.write_table(pa.table({"key": keys, "flags": pa.array(flags, pa.list_(pa.string()))}), folder / "quality.parquet")


def synthetic_embeddings(docs, folder: Path, dim: int, args) -> float:
    """An embedding folder as `biomedica curate embed` writes it (meta.json; per shard `<group>-<shard>.keys.parquet`
    and float16 `.image.npy` / `.text.npy`) holding clustered vectors; returns the seconds spent generating them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from biomedica.io.atomic import write_json_atomic, write_parquet_atomic

    spent = 0.0
    folder.mkdir(parents=True, exist_ok=True)
    model, _, pretrained = args.query_model.partition(":")
    write_json_atomic(folder / "meta.json", {"model": model, "pretrained": pretrained or None, "dim": dim,
                                             "decode": "synthetic", "text": True, "dtype": "float16", "normalized": True})
    shard = pc.binary_join_element_wise(docs.column("group"), docs.column("shard"), "-")
    codes = np.asarray(pc.dictionary_encode(shard).combine_chunks().indices.to_numpy(zero_copy_only=False))
    starts = np.concatenate([[0], np.flatnonzero(codes[1:] != codes[:-1]) + 1, [len(codes)]])
    for i, (a, b) in enumerate(itertools.pairwise(starts)):
        stem = docs.column("group")[int(a)].as_py() + "-" + Path(docs.column("shard")[int(a)].as_py()).stem
        for k_seed, kind in ((11, "image"), (12, "text")):
            t0 = time.perf_counter()
            x = clustered_vectors(int(b - a), dim, args.clusters, seed=k_seed * 100_000 + i, noise=args.noise)
            spent += time.perf_counter() - t0
            np.save(folder / f"{stem}.{kind}.npy", x.astype(np.float16), allow_pickle=False)
        write_parquet_atomic(folder / f"{stem}.keys.parquet", pa.table({"key": docs.column("key").slice(int(a), int(b - a))}))
    return spent


def synthetic_index(n: int, args) -> dict:
    """A complete index folder over n synthetic captions and 2 x n vectors, built by the functions `biomedica index` runs.

    As build.py's `_build`: per unit of UNIT docs `index_unit` (docs_part rows, `to_pylist` +
    `KeywordWriter.add` per live doc), one tantivy commit, `write_docs_part` + `write_key_order`,
    `write_filter_columns`
    of `build_filter_table` (DuckDB over annotation tables), `update_all_vectors` (one update per
    embedding kind over a VectorSource of the memory-mapped embedding parts, written here as
    `curate embed` writes them), state.json last. Building from a real archive would need 1M
    ingested JATS articles (hours here); `unit_samples` (reading a shard's Parquet) is the only
    step skipped. Times exclude generating the synthetic text and vectors.
    """
    if n in _BUILT:
        return _BUILT[n]
    import pyarrow as pa
    from search_corpus import Corpus

    from biomedica.archive.annotations import AnnotationStore
    from biomedica.index.build import index_unit, update_all_vectors
    from biomedica.index.config import IndexConfig
    from biomedica.io.atomic import write_json_atomic
    from biomedica.search.docs import read_docs, write_docs_part, write_key_order
    from biomedica.search.filters import build_filter_table, write_filter_columns
    from biomedica.search.keyword import KeywordWriter
    from biomedica.search.layout import SCHEMA_VERSION, IndexLayout

    _, dim = query_model(args)
    work = Path(tempfile.mkdtemp(prefix="bench-search-", dir=args.workdir))
    archive, layout = work / "archive", IndexLayout(work / "archive" / "index")
    annotations = archive / "annotations"
    archive.mkdir()
    corpus = Corpus(seed=0)
    t = {"generate": 0.0, "units": 0.0, "docs": 0.0, "keyword": 0.0, "filters": 0.0, "vectors": 0.0, "vectors gen": 0.0}
    writer = KeywordWriter(layout.keyword)
    parts = []
    for unit, start in enumerate(range(0, n, UNIT)):
        t0 = time.perf_counter()
        samples = corpus.samples(start, min(UNIT, n - start), unit)
        t1 = time.perf_counter()
        parts.append(index_unit(writer, samples, start, 1, {}))
        t["generate"] += t1 - t0
        t["units"] += time.perf_counter() - t1
        print(f"\r  index N={n:,}: {start + samples.num_rows:,} docs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    t0 = time.perf_counter()
    writer.commit()
    t1 = time.perf_counter()
    layout.docs_dir.mkdir(parents=True, exist_ok=True)
    write_docs_part(layout, 1, pa.concat_tables(parts))
    docs = read_docs(layout, through_batch=1)
    write_key_order(layout, docs)
    t2 = time.perf_counter()
    t["keyword"] += t1 - t0
    t["docs"] += t2 - t1
    del writer, parts
    synthetic_annotations(docs, annotations)
    store = AnnotationStore(annotations)
    t0 = time.perf_counter()
    write_filter_columns(layout.filters, docs, build_filter_table(docs, np.ones(n, bool), store))
    t["filters"] = time.perf_counter() - t0
    t["vectors gen"] = synthetic_embeddings(docs, store.embeddings_dir(EMBEDDING), dim, args)
    config = IndexConfig(archive=archive, annotations=annotations, index_dir=layout.root,
                         **({"exact_max": args.exact_max} if args.quick else {}))
    state = {"schema_version": SCHEMA_VERSION, "archive": str(archive), "annotations": str(annotations), "batch": 1,
             "units": [], "docs": n, "live_docs": n, "created": "bench", "updated": "bench", "embeddings": {}}
    t0 = time.perf_counter()
    summaries, _ = update_all_vectors(config, layout, store, docs, state)
    t["vectors"] = time.perf_counter() - t0
    write_json_atomic(layout.state, state)
    kinds = {v.kind: {"count": v.total, "mode": v.mode, "recall_at_10": v.recall_at_10} for v in summaries}
    sizes = {"keyword": folder_bytes(layout.keyword), "docs": folder_bytes(layout.docs_dir) + layout.key_order.stat().st_size,
             "filters": layout.filters.stat().st_size,
             "image": folder_bytes(layout.vectors(EMBEDDING, "image")), "text": folder_bytes(layout.vectors(EMBEDDING, "text"))}
    shutil.rmtree(store.embeddings_dir(EMBEDDING))  # curate's output, not the index's: the disk it takes is not measured
    _BUILT[n] = {"work": work, "archive": archive, "index": layout.root, "seconds": t, "sizes": sizes, "kinds": kinds,
                 "corpus": corpus, "dim": dim}
    return _BUILT[n]


RSS_PROBE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
import biomedica.search.reader, biomedica.search.vectors, tantivy, faiss  # imports are not the index
from biomedica.search.filters import SearchFilters
from biomedica.search.reader import SearchIndex
base = rss()
t0 = time.perf_counter()
index = SearchIndex.open(sys.argv[2], sys.argv[3])
opened = time.perf_counter() - t0
after_open = rss()
f = SearchFilters(license_group=["commercial"], year_from=2015, year_to=2025)
index.keyword("il-6 western", f, 100)
after_keyword = rss()
mask = index.mask(f)
for kind in ("image", "text"):
    v = index.vectors(None, kind)
    q = np.random.default_rng(0).standard_normal((1, v.dim)).astype(np.float32)
    v.search(q, 100, allowed=mask)
after_vectors = rss()
print(json.dumps({"base": base, "open": after_open - base, "keyword": after_keyword - base,
                  "vectors": after_vectors - base, "seconds": opened}))
"""


def start_pinned(cmd: list[str], cpu: int | None, **options) -> subprocess.Popen:
    """A child process pinned to one CPU (None: inherit) as soon as it starts."""
    proc = subprocess.Popen(cmd, **options)
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(proc.pid, {cpu})
        except OSError:
            pass
    return proc


def scenario_index(n: int, args) -> list[dict]:
    """Index build per part (time, bytes on disk per 1M), SearchIndex.open (time, RSS), and query latency through SearchEngine."""
    built = synthetic_index(n, args)
    t, sizes = built["seconds"], built["sizes"]
    rate = lambda s: f"{n / s:,.0f} docs/s" if s > 0 else "-"
    rows = [
        row("index units (index_unit)", n, **{"build s": f"{t['units']:.1f}",
            "note": f"{rate(t['units'])}: docs_part + to_pylist + KeywordWriter.add per doc; "
                    f"text generation ({t['generate']:.0f} s) excluded"}),
        row("index keyword commit (tantivy)", n, **{"build s": f"{t['keyword']:.1f}",
            "disk per 1M": per_million(sizes["keyword"], n), "note": "6 text fields + parts"}),
        row("index docs table", n, **{"build s": f"{t['docs']:.1f}", "disk per 1M": per_million(sizes["docs"], n),
            "note": "write_docs_part (uncompressed Arrow IPC, caption cut at 500 chars) + write_key_order"}),
        row("index filters (DuckDB)", n, **{"build s": f"{t['filters']:.1f}", "disk per 1M": per_million(sizes["filters"], n),
            "note": "build_filter_table over panels/concepts/clusters/dedup/quality + write_filter_columns"}),
        row(f"index vectors image+text ({built['dim']}-d)", n, **{
            "build s": f"{t['vectors']:.1f}", "disk per 1M": per_million(sizes["image"] + sizes["text"], n),
            "note": "update_all_vectors (float16 embedding parts, one update per kind); vector generation excluded"}),
    ]
    for kind in ("image", "text"):
        k = built["kinds"][kind]
        recall = k["recall_at_10"]
        rows.append(row(f"index vectors {kind}", n, **{
            "disk per 1M": per_million(sizes[kind], n), "recall@10": f"{recall:.3f}" if recall is not None else "-",
            "note": k["mode"]}))
    total_s = t["units"] + t["keyword"] + t["docs"] + t["filters"] + t["vectors"]
    rows.append(row("index total", n, **{"build s": f"{total_s:.1f}", "disk per 1M": per_million(sum(sizes.values()), n),
                    "note": f"{rate(total_s)}; keyword+docs+filters = {per_million(sizes['keyword'] + sizes['docs'] + sizes['filters'], n)} per 1M"}))

    # SearchIndex.open in a fresh process: time and resident memory
    probes = []
    for _ in range(3):
        proc = start_pinned([sys.executable, "-c", RSS_PROBE, str(REPO / "src"), str(built["index"]), str(built["archive"])],
                            ALL_CPUS[0] if ALL_CPUS else None, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout, stderr = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"RSS probe failed: {stderr.strip().splitlines()[-1:]}")
        probes.append(json.loads(stdout.strip().splitlines()[-1]))
    last = probes[-1]
    built["rss"] = last
    rows.append(row("SearchIndex.open", n, **percentiles([p["seconds"] for p in probes]), RSS=gib(last["open"]),
                    note=f"3 fresh processes; RSS over imports; after a keyword query {gib(last['keyword'])}, "
                         f"after image+text vector searches {gib(last['vectors'])}"))
    rows.extend(engine_latency(n, built, args))
    return rows


def engine_latency(n: int, built: dict, args) -> list[dict]:
    """p50/p95/p99 of SearchEngine.search (one query at a time, limit 20, two filters), query embedding apart."""
    from biomedica.models.load import load_model
    from biomedica.search.filters import SearchFilters
    from biomedica.search.reader import SearchIndex
    from biomedica.serve.config import ServeConfig
    from biomedica.serve.engine import SearchEngine

    query_model(args)  # loaded (the engine loads its own from ServeConfig.model)
    engine = SearchEngine(ServeConfig(archive=built["archive"], model=args.query_model),
                          index=SearchIndex.open(built["index"], built["archive"]))
    queries = built["corpus"].queries(args.queries)
    filters = [SearchFilters(**FILTER_SETS[i % len(FILTER_SETS)]) for i in range(len(queries))]
    embed = []
    for q in queries:  # the engine caches each query's vector: the searches below reuse it
        t0 = time.perf_counter()
        engine.text_vector(q)
        embed.append(time.perf_counter() - t0)
    rows = [row(f"query embedding {args.query_model}", n, **percentiles(embed[1:]),
                note=f"text tower on CPU, {len(queries)} queries; NOT in the search rows below (cached before timing)")]
    if not args.query_model.startswith("tiny-random"):
        tiny = load_model("tiny-random", "cpu")
        tiny.text_vectors(queries[:2])
        seconds = []
        for q in queries:
            t0 = time.perf_counter()
            tiny.text_vectors([q])
            seconds.append(time.perf_counter() - t0)
        rows.append(row("query embedding tiny-random", n, **percentiles(seconds), note="the test model's text tower (32-d)"))
    for mode in ("keyword", "semantic", "hybrid"):
        for q, f in list(zip(queries, filters))[:10]:  # warm-up
            engine.search(q, mode, f, limit=20)
        seconds, fallback, totals = [], 0, []
        for q, f in zip(queries, filters):
            t0 = time.perf_counter()
            answer = engine.search(q, mode, f, limit=20)
            seconds.append(time.perf_counter() - t0)
            fallback += answer.get("match") == "any"
            totals.append(answer["total"])
        extra = f"; {fallback} of {len(queries)} fell back to any-term" if mode != "semantic" else ""
        allowed = np.mean([engine.mask(f).mean() for f in filters[:3]])
        rows.append(row(f"search {mode}, 2 filters", n, **percentiles(seconds),
                        note=f"SearchEngine.search limit 20 (mask, ranking, RRF, result rows); filters keep "
                             f"~{allowed:.0%}; median total {int(np.median(totals)):,}{extra}; query embedding excluded"))
    return rows


SERVER = r"""
import sys
sys.path.insert(0, sys.argv[1])
import uvicorn
from biomedica.serve.app import create_app
from biomedica.serve.config import ServeConfig
config = ServeConfig(archive=sys.argv[2], index=sys.argv[3], model=sys.argv[4], port=int(sys.argv[5]))
uvicorn.run(create_app(config), host="127.0.0.1", port=config.port, workers=1, log_level="warning")
"""


def scenario_server(n: int, args) -> list[dict]:
    """Requests/s and latency of the real app (uvicorn, one worker, one CPU) under `--clients` concurrent clients."""
    import httpx

    built = synthetic_index(n, args)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server_cpu = ALL_CPUS[0] if ALL_CPUS else None
    proc = start_pinned([sys.executable, "-c", SERVER, str(REPO / "src"), str(built["archive"]), str(built["index"]),
                         args.query_model, str(port)], server_cpu, stdout=subprocess.DEVNULL,
                        stderr=open(built["work"] / "server.log", "w"))  # noqa: SIM115 (the child holds it)
    base = f"http://127.0.0.1:{port}"
    before = os.sched_getaffinity(0) if ALL_CPUS else None
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{base}/api/info", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (built["work"] / "server.log").read_text(errors="replace")
                raise RuntimeError(f"the server did not start: {log.strip()[-300:]}")
            time.sleep(0.5)
        if len(ALL_CPUS) > 1:
            os.sched_setaffinity(0, set(ALL_CPUS[1:]))  # clients beside the server's CPU
        queries = built["corpus"].queries(min(args.queries, 200), seed=8)  # <= the engine's 256-query vector cache
        params = [{"q": q, "limit": 20, **FILTER_SETS[i % len(FILTER_SETS)]} for i, q in enumerate(queries)]
        with httpx.Client(base_url=base, timeout=60) as client:
            for p in params:  # warm: every query embedded once (the engine caches it) and its pages touched
                for mode in ("keyword", "hybrid"):
                    r = client.get("/api/search", params={**p, "mode": mode})
                    r.raise_for_status()
        results: list[tuple[str, float, int]] = []
        lock = threading.Lock()
        stop = time.monotonic() + args.server_seconds

        def client_loop(seed: int) -> None:
            rng = np.random.default_rng(seed)
            mine = []
            with httpx.Client(base_url=base, timeout=60) as c:
                i = 0
                while time.monotonic() < stop:
                    mode = ("keyword", "hybrid")[i % 2]
                    p = params[int(rng.integers(len(params)))]
                    t0 = time.perf_counter()
                    status = c.get("/api/search", params={**p, "mode": mode}).status_code
                    mine.append((mode, time.perf_counter() - t0, status))
                    i += 1
            with lock:
                results.extend(mine)

        started = time.monotonic()
        threads = [threading.Thread(target=client_loop, args=(s,)) for s in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.monotonic() - started
        server_rss = rss_of(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if before is not None:
            os.sched_setaffinity(0, before)
    failed = sum(1 for _, _, status in results if status != 200)
    rows = [row(f"server {args.clients} clients, keyword+hybrid", n, **percentiles([s for _, s, _ in results]),
                RSS=gib(server_rss), **{"req/s": f"{len(results) / elapsed:.1f}"},
                note=f"uvicorn 1 worker on 1 CPU, httpx clients on the other; {len(results):,} requests in "
                     f"{elapsed:.0f} s, {failed} not 200; 2 filters; query vectors cached by the engine (warmed)")]
    for mode in ("keyword", "hybrid"):
        mine = [s for m, s, _ in results if m == mode]
        rows.append(row(f"server {args.clients} clients: {mode} requests", n, **percentiles(mine),
                        **{"req/s": f"{len(mine) / elapsed:.1f}"}, note="latency seen by the client (queueing included)"))
    return rows


def _per_doc(values: dict[int, float]) -> tuple[float, float]:
    """(fixed bytes, bytes per doc): a line through the two largest sizes measured, else through zero."""
    sizes = sorted(values)
    if len(sizes) >= 2:
        a, b = sizes[-2], sizes[-1]
        slope = (values[b] - values[a]) / (b - a)
        return values[b] - slope * b, slope
    return 0.0, values[sizes[-1]] / sizes[-1]


def print_projection(args, target: int = 24_000_000) -> None:
    """Disk and memory at `target` figures, from the indexes built (fixed + per-doc cost where two sizes exist)."""
    if not _BUILT:
        return
    n = max(_BUILT)
    built = _BUILT[n]
    sources = ", ".join(f"{m:,}" for m in sorted(_BUILT))
    print(f"\n### Projection to {target / 1e6:.0f}M figures (from N = {sources}; vectors {built['dim']}-d float32)\n")
    print("| part | bytes per doc | at 24M | note |")
    print("|---|---|---|---|")
    notes = {
        "keyword": "disk; tantivy mmap: resident = pages the queries touch",
        "docs": "disk (uncompressed Arrow IPC); memory-mapped: resident = the rows results show",
        "filters": "disk (Arrow IPC codes); memory-mapped numpy: a mask reads the columns it tests",
        "image": "disk; faiss IVF lists mmap'd: resident = lists probed",
        "text": "disk; faiss IVF lists mmap'd: resident = lists probed",
    }
    for part in built["sizes"]:
        fixed, per_doc = _per_doc({m: b["sizes"][part] for m, b in _BUILT.items()})
        print(f"| disk {part} | {per_doc:,.0f} | {gib(fixed + per_doc * target)} | {notes[part]} |")
    total = {m: sum(b["sizes"].values()) for m, b in _BUILT.items()}
    fixed, per_doc = _per_doc(total)
    print(f"| disk total | {per_doc:,.0f} | {gib(fixed + per_doc * target)} | |")
    with_rss = {m: b["rss"] for m, b in _BUILT.items() if "rss" in b}
    for label, field in (("RSS after SearchIndex.open", "open"), ("RSS after a keyword + 2 vector searches", "vectors")):
        if with_rss:
            fixed, per_doc = _per_doc({m: r[field] for m, r in with_rss.items()})
            print(f"| {label} | {per_doc:,.0f} | {gib(fixed + per_doc * target)} | fixed part {gib(max(fixed, 0))} |")


SCENARIOS: dict[str, Callable[[int, argparse.Namespace], list[dict]]] = {
    "vectors": scenario_vectors,
    "search": scenario_index,
    "server": scenario_server,
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
    parser.add_argument("--query-model", default="ViT-B-16:random",
                        help="query text model spec (its width sets the vectors'): ViT-B-16:random has a real CLIP "
                             "text tower's cost with random weights (no download); tiny-random is the 32-d test model")
    parser.add_argument("--clients", type=int, default=8, help="server scenario: concurrent clients")
    parser.add_argument("--server-seconds", type=float, default=20.0, help="server scenario: how long the clients run")
    parser.add_argument("--server-max", type=int, default=100_000, help="server scenario: only at sizes up to this")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic index folders (printed at the end)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.queries, args.exact_max, args.server_seconds = "20000", 50, 5000, 5.0
        args.server_max = max(args.server_max, 20000)
    if hasattr(os, "sched_setaffinity") and args.threads:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    from biomedica.search.vectors import set_threads

    set_threads(args.threads)
    rows = []
    names = args.only.split(",")
    for name in names:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    sizes = [int(s) for s in args.sizes.split(",")]
    try:
        for size in sizes:  # size outer: one synthetic index at a time on disk
            for name in names:
                if name == "server" and size > args.server_max:
                    continue
                rows.extend(SCENARIOS[name](size, args))
            print_table(rows, args)  # so far (a later size may take long)
            if size != sizes[-1] and not args.keep:
                for n in list(_BUILT):
                    if n == size and n != max(sizes):
                        shutil.rmtree(_BUILT[n]["work"], ignore_errors=True)
        print_projection(args)
    finally:
        for built in _BUILT.values():
            if args.keep:
                print(f"kept: {built['index']}", file=sys.stderr)
            else:
                shutil.rmtree(built["work"], ignore_errors=True)


if __name__ == "__main__":
    main()
