"""Ingest speed: biomedica's JATS parser and full ingest vs pubmed_parser, on real PMC XML.

    python benchmarks/ingest.py                 # ~3,000 articles, prints a table
    python benchmarks/ingest.py --articles 6000 --workers 2

What is measured. Per-core rates use CPU seconds (time.process_time, plus the CPU time of
worker processes for ingest), so they hold on a busy machine; wall seconds are shown too.
- parse: biomedica.ingest.jats.parse_articles over the real fixture XML files
  (../shared/fixtures: pmc_nxml, pmc_wrapped, pmc_packages), repeated until --articles
  articles were parsed; articles/s and figure graphics/s. Each article yields the full
  article record (ids, metadata, authors, licence, references, abstract, body text) and
  every figure record (caption with MathML, mentions).
- pubmed_parser: the equivalent extraction with pubmed_parser 0.5 on the same files in the
  same run: parse_pubmed_xml + parse_pubmed_caption + parse_pubmed_paragraph(all_paragraph=True)
  per file (each of its calls re-reads the file: that is its API).
- ingest: `biomedica ingest` (parse + image resolution/verification/hashing + shard, Parquet
  and error writing + finalize) over copies of the fixture tree (one copy per work unit),
  with 1 and with --workers processes.
- memory: peak RSS of a parse-only process at N and 4N articles (flat = streaming).
pubmed_parser is a benchmark-only dependency: pip install pubmed-parser.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"


def fixture_files() -> list[Path]:
    files = sorted((FIXTURES / "pmc_nxml").glob("*.nxml")) + sorted((FIXTURES / "pmc_wrapped").glob("*.xml"))
    files += sorted((FIXTURES / "pmc_packages").glob("*/*.*xml"))
    return files


def bench_parse(files: list[Path], target_articles: int) -> dict:
    from biomedica.ingest.jats import parse_articles

    blobs = [(str(p), p.read_bytes()) for p in files]
    articles = figures = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while articles < target_articles:
        for source, data in blobs:
            result = parse_articles(data, source)
            articles += len(result.articles)
            figures += sum(len(a.figures) for a in result.articles)
    return {
        "articles": articles,
        "figures": figures,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
    }


def pubmed_parser_readable(files: list[Path]) -> list[Path]:
    """The files pubmed_parser can read at all (it fails on namespaced OAI-PMH records etc.)."""
    import contextlib
    import io

    import pubmed_parser as pp

    readable = []
    for path in files:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                if pp.parse_pubmed_xml(str(path)):
                    readable.append(path)
        except Exception:
            continue
    return readable


def bench_pubmed_parser(files: list[Path], target_articles: int) -> dict:
    import pubmed_parser as pp

    articles = figures = failed = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while articles + failed < target_articles:
        for path in files:
            try:
                meta = pp.parse_pubmed_xml(str(path))
                captions = pp.parse_pubmed_caption(str(path)) or []
                pp.parse_pubmed_paragraph(str(path), all_paragraph=True)
            except Exception:
                failed += 1
                continue
            if meta:
                articles += 1
                figures += len(captions)
    return {
        "articles": articles,
        "figures": figures,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "failed": failed,
    }


def bench_ingest(files_root: Path, copies: int, workers: int, tmp: Path) -> dict:
    """Full ingest over `copies` copies of the fixture tree; one copy per work unit."""
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest

    corpus = tmp / "corpus"
    if not corpus.exists():
        for i in range(copies):
            shutil.copytree(files_root / "pmc_nxml", corpus / f"copy{i:04d}" / "pmc_nxml")
            shutil.copytree(files_root / "pmc_wrapped", corpus / f"copy{i:04d}" / "pmc_wrapped")
            shutil.copytree(files_root / "pmc_packages", corpus / f"copy{i:04d}" / "pmc_packages")
    per_copy = sum(1 for _ in (corpus / "copy0000").rglob("*.*xml"))
    out = tmp / f"archive-w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    started, cpu_started = time.perf_counter(), _cpu_with_children()
    summary = run_ingest(
        IngestConfig(input=corpus, output=out, workers=workers, articles_per_unit=per_copy, progress=False),
        console=_quiet_console(),
    )
    return {
        "articles": summary.articles,
        "figures": summary.samples_total,
        "errors": summary.errors,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": _cpu_with_children() - cpu_started,
    }


def _cpu_with_children() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _quiet_console():
    from rich.console import Console

    return Console(file=open("/dev/null", "w"))


def peak_rss_mib_of_parse(n_articles: int) -> float:
    """Peak RSS of a fresh process that parses n articles (parse results are not kept)."""
    code = (
        "import sys; sys.path.insert(0, %r); import ingest as b; from biomedica.io.memory import peak_rss; "
        "b.bench_parse(b.fixture_files(), %d); "
        "print(peak_rss() // 1024)" % (str(Path(__file__).parent), n_articles)
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=3000, help="articles per parse measurement")
    parser.add_argument("--pubmed-parser-articles", type=int, default=600, help="articles for pubmed_parser (slower)")
    parser.add_argument("--copies", type=int, default=40, help="copies of the fixture tree for the full ingest")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    files = fixture_files()
    rows: dict[str, dict] = {}
    rows["biomedica parse, all files"] = bench_parse(files, args.articles)
    try:
        common = pubmed_parser_readable(files)
    except ImportError:
        common = []
        print("pubmed_parser not installed (pip install pubmed-parser): skipped", file=sys.stderr)
    if common:
        # the speed ratio is taken on the files both parsers read
        rows["biomedica parse, files pubmed_parser reads"] = bench_parse(common, args.articles)
        rows["pubmed_parser (xml+caption+paragraph), same files"] = bench_pubmed_parser(
            common, args.pubmed_parser_articles
        )
    with tempfile.TemporaryDirectory() as tmp:
        rows["biomedica ingest, 1 worker"] = bench_ingest(FIXTURES, args.copies, 1, Path(tmp))
        if args.workers > 1:
            rows[f"biomedica ingest, {args.workers} workers"] = bench_ingest(FIXTURES, args.copies, args.workers, Path(tmp))
    small = max(200, args.articles // 4)
    rss = {small: peak_rss_mib_of_parse(small), small * 4: peak_rss_mib_of_parse(small * 4)}

    table = Table(title=f"ingest benchmark ({len(files)} real fixture files, repeated)")
    for col in ("run", "articles", "figures", "wall s", "CPU s", "articles/s/core", "figures/s/core"):
        table.add_column(col, justify="right" if col != "run" else "left")
    for name, r in rows.items():
        table.add_row(
            name,
            f"{r['articles']:,}",
            f"{r['figures']:,}",
            f"{r['seconds']:.2f}",
            f"{r['cpu_seconds']:.2f}",
            f"{r['articles'] / r['cpu_seconds']:,.1f}",
            f"{r['figures'] / r['cpu_seconds']:,.1f}",
        )
    console = Console(width=140)
    console.print(table)
    pp_row = rows.get("pubmed_parser (xml+caption+paragraph), same files")
    if pp_row:
        ours = rows["biomedica parse, files pubmed_parser reads"]
        ratio = (ours["articles"] / ours["cpu_seconds"]) / (pp_row["articles"] / pp_row["cpu_seconds"])
        console.print(
            f"parse speed-up over pubmed_parser on the {len(common)} files it reads "
            f"(of {len(files)}): [bold]{ratio:.1f}x[/] articles/s per core"
        )
    console.print(f"peak RSS, parse only: {small:,} articles → {rss[small]:.0f} MiB; "
                  f"{small * 4:,} articles → {rss[small * 4]:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "peak_rss_mib": rss}, indent=2))


if __name__ == "__main__":
    main()
