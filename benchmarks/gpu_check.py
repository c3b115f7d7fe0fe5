"""The GPU checks of issue 13, as one prepared script: results (JSON + logs) under $OUT.

    OUT=/tmp/gpu-check python benchmarks/gpu_check.py              # all checks
    python benchmarks/gpu_check.py --out DIR --only embed          # throughput + one check

Checks (each a subprocess with its own time limit, so one failure does not lose the others):
  env         the card (nvidia-smi -L, torch.cuda), torch/torchvision versions, GPU count, cores;
  throughput  benchmarks/train_throughput.py --device cuda on the real fixture figures:
              ViT-B-16 and ViT-L-14 (bf16, batch 256) on OpenCLIP's synthetic data (the compute
              bound) and from training-ready shards over loopback HTTP with the data-wait
              fraction and torch.cuda.max_memory_allocated; loader rows (originals vs
              training-ready, per worker core) and decode rows incl. batched decode_jpeg on CUDA;
  torchrun    `biomedica train run` under torchrun: 2-GPU DDP when more than one GPU is visible,
              else a 1-process torchrun smoke (--standalone), ViT-B-16 bf16 on the training-ready
              shards the throughput check kept;
  embed       `curate embed` (biomedica.curate.embed.embed_archive) of the kept archive on the
              GPU with ViT-B-16 (random weights: no downloads), images/s after model load.

On a GPU machine that has only the repository (no ../shared) and whose Python lacks
open_clip/webdataset/duckdb/pydantic: copy the fixtures into an ignored folder of the repo and
the wheels into .whl before the run, e.g.
    echo /.fixtures/ >> .git/info/exclude; mkdir -p .fixtures/images
    cp -r ../shared/fixtures/pmc_packages .fixtures/; cp -r ../shared/fixtures/images/pmc_package_figures .fixtures/images/
then, with both folders on that machine:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site;
    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --fixtures .fixtures
The env check lists any missing module first (results/env.json "missing") and the run stops there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NEEDED = ("torch", "torchvision", "open_clip", "open_clip_train", "webdataset", "duckdb", "pydantic", "pyarrow",
          "PIL", "typer", "rich", "yaml", "ftfy", "regex")


def _env() -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return env


def step(out: Path, name: str, command: list[str], timeout: int) -> dict:
    """Run one check; its output goes to OUT/<name>.log; returns status and seconds."""
    started = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        try:
            rc = subprocess.run(command, check=False, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=REPO,
                                timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    result = {"check": name, "rc": rc, "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(result), flush=True)
    return result


def check_env(out: Path) -> dict:
    import importlib.util

    info: dict = {"missing": [m for m in NEEDED if importlib.util.find_spec(m) is None],
                  "cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        info["nvidia_smi"] = subprocess.run(["nvidia-smi", "-L"], check=False, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        info["nvidia_smi"] = f"nvidia-smi failed: {exc}"
    try:
        import torch
        import torchvision

        info.update(torch=torch.__version__, torchvision=torchvision.__version__, cuda=torch.cuda.is_available(),
                    gpus=torch.cuda.device_count(),
                    names=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
    except (ImportError, RuntimeError) as exc:  # the report says what broke; the checks below need torch
        info["torch_error"] = repr(exc)
    (out / "env.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info), flush=True)
    return info


def torchrun_config(kept: Path, run_root: Path, gpus: int, steps: int) -> Path:
    import yaml

    tars = sorted(str(p) for p in (kept / "training-ready").rglob("*.tar"))
    config = {
        "name": f"torchrun-{gpus}gpu", "output_dir": str(run_root), "device": "cuda",
        "model": {"name": "ViT-B-16", "precision": "amp_bf16"},
        "data": {"sources": [{"name": "ready", "urls": tars, "num_samples": 32 * len(tars)}],
                 "workers": max(1, (os.cpu_count() or 2) // max(1, gpus) - 1), "seed": 0},
        "optim": {"lr": 1e-4, "warmup": 1, "batch_size": 128, "weight_decay": 0.1},
        "schedule": {"total_steps": steps, "checkpoint_every_steps": steps},
        "logging": {"report_to": [], "log_every_steps": 1},
    }
    path = run_root / "torchrun.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


EMBED_CODE = """
import json, sys, time
from pathlib import Path
from biomedica.archive.annotations import AnnotationStore
from biomedica.curate.config import EmbedConfig
from biomedica.curate.embed import embed_archive, load_encoder
archive, annotations, out, model, device = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), *sys.argv[4:6]
config = EmbedConfig(model=model, device=device, batch_size=256, workers=8, progress=False)
started = time.perf_counter()
encoder = load_encoder(config)  # model build + CUDA start-up: outside the rate
load_s = time.perf_counter() - started
started = time.perf_counter()
result = embed_archive(archive, AnnotationStore(annotations), config, encoder=encoder)
seconds = time.perf_counter() - started
row = {"samples": result.samples, "seconds": seconds, "images_per_s": result.samples / seconds, "load_s": load_s}
out.write_text(json.dumps(row)); print(row)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu-check-out"))
    parser.add_argument("--fixtures", type=Path, default=REPO.parent / "shared" / "fixtures")
    parser.add_argument("--only", nargs="+", choices=("torchrun", "embed"), default=["torchrun", "embed"],
                        help="checks after throughput (which always runs: it builds their data)")
    parser.add_argument("--copies", type=int, default=32, help="copies of the fixture articles (31 figures each)")
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default: cores - 2)")
    parser.add_argument("--gpu-steps", type=int, default=40)
    args = parser.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    env = check_env(out)
    if env["missing"] or not env.get("cuda"):
        print(f"stopped: missing modules {env['missing']} or no CUDA (see {out / 'env.json'})", flush=True)
        return 2
    workers = args.workers or max(1, (os.cpu_count() or 4) - 2)
    scratch = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    kept = scratch / "data"  # archive + training-ready shards, kept for the torchrun and embed checks
    results = [
        step(out, "throughput", [
            sys.executable, "benchmarks/train_throughput.py", "--device", "cuda", "--fixtures", str(args.fixtures),
            "--copies", str(args.copies), "--ingest-workers", str(min(8, workers)), "--select-workers", str(min(8, workers)),
            "--workers", str(workers), "--steps", "20", "--no-train", "--sources", "local", "http",
            "--gpu-models", "ViT-B-16", "ViT-L-14", "--gpu-batch-size", "256", "--gpu-steps", str(args.gpu_steps),
            "--gpu-workers", str(workers), "--decode-images", "256", "--decode-repeat", "2",
            "--keep", str(kept), "--json", str(out / "throughput.json")], timeout=420),
    ]
    if "torchrun" in args.only and (kept / "training-ready").exists():
        gpus = min(2, env["gpus"])
        run_root = scratch / "runs"
        run_root.mkdir()
        config = torchrun_config(kept, run_root, gpus, steps=20)
        command = [sys.executable, "-m", "biomedica.cli", "train", "run", str(config), "--nproc-per-node", str(gpus)]
        if gpus == 1:
            command += ["--torchrun-args", "--standalone"]
        results.append(step(out, f"torchrun-{gpus}gpu", command, timeout=240))
        metrics = next(run_root.rglob("metrics.jsonl"), None)
        if metrics:
            shutil.copyfile(metrics, out / f"torchrun-{gpus}gpu-metrics.jsonl")
    if "embed" in args.only and (kept / "archive").exists():
        results.append(step(out, "embed", [sys.executable, "-c", EMBED_CODE, str(kept / "archive"),
                                           str(kept / "annotations-gpu"), str(out / "embed.json"), "ViT-B-16", "cuda"],
                            timeout=240))
    shutil.rmtree(scratch, ignore_errors=True)
    (out / "checks.json").write_text(json.dumps({"env": env, "checks": results}, indent=1))
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
