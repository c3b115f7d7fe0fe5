"""PMC-scale rehearsal: how planning, near-duplicate search and select grow from 1x to 24x, and Ray embed == local.

Usage:
    python benchmarks/scale.py                  # full sizes (~10-15 min on 2 cores); 24x of select projected
    python benchmarks/scale.py --big            # also run select at 24M rows (2,500 files, ~4 GB of Parquet)
    python benchmarks/scale.py --quick          # tiny sizes (the test runs this)
    python benchmarks/scale.py --only plan,dedup --json rows.json

Every measurement runs in its own process (`--measure`), so its peak RSS (VmHWM) is its own;
"work MB" is that peak minus the RSS after imports. Synthetic data from
`biomedica.testing.scale_data` (no images where none are needed).

| section | 1x / 4x / 24x | what is measured |
|---|---|---|
| plan | 250k / 1M / 6M inventory rows (4 rows per article version) | `PmcCloudSource.scan()` over an S3 inventory on a local moto server: manifest + csv.gz reads, version choice, sort, the per-item state; then the pickled size of the source (what every worker receives). The per-item metadata GETs are left out (network-bound, costed in docs/scale-plan.md from benchmarks/fetch.py) |
| plan file (bounded) | the same rows | `pmc_cloud.plan_from_inventory_rows`: the same version choice written as the workers' plan file by DuckDB under a 256MB limit (the route whose memory does not grow; `plan` above still holds every version in the parent) |
| dedup | 1M / 4M / 24M hashes (24M projected) | `curate.dedup_partition.near_groups` (benchmarks/dedup_scale.py) at threshold 6 on 1 and 2 workers under `--memory`; 24M and 64 cores projected |
| select | 1M / 4M / 24M index rows in 104 / 417 / 2,500 shard Parquet files | `run_select` (the real command path: DuckDB views over the files, year >= 2015 AND license group commercial, the manifest streamed to Parquet) with `--memory 256MB` |
| embed | the demo archive | `curate embed` tiny-random model, local and with `--executor ray` (2 CPUs): the same files byte for byte |

Projected rows (marked) extend the measured growth: time with the fitted log-log slope (at
least linear), memory flat when it was flat over the measured range, else linear.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCALES = (1, 4, 24)
FULL = {"plan": 250_000, "dedup": 1_000_000, "select": 1_000_000}
QUICK = {"plan": 2_000, "dedup": 20_000, "select": 10_000}
SELECT_FILES_AT_24X = 2_500
THRESHOLD = 6
SELECT_MEMORY = "256MB"  # select --memory: DuckDB spills beyond it, so the peak stops growing there


# -- one measurement, in its own process ---------------------------------------------------------

def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    from biomedica.io.memory import peak_rss  # VmHWM: ru_maxrss would count this parent's memory too

    return peak_rss() / 2**20


def measure_plan(args) -> dict:
    """scan() of a pmc-cloud source over the inventory the parent uploaded; metadata GETs left out."""
    import pickle

    from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig
    from biomedica.net import NetConfig

    config = PmcCloudConfig(bucket=args.bucket, inventory_manifest=args.manifest,
                            net=NetConfig(endpoint_url=args.endpoint))
    import boto3  # noqa: F401  (the S3 client's import is not the plan's memory)

    base = _rss_mb()
    start = time.perf_counter()
    source = _listing_only_source(config)
    items = len(source.list_items())
    seconds = time.perf_counter() - start
    inline = len(pickle.dumps(source))
    with tempfile.TemporaryDirectory() as folder, source.worker_plan(Path(folder)):
        pickled = len(_pickle_for_workers(source, pickle))
    return {"seconds": seconds, "items": items, "pickled_bytes": pickled, "inline_bytes": inline, "base_mb": base}


def measure_plan_file(args) -> dict:
    """The bounded planning path: inventory rows -> version choice -> the workers' plan file (DuckDB, --memory).

    `pmc_cloud.plan_from_inventory_rows`, fed the synthetic inventory rows as a stream (no S3 reads:
    those are measured by `plan`); the memory limit is DuckDB's, so peak RSS stays near it at any size.
    """
    from biomedica.ingest.sources.pmc_cloud import plan_from_inventory_rows
    from biomedica.testing.scale_data import inventory_rows

    base = _rss_mb()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        rows = ((key, etag, modified) for _bucket, key, _size, modified, etag in inventory_rows(args.size))
        versions = plan_from_inventory_rows(rows, Path(folder) / "plan.parquet", memory="256MB")
    return {"seconds": time.perf_counter() - start, "items": versions, "base_mb": base}


def _listing_only_source(config):
    """A pmc-cloud source that selects every listed version without reading its metadata JSON.

    The metadata is one GET per version: network-bound, costed in docs/scale-plan.md, not here.
    """
    from biomedica.ingest.sources.pmc_cloud import Candidate, PmcCloudSource

    global ListingOnlySource

    class ListingOnlySource(PmcCloudSource):  # module level, so pickle finds it by name
        def _read_metadata_and_filter(self, chosen):
            return [Candidate(listing) for listing in chosen]

    return ListingOnlySource(config)


def _pickle_for_workers(source, pickle) -> bytes:
    """What run_units sends each worker during an ingest: the source inside `worker_plan`, a path, not the etags."""
    return pickle.dumps(source)


def measure_dedup(args) -> dict:
    """Partitioned near-duplicate search (benchmarks/dedup_scale.py, this process is already a fresh one)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from dedup_scale import measure_in_process

    base = _rss_mb()
    row = measure_in_process(args.size, args.workers, THRESHOLD, args.memory)
    return {**row, "base_mb": base,
            "impl": f"{row['units']} units, largest {row['largest_unit']:,}; {row['grouped']:,} grouped; "
                    f"worker peak {row['worker_peak_mb']} MB; budget {args.memory}"}


