"""Evaluation speed: embedding + scoring throughput, and the time to rerun from cached embeddings.

    python benchmarks/eval_speed.py                          # tiny random model on CPU, prints a table
    python benchmarks/eval_speed.py --images-per-class 100   # 800 images
    python benchmarks/eval_speed.py --model ViT-B-16:random --device cuda --batch-size 256  # GPU timing

What is measured, on the offline modality benchmark (real pydicom-data / scikit-image images,
built into a temporary folder first):
- build: writing the benchmark (DICOM decode, crops, PNG encode).
- first run: `run_evaluation` with an empty cache: image decode + preprocess + encode, text
  prompts, zero-shot scoring and 1,000 bootstrap resamples; images/s over the whole task.
- rerun: the same call with the cache filled (what `biomedica eval run` costs when only
  scoring changes), and `biomedica eval report` over the results.
- model only: encode_image on a preprocessed in-memory batch, repeated (pure model images/s,
  autocast bf16/fp16 on GPU) — the number to compare across devices.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--images-per-class", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--loader-threads", type=int, default=2)
    parser.add_argument("--model-only-batches", type=int, default=5)
    args = parser.parse_args()

    import torch

    from biomedica.eval.offline_benchmark import OfflineBenchmarkConfig, build_offline_benchmark
    from biomedica.eval.report import write_report
    from biomedica.eval.runner import EvalConfig, run_evaluation
    from biomedica.eval.tasks import load_task_file
    from biomedica.models import load_model

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        started = time.perf_counter()
        benchmark = build_offline_benchmark(scratch / "offline", OfflineBenchmarkConfig(images_per_class=args.images_per_class))
        n_images = sum(benchmark.counts.values())
        rows.append(("build offline benchmark", f"{time.perf_counter() - started:.2f} s", f"{n_images} images"))

        started = time.perf_counter()
        model = load_model(args.model, device=args.device, precision=args.precision)
        rows.append(("load model", f"{time.perf_counter() - started:.2f} s", f"{args.model} on {model.device} ({model.precision})"))

        task = load_task_file(benchmark.task_file)
        config = EvalConfig(out_dir=scratch / "results", batch_size=args.batch_size, loader_threads=args.loader_threads)
        started = time.perf_counter()
        [first] = run_evaluation(model, [task], config, log=lambda _: None)
        elapsed = time.perf_counter() - started
        timings = first.result["timings"]
        rows.append(("first run (embed + score)", f"{elapsed:.2f} s", f"{n_images / elapsed:.0f} images/s end to end"))
        rows.append(("  of which image embedding", f"{timings['embed_images_s']:.2f} s", f"{timings['images_per_s']:.0f} images/s"))
        rows.append(("  of which scoring + 1000 bootstraps", f"{timings['score_s']:.2f} s", ""))

        started = time.perf_counter()
        run_evaluation(model, [task], config, log=lambda _: None)
        rows.append(("rerun from cached embeddings", f"{time.perf_counter() - started:.2f} s", "same scores, no model call"))
        started = time.perf_counter()
        write_report([scratch / "results"], scratch / "report")
        rows.append(("report (Markdown + plots)", f"{time.perf_counter() - started:.2f} s", ""))

        image_size = model.preprocess.transforms[0].size if hasattr(model.preprocess, "transforms") else 224
        side = image_size if isinstance(image_size, int) else image_size[0]
        batch = torch.randn(args.batch_size, 3, side, side)
        model.encode_image(batch)  # warm-up (kernels, autocast caches)
        if model.device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(args.model_only_batches):
            model.encode_image(batch)
        if model.device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        rows.append(("model only: encode_image", f"{elapsed:.2f} s",
                     f"{args.model_only_batches * args.batch_size / elapsed:.0f} images/s at {side}px, batch {args.batch_size}"))

    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({torch.get_num_threads()} threads)"
    print(f"\nbiomedica eval speed — {args.model} on {device_name}\n")
    width = max(len(r[0]) for r in rows)
    print(f"{'step'.ljust(width)}  {'time':>9}  note")
    print(f"{'-' * width}  {'-' * 9}  ----")
    for step, seconds, note in rows:
        print(f"{step.ljust(width)}  {seconds:>9}  {note}")


if __name__ == "__main__":
    main()
