"""Fetch speed from a PMC Cloud layout bucket: articles/s and MB/s vs concurrent requests.

    python benchmarks/fetch.py                       # 1, 4, 16, 64 requests in flight, 50 ms latency
    python benchmarks/fetch.py --latency 0.1 --articles 300 --levels 1 8 64 128

Setup. A child process runs moto's S3 server on 127.0.0.1 behind biomedica's FaultProxy,
which adds `--latency` seconds to every request (a remote bucket's round trip); the bucket
holds `--articles` article versions in the PMC Cloud layout, copies (with fresh PMCIDs) of
the real fixture articles that have images (../shared/fixtures: a PMC package, a JATS 1.4
cloud-era article, a BMC article; XML + JSON + figure JPEGs). Servers run in their own
process, so this process's CPU time is the client's alone.

What is measured.
- fetch: for each concurrency level, a NetClient with that many requests in flight fetches,
  per article, what the pmc-cloud source fetches: metadata JSON, XML, the figure images
  (never PDFs or thumbnails), md5-checked. Articles/s, MB/s, and client CPU ms per article.
  Saturation: the first level whose speed-up over the previous level is < half the added
  concurrency (near-linear growth stops there).
- stream: the same objects read one at a time by the streaming reader (`biomedica.net.stream`,
  what each training `pipe:` process runs), next to the client at concurrency 1 (same retry
  policy and error kinds, different transport: stdlib urllib); and the start-up time of
  the `pipe:` helper process (it imports the standard library only).
- ingest: a full `pmc-cloud` ingest (fetch + parse + image checks/hash + shards + Parquet)
  with one worker process and 16 requests in flight: wall articles/s and CPU s/article, the
  per-core figure the projection uses.
- projection: time and cost to ingest ~6M articles on N cores from the per-core CPU figure
  (assumptions printed with the result).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
BUCKET = "pmc-bench"
FULL_PMC_OA = 6_000_000


def template_articles() -> list[tuple[str, bytes, dict[str, bytes]]]:
    """(pmcid, xml, media) of the fixture articles with real images."""
    package = FIXTURES / "pmc_packages" / "PMC10802347"
    ijms = sorted((FIXTURES / "images" / "pmc_package_figures" / "PMC10487465").glob("*.jpg"))
    genome = FIXTURES / "images" / "pmc_package_figures" / "PMC1175969"
    jpgs = itertools.cycle(ijms)
    return [
        ("PMC10802347", next(package.glob("*.nxml")).read_bytes(),
         {p.name: p.read_bytes() for p in sorted(package.iterdir()) if p.suffix in (".jpg", ".gif")}),
        ("PMC13173394", (FIXTURES / "pmc_nxml" / "PMC13173394.nxml").read_bytes(),
         {f"RCM-40-e70102-g00{n}.jpg": next(jpgs).read_bytes() for n in range(1, 10)}),
        ("PMC3166277", (FIXTURES / "pmc_nxml" / "PMC3166277.nxml").read_bytes(),
         {f"1471-2180-11-174-{n}.jpg": (genome / f"gb-2005-6-6-r49-{n}.jpg").read_bytes() for n in range(1, 5)}),
    ]


def serve(n_articles: int, latency: float, ready, stop) -> None:
    """Child process: S3 server + latency proxy + bucket; sends the proxy URL, runs until `stop`."""
    from biomedica.testing.cloud_mirror import publish_inventory, publish_version
    from biomedica.testing.servers import FaultProxy, LocalS3Server

    with LocalS3Server() as s3:
        admin = s3.admin_client()
        admin.create_bucket(Bucket=BUCKET)
        admin.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
                           "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}],
        }))
        templates = template_articles()
        for i in range(n_articles):
            pmcid, xml, media = templates[i % len(templates)]
            new_id = f"PMC{20_000_000 + i}"
            xml = xml.replace(pmcid[3:].encode(), new_id[3:].encode())  # a distinct article per copy
            publish_version(admin, BUCKET, new_id, 1, xml, media, license_code="CC BY")
        from datetime import datetime, timezone

        publish_inventory(admin, BUCKET, datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc))
        with FaultProxy(s3.endpoint_url, latency=latency) as proxy:
            ready.put(proxy.endpoint_url)
            stop.wait()


def article_urls(source) -> list[list[str]]:
    """Per article: the URLs the pmc-cloud source fetches (JSON, XML, figure images)."""
    from biomedica.ingest.resolve_images import resolve_graphic
    from biomedica.ingest.sources.pmc_cloud import _FIG, _GRAPHIC_TAG, _HREF, _THUMB  # the source's own rules

    out = []
    for item in source.list_items():
        meta = source.metadata(item)
        xml = source.client.get(meta.xml_url.replace("pmc-oa-opendata", BUCKET))
        media = {u.split("?")[0].rsplit("/", 1)[-1]: u.replace("pmc-oa-opendata", BUCKET) for u in meta.media_urls}
        urls = [f"s3://{BUCKET}/{item}/{item}.json", meta.xml_url.replace("pmc-oa-opendata", BUCKET)]
        for fig in _FIG.findall(xml):
            for tag in _GRAPHIC_TAG.findall(fig):
                href = _HREF.search(tag)
                if href and not _THUMB.search(tag):
                    name = resolve_graphic(href[1].decode(), list(media))
                    if name:
                        urls.append(media[name])
        out.append(urls)
    return out


def bench_fetch(endpoint: str, per_article: list[list[str]], level: int, n_articles: int) -> dict:
    from biomedica.net import NetClient, NetConfig

    client = NetClient(NetConfig(endpoint_url=endpoint, max_concurrency=level))
    urls = [u for article in per_article[:n_articles] for u in article]
    client.get(urls[0])  # connect once outside the clock
    started, cpu = time.perf_counter(), time.process_time()
    results = client.get_many(urls)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise SystemExit(f"{len(failed)} fetches failed, first: {failed[0]}")
    size = sum(len(r) for r in results)
    client.close()
    return {"concurrency": level, "articles": n_articles, "requests": len(urls), "seconds": wall,
            "articles_per_s": n_articles / wall, "mb_per_s": size / wall / 1e6, "mb": size / 1e6,
            "cpu_ms_per_article": 1000 * cpu / n_articles}


def bench_stream(endpoint: str, per_article: list[list[str]], n_articles: int) -> dict:
    from biomedica.net.stream import FetchOptions, read_bytes

    options = FetchOptions(s3_endpoint=endpoint)
    urls = [u for article in per_article[:n_articles] for u in article]
    read_bytes(urls[0], options)
    started, cpu = time.perf_counter(), time.process_time()
    size = sum(len(read_bytes(url, options)) for url in urls)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"articles": n_articles, "requests": len(urls), "seconds": wall, "articles_per_s": n_articles / wall,
            "mb_per_s": size / wall / 1e6, "cpu_ms_per_article": 1000 * cpu / n_articles}


def pipe_startup_ms(runs: int = 5) -> float:
    """Median wall time of `python -m biomedica.net.stream --help` (a pipe: process's fixed cost)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "biomedica.net.stream", "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return 1000 * sorted(times)[len(times) // 2]


def bench_ingest(endpoint: str, n_articles: int) -> dict:
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest
    from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig, PmcCloudSource
    from biomedica.net import NetConfig

    with tempfile.TemporaryDirectory() as tmp:
        source = PmcCloudSource(PmcCloudConfig(
            bucket=BUCKET, limit=n_articles, net=NetConfig(endpoint_url=endpoint, max_concurrency=16)
        ))
        started, cpu = time.perf_counter(), time.process_time()
        summary = run_ingest(
            IngestConfig(input=Path(tmp), output=Path(tmp) / "archive", articles_per_unit=50, progress=False),
            source=source, console=_quiet_console(),
        )
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"articles": summary.articles, "samples": summary.samples_total, "seconds": wall,
            "articles_per_s": summary.articles / wall, "cpu_s_per_article": cpu / max(summary.articles, 1),
            "samples_per_article": summary.samples_total / max(summary.articles, 1)}