def measure_select(args) -> dict:
    """run_select with two filters over the generated index archive; manifest written."""
    from biomedica.select import SelectConfig, run_select

    base = _rss_mb()
    config = SelectConfig(archive=Path(args.archive), out=Path(args.out), min_year=2015, license_groups=["commercial"],
                          memory=SELECT_MEMORY)
    start = time.perf_counter()
    result = run_select(config)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "selected": result.selected, "total": result.total, "base_mb": base}


def _embed_with(archive: Path, annotations: Path, executor: str | None) -> tuple[float, dict[str, str], int]:
    from biomedica.archive.annotations import AnnotationStore
    from biomedica.curate.config import EmbedConfig
    from biomedica.curate.embed import embed_archive

    options = {"executor": executor, "shard_workers": 2} if executor else {}
    config = EmbedConfig(model="tiny-random", device="cpu", progress=False, **options)
    start = time.perf_counter()
    result = embed_archive(archive, AnnotationStore(annotations), config)
    seconds = time.perf_counter() - start
    digests = {str(p.relative_to(result.folder)): hashlib.sha256(_content(p)).hexdigest()
               for p in sorted(result.folder.rglob("*")) if p.is_file()}
    return seconds, digests, result.samples


def _content(path: Path) -> bytes:
    """What two runs must agree on: the bytes, less meta.json's `created` time."""
    if path.name != "meta.json":
        return path.read_bytes()
    meta = json.loads(path.read_text())
    meta.pop("created", None)
    return json.dumps(meta, sort_keys=True).encode()


