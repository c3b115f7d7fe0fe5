"""Training throughput: samples/s and data-wait fraction of OpenCLIP runs, and the loader alone.

Usage:
    python benchmarks/train_throughput.py                      # tiny model on CPU, demo archive
    python benchmarks/train_throughput.py --archive ARCHIVE --steps 40 --workers 1 2
    # on a GPU: ViT-B/16, batch 256, bf16, with synthetic and with streamed (local HTTP) data
    python benchmarks/train_throughput.py --model ViT-B-16 --batch-size 256 --precision amp_bf16 \\
        --device cuda --workers 8 --synthetic --http --steps 60

Three measurements, one table:
  loader    OpenCLIP's own webdataset pipeline (read, decode, augment, tokenize) with no model:
            samples/s per worker, for each --workers value;
  train     `biomedica train` (OpenCLIP's loop) on the archive's shards: samples/s per step and
            the fraction of step time spent waiting for data (from metrics.jsonl; the first
            step of each checkpoint interval, which fills the shuffle buffer, is left out);
  synthetic the same model on OpenCLIP's synthetic dataset (no I/O, no decode): the compute bound.
With --http the shards are streamed from a local HTTP server on 127.0.0.1 through
`biomedica.net.stream`, as from a hub. Without --archive a demo archive is generated.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def demo_archive(folder: Path, articles: int) -> Path:
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest
    from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus

    write_demo_corpus(folder / "corpus", DemoCorpusConfig(n_articles=articles, seed=0))
    run_ingest(IngestConfig(input=folder / "corpus", output=folder / "archive", workers=2,
                            articles_per_unit=max(1, articles // 2), progress=False))
    return folder / "archive"


def serve_folder(root: Path) -> str:
    """The archive over HTTP on 127.0.0.1 (the tests' file server: honours Range, as hubs do)."""
    from biomedica.testing.servers import serve_folder as serve

    _, running = serve(root)
    return running.url


def base_config(args, run_root: Path, name: str, archive_url: str, workers: int, steps: int) -> dict:
    return {
        "name": name,
        "output_dir": str(run_root),
        "device": args.device,
        "cpu_threads": args.cpu_threads,
        "model": {"name": args.model, "precision": args.precision},
        "data": {"sources": [{"name": "all", "archive": archive_url}], "workers": workers, "seed": 0},
        "optim": {"lr": 1e-4, "warmup": 1, "batch_size": args.batch_size, "weight_decay": 0.1},
        "schedule": {"total_steps": steps, "checkpoint_every_steps": steps},
        "logging": {"report_to": [], "log_every_steps": 1},
    }


def measure_loader(args, archive_url: str, workers: int, batches: int) -> dict:
    """OpenCLIP's training data pipeline alone: samples/s (and per worker)."""
    import open_clip
    from open_clip_train.data import get_wds_dataset
    from open_clip_train.params import parse_args

    from biomedica.train.compat import openclip_tar_reader_fixed
    from biomedica.train.config import parse_config
    from biomedica.train.openclip_args import build_plan
    from biomedica.train.run import register_models

    config = parse_config(base_config(args, Path(tempfile.mkdtemp()), "loader", archive_url, workers, batches + 1))
    register_models(config)
    plan = build_plan(config, world_size=1)
    ocargs = parse_args(plan.argv)
    ocargs.world_size, ocargs.rank = 1, 0
    _, preprocess_train, _ = open_clip.create_model_and_transforms(args.model, pretrained=None)
    tokenizer = open_clip.get_tokenizer(args.model)
    with openclip_tar_reader_fixed():
        data = get_wds_dataset(ocargs, preprocess_train, is_train=True, epoch=0, tokenizer=tokenizer)
        iterator = iter(data.dataloader)
        next(iterator)  # worker start-up and the shuffle buffer fill are not throughput
        started, samples = time.perf_counter(), 0
        for _ in range(batches):
            images, _ = next(iterator)
            samples += len(images)
        seconds = time.perf_counter() - started
    return {"what": "loader", "workers": workers, "samples_per_s": samples / seconds,
            "per_worker": samples / seconds / max(1, workers), "data_wait": None}


def measure_training(args, archive_url: str, workers: int, steps: int, run_root: Path) -> dict:
    from biomedica.train.config import parse_config
    from biomedica.train.monitor import read_metrics
    from biomedica.train.run import run_training

    config = parse_config(base_config(args, run_root, f"train-w{workers}", archive_url, workers, steps))
    result = run_training(config, print_fn=lambda line: None)
    rows = read_metrics(result.run_dir)[1:]  # step 0 fills the shuffle buffer
    seconds = sum(r["step_time_s"] for r in rows)
    return {"what": "train", "workers": workers,
            "samples_per_s": len(rows) * args.batch_size / seconds,
            "per_worker": len(rows) * args.batch_size / seconds / max(1, workers),
            "data_wait": sum(r["data_wait_s"] for r in rows) / seconds,
            "median_step_s": statistics.median(r["step_time_s"] for r in rows)}


def measure_synthetic(args, steps: int, run_root: Path) -> dict:
    """OpenCLIP's synthetic dataset through the same monitored loop: the model's compute bound."""
    from biomedica.models import register_builtin_configs
    from biomedica.train.monitor import StepMonitor, patched_openclip, read_metrics

    register_builtin_configs()
    if args.cpu_threads:
        import torch

        torch.set_num_threads(args.cpu_threads)
    run_dir = run_root / "synthetic"
    argv = ["--dataset-type", "synthetic", "--train-num-samples", str(steps * args.batch_size),
            "--batch-size", str(args.batch_size), "--epochs", "1", "--model", args.model,
            "--precision", args.precision, "--workers", "1", "--logs", str(run_root), "--name", "synthetic",
            "--device", args.device, "--log-every-n-steps", "1000", "--report-to", "", "--save-frequency", "0",
            "--lr", "1e-4", "--warmup", "1"]
    monitor = StepMonitor(run_dir / "metrics.jsonl", log_every=1)
    with patched_openclip(monitor) as openclip_main:
        openclip_main.main(argv)
    rows = read_metrics(run_dir)[2:]
    seconds = sum(r["step_time_s"] for r in rows)
    return {"what": "synthetic", "workers": 1, "samples_per_s": len(rows) * args.batch_size / seconds,
            "per_worker": None, "data_wait": sum(r["data_wait_s"] for r in rows) / seconds,
            "median_step_s": statistics.median(r["step_time_s"] for r in rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="an archive folder (default: generate a demo archive)")
    parser.add_argument("--articles", type=int, default=48, help="demo articles when generating")
    parser.add_argument("--model", default="biomedica-tiny")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--cpu-threads", type=int, default=None, help="torch threads of the training process")
    parser.add_argument("--http", action="store_true", help="stream the shards from a local HTTP server")
    parser.add_argument("--synthetic", action="store_true", help="also time OpenCLIP's synthetic data")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="train-bench-"))
    archive = args.archive or demo_archive(work, args.articles)
    archive_url = serve_folder(archive) if args.http else str(archive.resolve())
    rows = []
    for workers in args.workers:
        rows.append(measure_loader(args, archive_url, workers, batches=args.steps))
        rows.append(measure_training(args, archive_url, workers, args.steps, work / "runs"))
    if args.synthetic:
        rows.append(measure_synthetic(args, args.steps, work / "runs"))

    source = "http://127.0.0.1 (pipe: biomedica.net.stream)" if args.http else "local files"
    print(f"\nmodel {args.model}, batch {args.batch_size}, {args.precision} on {args.device}; shards from {source}")
    print(f"{'measure':<10} {'workers':>7} {'samples/s':>10} {'per worker':>10} {'data wait':>9}")
    for row in rows:
        wait = "-" if row["data_wait"] is None else f"{row['data_wait']:.0%}"
        per_worker = "-" if row["what"] == "synthetic" else f"{row['per_worker']:.1f}"
        print(f"{row['what']:<10} {row['workers']:>7} {row['samples_per_s']:>10.1f} {per_worker:>10} {wait:>9}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