def _quiet_console():
    from rich.console import Console

    return Console(file=open("/dev/null", "w"))


def saturation(rows: list[dict]) -> str:
    for prev, row in zip(rows, rows[1:]):
        gain = row["articles_per_s"] / prev["articles_per_s"]
        added = row["concurrency"] / prev["concurrency"]
        if gain < added / 2:
            return (f"saturates between {prev['concurrency']} and {row['concurrency']} requests in flight "
                    f"({gain:.1f}x faster for {added:.0f}x the concurrency)")
    return f"still near-linear at {rows[-1]['concurrency']} requests in flight"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=240, help="article versions in the bucket")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every request")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--ingest-articles", type=int, default=60)
    parser.add_argument("--cost-per-core-hour", type=float, default=0.0425,
                        help="USD per vCPU-hour (default: ~AWS c7i on-demand, us-east-1, 2026)")
    parser.add_argument("--cores", type=int, nargs="+", default=[16, 64, 256, 1024])
    args = parser.parse_args(argv)

    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=serve, args=(args.articles, args.latency, ready, stop), daemon=True)
    server.start()
    endpoint = ready.get(timeout=300)
    try:
        from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig, PmcCloudSource
        from biomedica.net import NetConfig

        source = PmcCloudSource(PmcCloudConfig(bucket=BUCKET, net=NetConfig(endpoint_url=endpoint, max_concurrency=16)))
        per_article = article_urls(source)
        rows = []
        for level in args.levels:
            n = max(12, min(len(per_article), 4 * level))
            rows.append(bench_fetch(endpoint, per_article, level, n))
            r = rows[-1]
            print(f"  concurrency {level:>3}: {r['articles_per_s']:7.1f} articles/s {r['mb_per_s']:7.1f} MB/s "
                  f"({r['articles']} articles, {r['requests']} requests, {r['seconds']:.1f} s)", file=sys.stderr)
        stream = bench_stream(endpoint, per_article, rows[0]["articles"])
        ingest = bench_ingest(endpoint, args.ingest_articles)
    finally:
        stop.set()
        server.join(timeout=30)

    mb_per_article = sum(r["mb"] for r in rows[-1:]) / rows[-1]["articles"]
    print(f"\nfetch from a local S3 server + {args.latency * 1000:.0f} ms per request "
          f"({mb_per_article:.2f} MB and {sum(map(len, per_article)) / len(per_article):.1f} requests per article)\n")
    print("| requests in flight | articles/s | MB/s | speed-up | client CPU ms/article |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['concurrency']} | {r['articles_per_s']:.1f} | {r['mb_per_s']:.1f} | "
              f"{r['articles_per_s'] / rows[0]['articles_per_s']:.1f}x | {r['cpu_ms_per_article']:.1f} |")
    print(f"\n{saturation(rows)}.")
    print(f"\nstreaming reader, one request at a time: {stream['articles_per_s']:.1f} articles/s, "
          f"{stream['mb_per_s']:.1f} MB/s, {stream['cpu_ms_per_article']:.1f} ms CPU/article "
          f"(client at concurrency {rows[0]['concurrency']}: {rows[0]['articles_per_s']:.1f} articles/s); "
          f"pipe: helper start-up {pipe_startup_ms():.0f} ms")
    print(f"\ningest (1 worker, 16 requests in flight): {ingest['articles_per_s']:.1f} articles/s wall, "
          f"{ingest['cpu_s_per_article'] * 1000:.0f} ms CPU per article, {ingest['samples_per_article']:.1f} samples/article")

    cpu = ingest["cpu_s_per_article"]
    core_hours = FULL_PMC_OA * cpu / 3600
    print(f"\nprojection for {FULL_PMC_OA / 1e6:.0f}M articles at {cpu * 1000:.0f} ms CPU/article "
          f"(= {1 / cpu:.1f} articles/s per core): {core_hours:,.0f} core-hours, "
          f"${core_hours * args.cost_per_core_hour:,.0f} at ${args.cost_per_core_hour}/core-hour")
    print("| cores | wall time | articles/s | network needed |")
    print("|---:|---:|---:|---:|")
    for cores in args.cores:
        rate = cores / cpu
        print(f"| {cores} | {FULL_PMC_OA / rate / 3600:,.1f} h | {rate:,.0f} | "
              f"{rate * mb_per_article * 8 / 1000:,.1f} Gbit/s |")


if __name__ == "__main__":
    main()