def measure_embed(args) -> dict:
    """Demo archive embedded locally and on a local Ray (2 CPUs): the same files?"""
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest
    from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus

    work = Path(args.out)
    corpus = work / "corpus"
    write_demo_corpus(corpus, DemoCorpusConfig(n_articles=12, seed=0))
    archive = work / "archive"
    run_ingest(IngestConfig(input=corpus, output=archive, workers=1, articles_per_unit=4, progress=False))
    base = _rss_mb()
    local_seconds, local, samples = _embed_with(archive, work / "ann-local", None)
    row = {"seconds": local_seconds, "samples": samples, "files": len(local), "base_mb": base}
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray_seconds, remote, _ = _embed_with(archive, work / "ann-ray", "ray")
    finally:
        ray.shutdown()
    differ = sorted(name for name in set(local) | set(remote) if local.get(name) != remote.get(name))
    return {**row, "ray_seconds": ray_seconds, "ray": "DIFFERENT: " + ", ".join(differ) if differ else "identical",
            "ray_files": len(remote)}


MEASURES = {"plan": measure_plan, "plan_file": measure_plan_file, "dedup": measure_dedup, "select": measure_select, "embed": measure_embed}


def run_measure(args) -> None:
    row = MEASURES[args.measure](args)
    row["peak_mb"] = _peak_mb()
    print(json.dumps(row))


# -- the parent: data, children, table ---------------------------------------------------------

def child(stage: str, timeout: float, **options) -> dict:
    command = ["nice", "-n", "10", sys.executable, __file__, "--measure", stage]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def section_plan(base: int, timeout: float, scales: tuple[int, ...] = SCALES) -> list[dict]:
    from biomedica.testing.scale_data import publish_synthetic_inventory
    from biomedica.testing.servers import LocalS3Server

    rows = []
    with LocalS3Server() as server:
        s3 = server.admin_client()
        for scale in scales:
            n = base * scale
            bucket = f"inventory-{scale}x"
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({  # public, as the PMC bucket: anonymous reads
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
                               "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}],
            }))
            manifest = publish_synthetic_inventory(s3, bucket, n)
            _log(f"plan {scale}x: {n:,} inventory rows uploaded")
            result = child("plan", timeout, bucket=bucket, manifest=manifest, endpoint=server.endpoint_url)
            rows.append({"stage": "plan", "scale": scale, "size": n, "unit": "inventory rows", **result,
                         "note": _plan_note(result)})
            result = child("plan_file", timeout, size=n)
            rows.append({"stage": "plan file (bounded)", "scale": scale, "size": n, "unit": "inventory rows",
                         **result, "note": f"{result.get('items', 0):,} versions; DuckDB memory 256MB"})
    return rows


def _plan_note(result: dict) -> str:
    if "items" not in result:
        return ""
    return (f"{result['items']:,} versions; per worker {result['pickled_bytes'] / 1e3:,.1f} kB "
            f"(the etags inline would be {result['inline_bytes'] / 1e6:,.1f} MB)")


def section_dedup(base: int, timeout: float, memory: str) -> list[dict]:
    rows = []
    for scale in (1, 4):  # 24x projected
        n = base * scale
        for workers in (1, 2):
            _log(f"dedup {n:,} hashes, {workers} worker(s)")
            result = child("dedup", timeout, size=n, workers=workers, memory=memory)
            rows.append({"stage": f"dedup w{workers}", "scale": scale, "size": n, "unit": "hashes", **result,
                         "note": result.get("impl", "")})
    return rows


def select_files(scale: int, quick: bool) -> int:
    """Shard index files at `scale`: 2,500 at 24x as PMC (~10k figures a shard); 96 in the quick run."""
    return max(1, round((96 if quick else SELECT_FILES_AT_24X) * scale / 24))


