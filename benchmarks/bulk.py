"""Europe PMC bulk files: articles/s and peak memory as one `<articles>` .xml.gz file grows.

    python benchmarks/bulk.py                   # N = 1,000 / 4,000 / 16,000 articles, prints a table
    python benchmarks/bulk.py --quick           # N = 100 / 400 (what the test runs)
    python benchmarks/bulk.py --sizes 2000 8000 --json out.json

For each N a bulk file `PMC1_PMC<N>.xml.gz` is generated from the real articles in
../shared/fixtures/pmc_nxml, repeated in order (Europe PMC's layout: `<articles>`, one
`<article>` per line; about 120 KB per article decompressed). A fresh process then does what
`biomedica ingest` does with it, without images or shards:
- list: DirectorySource lists the file (one item per article) and signs every article: one
  streamed pass that decompresses, cuts and hashes;
- read + parse: open every article item in order (one forward pass over the file) and parse it
  into its article and figure records (jats.bulk.parse_bulk_article).
Rates per core use CPU seconds. Peak RSS (VmHWM of that process, io.memory.peak_rss) should stay flat as N
grows: the file is never held whole, only one article and one 1 MiB read block.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"


def article_bodies() -> list[bytes]:
    """Each fixture article from its `<article` start tag on (the prolog dropped, as in a bulk file)."""
    bodies = []
    for path in sorted((FIXTURES / "pmc_nxml").glob("*.nxml")):
        data = path.read_bytes()
        at = data.find(b"<article")
        while data[at + 8 : at + 9] not in (b" ", b">", b"\n", b"\t", b"\r"):
            at = data.find(b"<article", at + 1)
        bodies.append(data[at:].rstrip().replace(b"\n", b" "))
    return bodies


def make_bulk(folder: Path, n: int) -> Path:
    """`PMC1_PMC<n>.xml.gz` holding n articles, written as a stream (gzip level 1: generation is not measured)."""
    bodies = article_bodies()
    path = folder / f"PMC1_PMC{n}.xml.gz"
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(b"<articles>\n")
        for i in range(n):
            out.write(bodies[i % len(bodies)])
            out.write(b"\n")
        out.write(b"</articles>\n")
    return path


def measure(folder: Path) -> dict:
    """List, sign, read and parse every article of the bulk file(s) in `folder` (run in a fresh process)."""
    from biomedica.ingest.sources.directory import DirectorySource
    from biomedica.io.memory import peak_rss

    wall, cpu = time.perf_counter(), time.process_time()
    source = DirectorySource(folder)
    items = source.list_items()
    signatures = source.signatures(items)
    list_wall, list_cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert len(signatures) == len(items)
    articles = figures = errors = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for item_id in items:
        result = source.open_item(item_id).parse()
        articles += len(result.articles)
        figures += sum(len(a.figures) for a in result.articles)
        errors += len(result.errors)
    return {
        "items": len(items), "articles": articles, "figures": figures, "errors": errors,
        "list_seconds": list_wall, "list_cpu_seconds": list_cpu,
        "parse_seconds": time.perf_counter() - wall, "parse_cpu_seconds": time.process_time() - cpu,
        "peak_rss_mib": peak_rss() / 2**20,
    }


def run_size(n: int, tmp: Path) -> dict:
    folder = tmp / f"bulk-{n}"
    path = make_bulk(folder, n)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, __file__, "--measure", str(folder)], check=True, capture_output=True,
                          text=True, env=env)  # fmt: skip
    row = json.loads(done.stdout.strip().splitlines()[-1])
    path_size = path.stat().st_size
    row |= {"n": n, "gz_mib": path_size / 1024**2}
    path.unlink()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000], help="articles per bulk file")
    parser.add_argument("--quick", action="store_true", help="N = 100 / 400")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    sizes = [100, 400] if args.quick else args.sizes
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_size(n, Path(tmp)) for n in sizes]

    print(f"Europe PMC bulk file (.xml.gz) of N real fixture articles, repeated; {sys.platform}, 1 process")
    head = ("N articles", "gz MiB", "list+sign art/s/core", "read+parse art/s/core", "figures/s/core", "errors",
            "peak RSS MiB")
    print(" | ".join(head))
    for r in rows:
        print(" | ".join((
            f"{r['n']:,}", f"{r['gz_mib']:.1f}", f"{r['items'] / max(r['list_cpu_seconds'], 1e-9):,.0f}",
            f"{r['articles'] / max(r['parse_cpu_seconds'], 1e-9):,.1f}",
            f"{r['figures'] / max(r['parse_cpu_seconds'], 1e-9):,.1f}", f"{r['errors']}", f"{r['peak_rss_mib']:.0f}",
        )))  # fmt: skip
    first, last = rows[0], rows[-1]
    print(f"peak RSS: {first['peak_rss_mib']:.0f} MiB at N={first['n']:,} -> {last['peak_rss_mib']:.0f} MiB at "
          f"N={last['n']:,} ({last['n'] / first['n']:.0f}x the articles)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
