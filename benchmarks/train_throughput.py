"""Training throughput: originals vs training-ready shards, loader alone and OpenCLIP training.

Usage:
    python benchmarks/train_throughput.py                    # real fixture figures, CPU, local + HTTP
    python benchmarks/train_throughput.py --quick            # tiny sizes (< 60 s on 2 cores; CI runs it)
    python benchmarks/train_throughput.py --archive ARCHIVE --steps 40 --workers 1 2
    # on a GPU: ViT-B-16 (bf16, batch 256) and ViT-L-14, synthetic and streamed, batched GPU decode
    python benchmarks/train_throughput.py --device cuda --workers 8 --steps 60 --synthetic

Data. Without --archive an archive is ingested from the REAL fixture figures in
../shared/fixtures (pmc_package_figures: 27 JPEGs of 6 PMC articles, 590-795 px, captions
from their metadata; the PMC10802347 package: 3 JPEGs, captions from its nxml; eLife 00353:
a 797x914 TIFF, stored as lossless PNG), written as `dir` articles with fresh PMCIDs and
repeated --copies times (a copy is one work unit, so one archive shard; the same pictures
repeat: say so when quoting numbers). `--corpus demo` uses the generated demo corpus instead.
"training-ready" is `biomedica select --output shards --image-size S` of that archive (the
select code path, `run_select`), with the held-out split off so both datasets hold the same
samples.

Measurements, per dataset (originals = the archive's own shards; training-ready = the select
output) and per source (local files; http = a server on 127.0.0.1 streamed through the
`pipe:` helper `biomedica.net.stream`, as from a hub):
  loader     OpenCLIP's webdataset pipeline (read, decode, RandomResizedCrop to --loader-size,
             ToTensor+Normalize, tokenize) with no model: samples/s, and samples per CPU second
             of the DataLoader workers and their children (read from /proc, so it holds on a busy
             machine: the per-core rate); bytes per sample = shard tar bytes / samples;
  train      `biomedica train` (OpenCLIP's loop, --model, default the tiny CLIP on CPU):
             samples/s and the fraction of step time spent waiting for data (step 0, which fills
             the shuffle buffer, is left out);
  decode     micro-benchmark on the dataset's stored images: PIL full decode, PIL with JPEG
             draft (DCT scaling to >= 2x the crop), torchvision.io.decode_image (CPU); images
             per CPU second; with --device cuda also torchvision.io.decode_jpeg batched on the GPU;
  synthetic  (--synthetic) the model on OpenCLIP's synthetic data: the compute bound;
  gpu        (--device cuda) each --gpu-models model (default ViT-B-16 and ViT-L-14, bf16,
             --gpu-batch-size 256): synthetic and training-ready over HTTP, samples/s per GPU,
             data-wait fraction, torch.cuda.max_memory_allocated;
  ratio      training-ready / originals for samples/s and per-core rates; originals /
             training-ready for bytes per sample (the "x fewer").
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
FIRST_PMCID = 31_000_000


# ---------------------------------------------------------------- the archive of real figures


@dataclass(frozen=True)
class FixtureArticle:
    name: str
    figures: tuple[tuple[Path, str], ...]  # (image file, caption)


def fixture_articles(fixtures: Path = FIXTURES) -> list[FixtureArticle]:
    """The fixture articles with full-size figure images (thumbnail-only figures are left out)."""
    from biomedica.ingest.jats import parse_articles
    from biomedica.ingest.sources.directory import media_stem

    articles = []
    for folder in sorted((fixtures / "images" / "pmc_package_figures").iterdir()):
        captions = {}
        for meta in folder.glob("*_figures_metadata.json"):
            for entry in json.loads(meta.read_text()):
                captions[Path(entry["original_file_path"]).stem] = entry.get("caption") or ""
        figures = tuple((p, captions.get(p.stem) or f"{folder.name} {p.stem} (no caption in the fixtures).")
                        for p in sorted(folder.glob("*.jpg")))
        if figures:
            articles.append(FixtureArticle(folder.name, figures))
    for package in sorted((fixtures / "pmc_packages").iterdir()):
        xml = next((p for p in sorted(package.iterdir()) if p.suffix in (".xml", ".nxml")), None)
        if xml is None:
            continue
        files = {media_stem(p.name): p for p in package.iterdir() if p.suffix.lower() in (".jpg", ".tif", ".tiff", ".png")}
        figures = []
        for article in parse_articles(xml.read_bytes(), str(xml)).articles:
            for figure in article.figures:
                image = files.get(media_stem(figure.graphic_href or ""))
                if image is not None:
                    figures.append((image, figure.caption or ""))
        if figures:
            articles.append(FixtureArticle(package.name, tuple(figures)))
    if not articles:
        raise SystemExit(f"no fixture figures under {fixtures}: pass --archive ARCHIVE or --corpus demo")
    return articles


def _article_xml(pmcid: str, article: FixtureArticle) -> bytes:
    figs = "".join(
        f'<fig id="f{n}"><label>Figure {n}</label><caption><p>{escape(caption)}</p></caption>'
        f'<graphic xlink:href="{escape(image.name)}"/></fig>'
        for n, (image, caption) in enumerate(article.figures, 1)
    )
    cites = " ".join(f'<xref ref-type="fig" rid="f{n}">Figure {n}</xref>' for n in range(1, len(article.figures) + 1))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<article xmlns:xlink="http://www.w3.org/1999/xlink" '
        'article-type="research-article"><front><journal-meta><journal-title-group><journal-title>'
        'Benchmark Fixtures</journal-title></journal-title-group></journal-meta><article-meta>'
        f'<article-id pub-id-type="pmc">{pmcid}</article-id><title-group><article-title>Figures of {article.name}'
        '</article-title></title-group><pub-date pub-type="epub"><year>2024</year></pub-date><permissions>'
        '<license xlink:href="http://creativecommons.org/licenses/by/4.0/"><license-p>CC BY 4.0</license-p>'
        f'</license></permissions></article-meta></front><body><sec><title>Results</title><p>See {cites}.</p>'
        f'{figs}</sec></body></article>'
    ).encode()


def write_fixture_corpus(folder: Path, copies: int, fixtures: Path = FIXTURES) -> tuple[int, int]:
    """`copies` copies of the fixture articles as `dir` input (fresh PMCIDs); (articles per copy, figures)."""
    articles = fixture_articles(fixtures)
    for copy in range(copies):
        for j, article in enumerate(articles):
            pmcid = f"PMC{FIRST_PMCID + copy * 1000 + j}"
            target = folder / f"copy{copy:04d}" / pmcid
            target.mkdir(parents=True, exist_ok=True)
            for image, _ in article.figures:
                shutil.copyfile(image, target / image.name)
            (target / f"{pmcid}.nxml").write_bytes(_article_xml(pmcid, article))
    return len(articles), sum(len(a.figures) for a in articles)


def _quiet_ingest(config) -> None:
    from rich.console import Console

    from biomedica.ingest.run import run_ingest

    with open(os.devnull, "w") as sink:
        try:
            run_ingest(config, console=Console(file=sink))
        except TypeError:  # no console argument
            run_ingest(config)


def fixture_archive(folder: Path, copies: int, workers: int, fixtures: Path = FIXTURES) -> Path:
    from biomedica.ingest.config import IngestConfig

    per_copy, _ = write_fixture_corpus(folder / "corpus", copies, fixtures)
    _quiet_ingest(IngestConfig(input=str(folder / "corpus"), output=folder / "archive", workers=workers,
                               articles_per_unit=per_copy, progress=False))
    return folder / "archive"


def demo_archive(folder: Path, articles: int) -> Path:
    from biomedica.ingest.config import IngestConfig
    from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus

    write_demo_corpus(folder / "corpus", DemoCorpusConfig(n_articles=articles, seed=0))
    _quiet_ingest(IngestConfig(input=str(folder / "corpus"), output=folder / "archive", workers=2,
                               articles_per_unit=max(1, articles // 2), progress=False))
    return folder / "archive"


def training_ready(archive: Path, out: Path, args) -> Path:
    """`biomedica select --output shards --image-size S --include-held-out` of the whole archive."""
    from biomedica.select.config import SelectConfig
    from biomedica.select.run import run_select

    run_select(SelectConfig(archive=archive, out=out, output="shards", image_size=args.image_size,
                            image_format=args.image_format, quality=args.quality, resize_mode=args.resize_mode,
                            samples_per_shard=args.samples_per_shard, exclude_held_out=False,
                            workers=args.select_workers))
    return out


@dataclass
class Dataset:
    name: str
    root: Path
    shards: list[Path]  # tar files under root
    samples: int

    @property
    def bytes_per_sample(self) -> float:
        return sum(p.stat().st_size for p in self.shards) / max(1, self.samples)


def dataset(name: str, root: Path) -> Dataset:
    """The shards under `root` (a tar counts when its index .parquet sits beside it: a published shard)."""
    import pyarrow.parquet as pq

    shards, samples = [], 0
    for tar in sorted(root.rglob("*.tar")):
        index = tar.with_suffix(".parquet")
        if index.exists():
            shards.append(tar)
            samples += pq.ParquetFile(index).metadata.num_rows
    if not shards:
        raise SystemExit(f"no shards (NNNNNN.tar + .parquet) under {root}")
    return Dataset(name, root, shards, samples)


def serve_folder(root: Path) -> str:
    """`root` over HTTP on 127.0.0.1 (the tests' file server: honours Range, as hubs do)."""
    from biomedica.testing.servers import serve_folder as serve

    _, running = serve(root)
    return running.url


def source_urls(data: Dataset, base_url: str | None) -> list[str]:
    if base_url is None:
        return [str(p.resolve()) for p in data.shards]
    return [f"{base_url}/{p.relative_to(data.root).as_posix()}" for p in data.shards]


# ---------------------------------------------------------------- CPU time of worker processes


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def children_cpu_seconds() -> float | None:
    """CPU seconds of this process's live descendants, with the children they reaped (Linux /proc)."""
    if not Path("/proc/self/stat").exists():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _descendants(os.getpid()):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / ticks


# ---------------------------------------------------------------- measurements


def base_config(args, run_root: Path, name: str, source: dict, workers: int, steps: int,
                model: str | None = None, precision: str | None = None, batch_size: int | None = None) -> dict:
    return {
        "name": name,
        "output_dir": str(run_root),
        "device": args.device,
        "cpu_threads": args.cpu_threads,
        "model": {"name": model or args.model, "precision": precision or args.precision},
        "data": {"sources": [{"name": "all", **source}], "workers": workers, "seed": 0},
        "optim": {"lr": 1e-4, "warmup": 1, "batch_size": batch_size or args.batch_size, "weight_decay": 0.1},
        "schedule": {"total_steps": steps, "checkpoint_every_steps": steps},
        "logging": {"report_to": [], "log_every_steps": 1},
    }


def _source(args, data: Dataset, urls: list[str]) -> dict:
    """A `urls` source for both datasets, so both go through the same loader path."""
    return {"urls": urls, "num_samples": data.samples}


def loader_transform(size: int):
    """OpenCLIP's training transform at `size` (RandomResizedCrop scale (0.9, 1), ToTensor, Normalize)."""
    import open_clip

    return open_clip.image_transform(size, is_train=True)


def measure_loader(args, source: dict, workers: int, batches: int) -> dict:
    """OpenCLIP's training data pipeline alone: samples/s and samples per worker CPU second."""
    import open_clip
    from open_clip_train.data import get_wds_dataset
    from open_clip_train.params import parse_args

    from biomedica.train.compat import openclip_tar_reader_fixed
    from biomedica.train.config import parse_config
    from biomedica.train.openclip_args import build_plan
    from biomedica.train.run import register_models

    config = parse_config(base_config(args, Path(tempfile.mkdtemp()), "loader", source, workers, batches + 1))
    register_models(config)
    plan = build_plan(config, world_size=1)
    ocargs = parse_args(plan.argv)
    ocargs.world_size, ocargs.rank = 1, 0
    tokenizer = open_clip.get_tokenizer(args.model)
    with openclip_tar_reader_fixed():
        data = get_wds_dataset(ocargs, loader_transform(args.loader_size), is_train=True, epoch=0, tokenizer=tokenizer)
        iterator = iter(data.dataloader)
        next(iterator)  # worker start-up and the shuffle buffer fill are not throughput
        cpu_before = children_cpu_seconds()
        started, samples = time.perf_counter(), 0
        for _ in range(batches):
            images, _ = next(iterator)
            samples += len(images)
        seconds = time.perf_counter() - started
        cpu_after = children_cpu_seconds()
        del iterator, data
    cpu = None if cpu_before is None else cpu_after - cpu_before
    per_core = samples / cpu if cpu else samples / seconds / max(1, workers)
    return {"what": "loader", "workers": workers, "samples_per_s": samples / seconds, "per_core": per_core,
            "data_wait": None, "cpu_s": cpu}


def measure_training(args, source: dict, workers: int, steps: int, run_root: Path, name: str,
                     model: str | None = None, precision: str | None = None, batch_size: int | None = None) -> dict:
    from biomedica.train.config import parse_config
    from biomedica.train.monitor import read_metrics
    from biomedica.train.run import run_training

    batch = batch_size or args.batch_size
    config = parse_config(base_config(args, run_root, name, source, workers, steps, model, precision, batch))
    peak = _reset_peak(args.device)
    result = run_training(config, print_fn=lambda line: None)
    rows = read_metrics(result.run_dir)[1:]  # step 0 fills the shuffle buffer
    seconds = sum(r["step_time_s"] for r in rows)
    return {"what": "train", "workers": workers, "samples_per_s": len(rows) * batch / seconds,
            "per_core": None, "data_wait": sum(r["data_wait_s"] for r in rows) / seconds,
            "median_step_s": statistics.median(r["step_time_s"] for r in rows), "peak_gib": peak()}


def _reset_peak(device: str):
    """A function returning torch.cuda.max_memory_allocated (GiB) since now, or None off CUDA."""
    if not device.startswith("cuda"):
        return lambda: None
    import torch

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return lambda: torch.cuda.max_memory_allocated() / 2**30


def measure_synthetic(args, steps: int, run_root: Path, model: str | None = None, precision: str | None = None,
                      batch_size: int | None = None) -> dict:
    """OpenCLIP's synthetic dataset through the same monitored loop: the model's compute bound."""
    from biomedica.models import register_builtin_configs
    from biomedica.train.monitor import StepMonitor, patched_openclip, read_metrics

    register_builtin_configs()
    if args.cpu_threads:
        import torch

        torch.set_num_threads(args.cpu_threads)
    model, precision, batch = model or args.model, precision or args.precision, batch_size or args.batch_size
    name = f"synthetic-{model}"
    run_dir = run_root / name
    argv = ["--dataset-type", "synthetic", "--train-num-samples", str(steps * batch),
            "--batch-size", str(batch), "--epochs", "1", "--model", model,
            "--precision", precision, "--workers", "1", "--logs", str(run_root), "--name", name,
            "--device", args.device, "--log-every-n-steps", "1000", "--report-to", "", "--save-frequency", "0",
            "--lr", "1e-4", "--warmup", "1"]
    peak = _reset_peak(args.device)
    monitor = StepMonitor(run_dir / "metrics.jsonl", log_every=1)
    with patched_openclip(monitor) as openclip_main:
        openclip_main.main(argv)
    rows = read_metrics(run_dir)[2:]
    seconds = sum(r["step_time_s"] for r in rows)
    return {"what": "synthetic", "workers": 1, "samples_per_s": len(rows) * batch / seconds,
            "per_core": None, "data_wait": sum(r["data_wait_s"] for r in rows) / seconds,
            "median_step_s": statistics.median(r["step_time_s"] for r in rows), "peak_gib": peak()}


def stored_samples(data: Dataset, limit: int) -> tuple[list[tuple[str, bytes]], list[str]]:
    """(extension, bytes) of up to `limit` images of the dataset's shards, in shard order, and their captions."""
    import tarfile

    images, captions = [], []
    for shard in data.shards:
        with tarfile.open(shard) as tar:
            for member in tar:
                ext = member.name.rsplit(".", 1)[-1].lower()
                if member.isfile() and ext in ("jpg", "jpeg", "png", "webp"):
                    images.append((ext, tar.extractfile(member).read()))
                elif member.isfile() and ext == "txt":
                    captions.append(tar.extractfile(member).read().decode())
                if len(images) >= limit and len(captions) >= limit:
                    return images[:limit], captions[:limit]
    return images[:limit], captions[:limit]


def measure_stages(images: list[tuple[str, bytes]], captions: list[str], crop: int, repeat: int,
                   tokenizer_model: str) -> list[dict]:
    """The loader's other per-sample work, one process: the train transform on a decoded image, and tokenize."""
    import open_clip
    import torch
    from PIL import Image

    torch.set_num_threads(1)
    transform = loader_transform(crop)
    decoded = [Image.open(io.BytesIO(data)).convert("RGB") for _, data in images]
    tokenizer = open_clip.get_tokenizer(tokenizer_model)
    rows = []
    for name, items, fn in ((f"transform RRC({crop})+ToTensor+Norm", decoded, transform),
                            ("tokenize caption", captions, lambda text: tokenizer([text]))):
        if not items:
            continue
        started_cpu, started = time.process_time(), time.perf_counter()
        for _ in range(repeat):
            for item in items:
                fn(item)
        cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
        n = repeat * len(items)
        rows.append({"what": name, "workers": 1, "samples_per_s": n / wall, "per_core": n / cpu, "data_wait": None})
    return rows


def measure_decode(images: list[tuple[str, bytes]], crop: int, repeat: int, device: str) -> list[dict]:
    """Decode only, to 8-bit RGB: images per CPU second (process time) for each decoder."""
    import torch
    import torchvision
    from PIL import Image

    torch.set_num_threads(1)
    draft_side = 2 * crop

    def pil(data: bytes) -> None:
        Image.open(io.BytesIO(data)).convert("RGB").load()

    def pil_draft(data: bytes) -> None:
        image = Image.open(io.BytesIO(data))
        if image.format == "JPEG":
            image.draft("RGB", (draft_side, draft_side))  # DCT scaling: keeps >= draft_side on each side
        image.convert("RGB").load()

    tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for _, data in images]

    def tv_decode(data: bytes, tensor=None) -> None:
        torchvision.io.decode_image(tensor, mode=torchvision.io.ImageReadMode.RGB)

    rows = []
    for name, fn in (("PIL", pil), ("PIL+draft", pil_draft), ("torchvision.io.decode_image", None)):
        started_cpu, started = time.process_time(), time.perf_counter()
        for _ in range(repeat):
            if fn is None:
                for tensor in tensors:
                    tv_decode(b"", tensor)
            else:
                for _, data in images:
                    fn(data)
        cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
        n = repeat * len(images)
        rows.append({"what": f"decode {name}", "workers": 1, "samples_per_s": n / wall, "per_core": n / cpu,
                     "data_wait": None})
    if device.startswith("cuda"):
        jpegs = [t for (ext, _), t in zip(images, tensors) if ext in ("jpg", "jpeg")]
        if jpegs:
            torchvision.io.decode_jpeg(jpegs[:2], device=device, mode=torchvision.io.ImageReadMode.RGB)  # warm-up
            torch.cuda.synchronize()
            started = time.perf_counter()
            for _ in range(repeat):
                torchvision.io.decode_jpeg(jpegs, device=device, mode=torchvision.io.ImageReadMode.RGB)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            rows.append({"what": f"decode decode_jpeg {device} batch {len(jpegs)}", "workers": 1,
                         "samples_per_s": repeat * len(jpegs) / seconds, "per_core": None, "data_wait": None})
    return rows