def section_select(base: int, timeout: float, big: bool, work: Path, quick: bool,
                   scales: tuple[int, ...] = SCALES) -> list[dict]:
    import shutil

    from biomedica.testing.scale_data import write_index_archive

    rows = []
    for scale in scales:
        n = base * scale
        files = select_files(scale, quick)
        if scale == 24 and not big:
            continue
        free = shutil.disk_usage(work).free
        needed = n * 160  # bytes per row of the generated Parquet, measured
        if needed > min(10e9, free / 2):
            _log(f"select {scale}x: needs ~{needed / 1e9:.1f} GB, {free / 1e9:.1f} GB free: projected instead")
            continue
        archive = work / f"select-{scale}x"
        start = time.perf_counter()
        write_index_archive(archive, n, files)
        size = sum(p.stat().st_size for p in archive.rglob("*.parquet"))
        _log(f"select {scale}x: {n:,} rows in {files} files ({size / 1e9:.2f} GB) written in "
             f"{time.perf_counter() - start:.0f} s")
        result = child("select", timeout, archive=archive, out=work / f"selected-{scale}x")
        rows.append({"stage": "select", "scale": scale, "size": n, "unit": f"rows / {files} files",
                     "files_at_24x": select_files(24, quick), **result,
                     "note": f"{result.get('selected', 0):,} selected; --memory {SELECT_MEMORY}" if "selected" in result else ""})
        shutil.rmtree(archive)
        shutil.rmtree(work / f"selected-{scale}x", ignore_errors=True)
    return rows


def section_embed(timeout: float, work: Path) -> list[dict]:
    result = child("embed", timeout, out=work / "embed")
    note = f"{result.get('samples', 0)} samples; ray: {result.get('ray', '-')}"
    if "ray_seconds" in result:
        note += f" ({result['ray_seconds']:.1f} s on Ray, 2 CPUs)"
    return [{"stage": "embed (tiny, demo)", "scale": 1, "size": result.get("samples", 0), "unit": "images",
             **result, "note": note}]


def project(rows: list[dict]) -> list[dict]:
    """Add the missing 1x/4x/24x rows of each stage from the measured ones (marked projected)."""
    out = list(rows)
    by_stage: dict[str, list[dict]] = {}
    for row in rows:
        if "seconds" in row:
            by_stage.setdefault(row["stage"], []).append(row)
    for stage, measured in by_stage.items():
        measured.sort(key=lambda r: r["size"])
        if len(measured) < 2 or stage.startswith("embed"):
            continue
        small, large = measured[0], measured[-1]
        slope = max(1.0, math.log(large["seconds"] / small["seconds"]) / math.log(large["size"] / small["size"]))
        work_small, work_large = _work(small), _work(large)
        flat = work_large <= 1.5 * max(work_small, 1.0)
        unit_size = measured[0]["size"] // measured[0]["scale"]
        for scale in SCALES:
            n = unit_size * scale
            if n <= large["size"] or any(r["size"] == n for r in measured):
                continue
            seconds = large["seconds"] * (n / large["size"]) ** slope
            work = work_large if flat else work_large * n / large["size"]
            unit = large["unit"]
            if "files_at_24x" in large:
                unit = f"rows / {max(1, round(large['files_at_24x'] * scale / 24))} files"
            out.append({"stage": stage, "scale": scale, "size": n, "unit": unit, "seconds": seconds,
                        "peak_mb": large.get("base_mb", 0) + work, "base_mb": large.get("base_mb", 0),
                        "projected": True,
                        "note": f"projected: time x(n ratio)^{slope:.2f}, memory {'flat' if flat else 'linear'}"})
    return out


def _work(row: dict) -> float:
    return max(0.0, row.get("peak_mb", 0.0) - row.get("base_mb", 0.0))


def dedup_cluster_projection(rows: list[dict], cores: int = 64) -> dict | None:
    """24M hashes on `cores` workers from the 1- and 2-worker rows: time(24M, 1) / (cores x 2-worker efficiency)."""
    one = {r["size"]: r for r in rows if r["stage"] == "dedup w1"}
    two = {r["size"]: r for r in rows if r["stage"] == "dedup w2" and not r.get("projected")}
    big = max((r for r in one.values() if r["scale"] == 24), key=lambda r: r["size"], default=None)
    shared = [n for n in two if n in one and not one[n].get("projected")]
    if big is None:
        return None
    efficiency = 1.0
    basis = "no 2-worker row: perfect scaling assumed"
    if shared:
        n = max(shared)
        efficiency = min(1.0, one[n]["seconds"] / two[n]["seconds"] / 2)
        basis = f"2-worker efficiency {efficiency:.2f} at {n:,}"
    seconds = big["seconds"] / (cores * efficiency)
    return {"stage": "dedup (projected)", "scale": 24, "size": big["size"], "unit": f"hashes, {cores} cores",
            "seconds": seconds, "projected": True, "note": f"from the 1-worker 24x row / {cores} cores; {basis}"}


