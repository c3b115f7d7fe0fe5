"""Executor ray: a local 2-CPU Ray builds the same archive as the local pool; one rate limit per cluster."""

from __future__ import annotations

import functools
import operator
import subprocess
import sys
import tarfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray")

from biomedica.exec import EXECUTORS, run_units  # noqa: E402
from biomedica.exec.ray_tasks import ClusterRateLimiter, RateLimitLedger  # noqa: E402
from biomedica.images import ImageConfig  # noqa: E402
from biomedica.ingest.config import IngestConfig  # noqa: E402
from biomedica.ingest.pipeline import plan_units  # noqa: E402
from biomedica.ingest.run import run_ingest  # noqa: E402
from biomedica.ingest.sources.directory import DirectorySource  # noqa: E402
from biomedica.ingest.sources.pmc_package import PmcPackageSource  # noqa: E402
from biomedica.net import NetConfig  # noqa: E402

pytestmark = pytest.mark.slow


def _files(root: Path) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".tar", ".parquet") and not p.name.startswith(".")
    }


def test_ray_archive_equals_local_pool_archive_sample_for_sample(local_ray, demo_corpus, demo_archive, tmp_path):
    out = tmp_path / "ray-archive"
    config = IngestConfig(
        input=demo_corpus, output=out, workers=2, articles_per_unit=4, executor="ray", progress=False
    )
    summary = run_ingest(config)
    assert summary.units_run == summary.units_total > 1
    local, remote = _files(demo_archive), _files(out)
    assert sorted(local) == sorted(remote)
    assert any(name.endswith(".tar") for name in local)
    for name, path in local.items():
        if name.endswith(".tar"):
            assert path.read_bytes() == remote[name].read_bytes(), name
        elif "/" in name and name.split("/")[0] in ("commercial", "noncommercial", "other"):
            cols = ["key", "sha256", "caption", "image_offset", "image_size"]
            assert pq.read_table(path, columns=cols).to_pylist() == pq.read_table(remote[name], columns=cols).to_pylist()
        else:  # articles/ and errors/
            assert pq.read_table(path).to_pylist() == pq.read_table(remote[name]).to_pylist(), name
    assert (out / "manifest.json").is_file()


def test_old_ingest_path_keeps_run_ray_and_its_signature(local_ray, demo_corpus, tmp_path):
    from biomedica.ingest import executors_ray as old

    assert (old.ClusterRateLimiter, old.RateLimitLedger) == (ClusterRateLimiter, RateLimitLedger)
    source = DirectorySource(demo_corpus)
    todo = plan_units(source.list_items(), 4)
    done = list(old.run_ray(todo, source, tmp_path, ImageConfig(), 2))
    assert sorted(unit.unit_id for unit, _ in done) == [unit.unit_id for unit in todo] == [0, 1, 2]
    assert all(stats.unit_id == unit.unit_id and stats.total_samples > 0 for unit, stats in done)


def test_ledger_books_tokens_like_a_token_bucket():
    ledger = RateLimitLedger(rate=10.0, burst=1.0)
    waits = [ledger.reserve() for _ in range(3)]
    assert waits[0] == 0.0
    assert waits[1] == pytest.approx(0.1, abs=0.02) and waits[2] == pytest.approx(0.2, abs=0.02)


def test_cluster_rate_limit_is_shared_by_all_workers(local_ray):
    limiter = ClusterRateLimiter.start(rate=20.0, burst=1.0)

    @ray.remote(num_cpus=1)
    def take(limiter: ClusterRateLimiter, n: int) -> float:
        start = time.monotonic()
        for _ in range(n):
            limiter.acquire()
        return time.monotonic() - start

    try:
        started = time.monotonic()
        per_task = ray.get([take.remote(limiter, 8), take.remote(limiter, 8)])
        elapsed = time.monotonic() - started
    finally:
        limiter.stop()
    # 16 requests at 20/s from one bucket take >= 0.75 s; two private buckets would take ~0.35 s
    assert elapsed >= 0.7
    assert max(per_task) >= 0.6


class _TimedHandler(SimpleHTTPRequestHandler):
    hits: list[tuple[str, float]] = []

    def log_message(self, *args) -> None:
        return None

    def do_GET(self) -> None:
        _TimedHandler.hits.append((self.path, time.monotonic()))
        super().do_GET()


@ray.remote(num_cpus=1)
def _warm_worker() -> None:
    import biomedica.ingest.pipeline  # noqa: F401
    import biomedica.ingest.sources.pmc_package  # noqa: F401

    time.sleep(0.5)


def test_network_source_on_ray_shares_one_request_rate(local_ray, fixtures_dir, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    names = []
    for folder in ("PMC10802347", "elife-00353"):
        with tarfile.open(mirror / f"{folder}.tar.gz", "w:gz") as tar:
            for path in sorted((fixtures_dir / "pmc_packages" / folder).iterdir()):
                if path.suffix != ".txt":
                    tar.add(path, arcname=f"{folder}/{path.name}")
        names.append(f"{folder}.tar.gz")
    (mirror / "broken.tar.gz").write_bytes((mirror / names[0]).read_bytes()[:5000])  # truncated: still one GET
    rows = [f"{n},c,PMC{i + 1},2024-01-31 18:42:00,,CC BY" for i, n in enumerate(names + ["broken.tar.gz"])]
    (mirror / "oa_file_list.csv").write_text("\n".join(rows) + "\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_TimedHandler, directory=str(mirror)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _TimedHandler.hits = []
    ray.get([_warm_worker.remote() for _ in range(2)])  # two live workers, imports done: units start together
    try:
        source = PmcPackageSource(
            base, file_list=f"{base}/oa_file_list.csv", net=NetConfig(requests_per_second=2.0, burst=1.0)
        )
        out = tmp_path / "archive"
        config = IngestConfig(input=tmp_path, output=out, workers=2, articles_per_unit=1, executor="ray", progress=False)
        summary = run_ingest(config, source=source)
    finally:
        server.shutdown()
        server.server_close()
    assert summary.samples_total == 5 and summary.errors_by_kind.get("source-unreadable") == 1
    package_hits = sorted(t for path, t in _TimedHandler.hits if path.endswith(".tar.gz"))
    assert len(package_hits) == 3
    # two workers, one 2/s bucket: every package GET comes >= 0.5 s after the previous one,
    # however the workers interleave (private buckets would let both workers' first GETs through together)
    gaps = [b - a for a, b in zip(package_hits, package_hits[1:])]
    assert min(gaps) >= 0.4, gaps


def test_ray_executor_is_registered_without_importing_ray():
    code = "import sys, biomedica.ingest.run, biomedica.exec as e; assert 'ray' in e.EXECUTORS; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert "ray" in EXECUTORS


def test_run_units_on_ray_returns_every_result_and_names_a_failing_unit(local_ray):
    units = [(f"u{i}", i * i) for i in range(6)]
    results = dict(run_units(operator.getitem, units, executor="ray", workers=2, context=1))
    assert results == {unit: unit[1] for unit in units}
    with pytest.raises(IndexError) as info:
        list(run_units(operator.getitem, [units[0], ("short",)], executor="ray", workers=2, context=1))
    assert "raised while running work unit ('short',)" in info.value.__notes__