def ratio_rows(rows: list[dict]) -> list[dict]:
    """training-ready / originals for every (source, measure, workers) both datasets have."""
    by_key = {(r["dataset"], r["source"], r["what"], r["workers"]): r for r in rows}
    out = []
    for (name, source, what, workers), ready in by_key.items():
        if name != "training-ready":
            continue
        original = by_key.get(("originals", source, what, workers))
        if original is None:
            continue

        def ratio(field, a=ready, b=original):
            return a[field] / b[field] if a.get(field) and b.get(field) else None

        out.append({"dataset": "ratio", "source": source, "what": what, "workers": workers,
                    "samples_per_s": ratio("samples_per_s"), "per_core": ratio("per_core"),
                    "bytes_per_sample": (original["bytes_per_sample"] / ready["bytes_per_sample"]
                                         if ready.get("bytes_per_sample") else None),
                    "data_wait": None})
    return out


def print_table(rows: list[dict], header: str) -> None:
    print(f"\n{header}")
    print(f"{'dataset':<15} {'from':<6} {'measure':<34} {'workers':>7} {'samples/s':>10} {'per core':>9} "
          f"{'B/sample':>9} {'data wait':>9} {'GPU GiB':>7}")
    for row in rows:
        ratio = row["dataset"] == "ratio"

        def fmt(value, spec, suffix=""):
            return "-" if value is None else f"{value:{spec}}{suffix}"

        bytes_cell = fmt(row.get("bytes_per_sample"), ".1f", "x") if ratio else fmt(row.get("bytes_per_sample"), ",.0f")
        print(f"{row['dataset']:<15} {row['source']:<6} {row['what']:<34} {row['workers']:>7} "
              f"{fmt(row['samples_per_s'], '.2f' if ratio else '.1f', 'x' if ratio else ''):>10} "
              f"{fmt(row.get('per_core'), '.2f' if ratio else '.1f', 'x' if ratio else ''):>9} "
              f"{bytes_cell:>9} {fmt(row.get('data_wait'), '.0%'):>9} {fmt(row.get('peak_gib'), '.1f'):>7}")
    print("ratio rows: training-ready / originals for samples/s and per core; originals / training-ready "
          "for bytes per sample (x fewer)")