def growth_lines(rows: list[dict]) -> list[str]:
    lines = []
    by_stage: dict[str, dict[int, dict]] = {}
    for row in rows:
        if "seconds" in row and row["scale"] in SCALES:
            by_stage.setdefault(row["stage"], {})[row["scale"]] = row
    for stage, scales in by_stage.items():
        if 1 not in scales or len(scales) < 2:
            continue
        first = scales[1]
        parts = []
        for scale in sorted(scales):
            if scale == 1:
                continue
            row = scales[scale]
            ratio = row["seconds"] / first["seconds"]
            work = row["size"] / first["size"]
            verdict = "linear or better" if ratio <= work * 1.15 else "worse than linear"
            parts.append(f"x{work:g} work: x{ratio:.1f} time ({verdict}{', projected' if row.get('projected') else ''}),"
                         f" work memory {_work(first):,.0f} -> {_work(row):,.0f} MB")
        lines.append(f"- {stage}: " + "; ".join(parts))
    return lines


def print_table(rows: list[dict]) -> None:
    header = ("stage", "scale", "size", "seconds", "rate /s", "peak RSS MB", "work MB", "note")
    table = []
    for row in rows:
        if "seconds" not in row:
            table.append((row["stage"], f"{row['scale']}x", f"{row['size']:,} {row['unit']}", "-", "-", "-", "-",
                          row.get("error", row.get("note", ""))))
            continue
        mark = "~" if row.get("projected") else ""
        table.append((row["stage"], f"{row['scale']}x", f"{row['size']:,} {row['unit']}",
                      f"{mark}{row['seconds']:,.1f}", f"{mark}{row['size'] / max(row['seconds'], 1e-9):,.0f}",
                      f"{mark}{row['peak_mb']:,.0f}" if "peak_mb" in row else "-",
                      f"{mark}{_work(row):,.0f}" if "peak_mb" in row else "-", row.get("note", "")))
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    print("\n~ projected, not measured. Growth from 1x:")
    for line in growth_lines(rows):
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run for the test)")
    parser.add_argument("--big", action="store_true", help="run select at 24x (24M rows) instead of projecting it")
    parser.add_argument("--only", default="plan,dedup,select,embed")
    parser.add_argument("--memory", default="2GB", help="dedup memory budget (partitioned search)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--workdir", type=Path, help="where generated data goes (default: a temp folder, removed)")
    parser.add_argument("--scales", default="1,4,24", help="scales measured for plan and select (others projected)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per measurement")
    # one measurement (internal)
    parser.add_argument("--measure", choices=sorted(MEASURES))
    for name in ("bucket", "manifest", "endpoint", "archive", "out"):
        parser.add_argument(f"--{name}")
    parser.add_argument("--size", type=int)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.measure:
        run_measure(args)
        return
    sizes = QUICK if args.quick else FULL
    only = set(args.only.split(","))
    scales = tuple(int(s) for s in args.scales.split(","))
    _log(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        if "plan" in only:
            rows += section_plan(sizes["plan"], args.timeout, scales)
        if "dedup" in only:
            rows += section_dedup(sizes["dedup"], args.timeout, args.memory)
        if "select" in only:
            rows += section_select(sizes["select"], args.timeout, args.big or args.quick, work, args.quick, scales)
        if "embed" in only:
            rows += section_embed(args.timeout, work)
    rows = project(rows)
    cluster = dedup_cluster_projection(rows)
    if cluster:
        rows.append(cluster)
    rows.sort(key=lambda r: (r["stage"], r["scale"]))
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