def main(argv: list[str] | None = None) -> int:
    from biomedica.images.training import DEFAULT_QUALITY, DEFAULT_SIZE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="an archive folder (default: ingest the fixture figures)")
    parser.add_argument("--corpus", choices=("fixtures", "demo"), default="fixtures",
                        help="what to ingest without --archive: the real fixture figures, or the demo corpus")
    parser.add_argument("--copies", type=int, default=8, help="copies of the fixture articles (one shard each)")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="the shared fixtures folder")
    parser.add_argument("--ingest-workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--keep", type=Path, help="keep the archive and training-ready shards in this new folder")
    parser.add_argument("--articles", type=int, default=48, help="demo articles (--corpus demo)")
    parser.add_argument("--image-size", type=int, default=DEFAULT_SIZE, help="training-ready: select --image-size")
    parser.add_argument("--image-format", default="jpeg", choices=("jpeg", "webp"))
    parser.add_argument("--quality", type=int, default=DEFAULT_QUALITY)
    parser.add_argument("--resize-mode", default="shorter-side", choices=("shorter-side", "longer-side", "center-crop"))
    parser.add_argument("--samples-per-shard", type=int, default=32, help="training-ready shard size")
    parser.add_argument("--select-workers", type=int, default=1)
    parser.add_argument("--datasets", nargs="+", default=["originals", "training-ready"],
                        choices=("originals", "training-ready"))
    parser.add_argument("--sources", nargs="+", default=["local", "http"], choices=("local", "http"))
    parser.add_argument("--http", action="store_true", help="only the HTTP source (as before; = --sources http)")
    parser.add_argument("--model", default="biomedica-tiny", help="the model of the train rows")
    parser.add_argument("--loader-size", type=int, default=224, help="RandomResizedCrop size of the loader rows")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--cpu-threads", type=int, default=None, help="torch threads of the training process")
    parser.add_argument("--no-train", action="store_true", help="loader and decode rows only")
    parser.add_argument("--train-sources", nargs="+", choices=("local", "http"), default=None,
                        help="sources of the train rows (default: all --sources)")
    parser.add_argument("--decode-images", type=int, default=64, help="images per dataset in the decode rows")
    parser.add_argument("--decode-repeat", type=int, default=3)
    parser.add_argument("--synthetic", action="store_true", help="also time OpenCLIP's synthetic data")
    parser.add_argument("--gpu-models", nargs="*", default=["ViT-B-16", "ViT-L-14"],
                        help="--device cuda: models of the GPU rows (bf16)")
    parser.add_argument("--gpu-batch-size", type=int, default=256)
    parser.add_argument("--gpu-steps", type=int, default=30)
    parser.add_argument("--gpu-workers", type=int, default=None, help="loader workers of the GPU rows (default: max --workers)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run (< 60 s on 2 cores)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.http:
        args.sources = ["http"]
    if args.quick:
        args.copies, args.steps, args.batch_size, args.decode_images, args.decode_repeat = 1, 3, 8, 16, 1
        args.workers, args.gpu_steps = [1], 5
        args.train_sources = args.train_sources or ["local"]
    train_sources = args.train_sources or args.sources

    if args.keep:
        args.keep.mkdir(parents=True)  # a new folder: never write into data the benchmark did not make
    work = args.keep or Path(tempfile.mkdtemp(prefix="train-bench-"))
    started = time.perf_counter()
    if args.archive:
        archive, what = args.archive, str(args.archive)
    elif args.corpus == "demo":
        archive, what = demo_archive(work, args.articles), f"demo corpus, {args.articles} articles"
    else:
        archive = fixture_archive(work, args.copies, args.ingest_workers, args.fixtures)
        what = f"real fixture figures x {args.copies} copies"
    datasets: dict[str, Dataset] = {}
    if "originals" in args.datasets:
        datasets["originals"] = dataset("originals", archive)
    if "training-ready" in args.datasets:
        ready = training_ready(archive, work / "training-ready", args)
        datasets["training-ready"] = dataset("training-ready", ready)
    setup_s = time.perf_counter() - started
    bases = {"local": None}
    if "http" in args.sources or "http" in train_sources:
        bases["http"] = {name: serve_folder(d.root) for name, d in datasets.items()}

    rows: list[dict] = []

    def add(row: dict, name: str, source: str) -> None:
        row.update(dataset=name, source=source, bytes_per_sample=datasets[name].bytes_per_sample if name in datasets
                   else None)
        rows.append(row)
        print(f"  {name} {source} {row['what']} w{row['workers']}: {row['samples_per_s']:.1f} samples/s", file=sys.stderr)

    for name, data in datasets.items():
        images, captions = stored_samples(data, args.decode_images)
        for row in measure_decode(images, args.loader_size, args.decode_repeat, args.device):
            add(row, name, "-")
        for row in measure_stages(images, captions, args.loader_size, args.decode_repeat, args.model):
            add(row, name, "-")
        for source in args.sources:
            base = None if source == "local" else bases["http"][name]
            urls = source_urls(data, base)
            for workers in args.workers:
                add(measure_loader(args, _source(args, data, urls), workers, batches=args.steps), name, source)
                if not args.no_train and source in train_sources:
                    add(measure_training(args, _source(args, data, urls), workers, args.steps, work / "runs",
                                         f"train-{name}-{source}-w{workers}"), name, source)
    if args.synthetic:
        add(measure_synthetic(args, args.steps, work / "runs"), "-", "-")
    if args.device.startswith("cuda") and args.gpu_models and "training-ready" in datasets:
        gpu_workers = args.gpu_workers or max(args.workers)
        data = datasets["training-ready"]
        urls = source_urls(data, bases.get("http", {}).get("training-ready") if "http" in bases else None)
        source = "http" if "http" in bases else "local"
        for model in args.gpu_models:
            row = measure_synthetic(args, args.gpu_steps, work / "runs", model, "amp_bf16", args.gpu_batch_size)
            row["what"] = f"gpu {model} synthetic"
            add(row, "-", "-")
            row = measure_training(args, _source(args, data, urls), gpu_workers, args.gpu_steps, work / "runs",
                                   f"gpu-{model}", model, "amp_bf16", args.gpu_batch_size)
            row["what"] = f"gpu {model} train"
            add(row, "training-ready", source)
    rows += ratio_rows(rows)

    sizes = ", ".join(f"{n}: {d.samples} samples in {len(d.shards)} shards" for n, d in datasets.items())
    print_table(rows, f"{what} ({sizes}); training-ready = select --image-size {args.image_size} "
                      f"--image-format {args.image_format} --quality {args.quality} --resize-mode {args.resize_mode}; loader crop {args.loader_size}; "
                      f"train model {args.model}, batch {args.batch_size}, {args.precision} on {args.device}; "
                      f"setup {setup_s:.0f} s, total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "datasets": {n: {"samples": d.samples, "shards": len(d.shards),
                                         "bytes_per_sample": d.bytes_per_sample} for n, d in datasets.items()},
                                         "archive": what}, indent=1, default=str))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
