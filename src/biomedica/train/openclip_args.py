"""Map a validated TrainConfig and its resolved sources onto `open_clip_train.main` flags.

OpenCLIP's loop saves and resumes per "epoch"; streaming runs have no natural epoch, so an
epoch here is one checkpoint interval: `--train-num-samples` is set so that an epoch is
`checkpoint_every_steps` optimiser steps, and `--epochs` covers `total_steps`
(the large-scale OpenCLIP recipe with `--dataset-resampled`). The mixture is written as
one `::`-separated URL per shard with per-shard `--train-data-upsampling-factors`
equal to `source weight / source samples`: OpenCLIP draws whole shards, so this makes
each source's share of *samples* equal to its weight share, whatever its shard sizes.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from biomedica.io.atomic import write_text_atomic
from biomedica.net.stream import pipe_url
from biomedica.train.config import TrainConfig
from biomedica.train.loader import LoaderSettings, resolve_loader
from biomedica.train.sources import ResolvedSource, Shard, resolve_source


class PlanError(ValueError):
    """Settings that OpenCLIP would reject later (or silently misuse); the message says the fix."""


@dataclass
class EpochPlan:
    """How the step schedule maps onto OpenCLIP epochs for a given world size."""

    world_size: int
    global_batch: int  # samples per optimiser step: batch_size x world_size x accum_freq
    samples_per_epoch: int  # --train-num-samples
    steps_per_epoch: int
    epochs: int

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs


@dataclass
class TrainPlan:
    """Everything `run_training` passes to OpenCLIP, plus what a person should see first."""

    argv: list[str]
    sources: list[ResolvedSource]
    epochs: EpochPlan
    val: ResolvedSource | None = None
    notes: list[str] = field(default_factory=list)
    loader: LoaderSettings | None = None
    warnings: list[str] = field(default_factory=list)  # the run may see evaluation articles (held-out overlap)

    def summary(self) -> dict:
        total = sum(s.weight for s in self.sources)
        return {
            "sources": [
                {"name": s.name, "shards": len(s.shards), "samples": s.samples, "share": s.weight / total, "counts_from": s.origin}
                for s in self.sources
            ],
            "val": None if self.val is None else {"name": self.val.name, "shards": len(self.val.shards), "samples": self.val.samples},
            "global_batch": self.epochs.global_batch,
            "steps_per_checkpoint": self.epochs.steps_per_epoch,
            "checkpoints": self.epochs.epochs,
            "total_steps": self.epochs.total_steps,
            "loader": None if self.loader is None else self.loader.to_dict(),
            "notes": self.notes,
            "warnings": self.warnings,
        }


def plan_epochs(config: TrainConfig, world_size: int, source_samples: int, workers: int | None = None) -> EpochPlan:
    """Samples per OpenCLIP epoch and epoch count that give the requested steps (see module doc).

    `workers`: the resolved DataLoader worker count (default: data.workers when it is a number, else 1).
    """
    optim, schedule = config.optim, config.schedule
    global_batch = optim.batch_size * world_size * optim.accum_freq
    if workers is None:
        workers = config.data.workers if isinstance(config.data.workers, int) else 1
    workers = max(1, workers)
    if config.data.resampled:
        batches = schedule.checkpoint_every_steps * optim.accum_freq
    else:  # one pass over the data per epoch
        batches = math.ceil(source_samples / (optim.batch_size * world_size))
    # OpenCLIP rounds the per-worker batch count up to a multiple of the worker count
    batches = math.ceil(batches / workers) * workers
    steps_per_epoch = batches // optim.accum_freq
    if steps_per_epoch < 1:
        raise PlanError(
            f"one pass over the data ({source_samples} samples) is less than one step of {global_batch}; "
            "lower optim.batch_size or use resampled: true"
        )
    samples = batches * optim.batch_size * world_size
    return EpochPlan(world_size, global_batch, samples, steps_per_epoch, math.ceil(schedule.total_steps / steps_per_epoch))


def keys_file(run_dir: Path, source: str, shard: Shard) -> Path:
    """Where the key list of one filtered shard is written (stable name: a hash of the URL)."""
    digest = hashlib.sha1(shard.url.encode()).hexdigest()[:16]
    return run_dir / "selection" / source / f"{digest}.keys"


def write_keys_files(run_dir: Path, resolved: ResolvedSource) -> dict[str, str]:
    """Write one key file per filtered shard (atomically, identical on every rank); url -> file."""
    files = {}
    for shard in resolved.shards:
        if shard.keys is None:
            continue
        path = keys_file(run_dir, resolved.name, shard)
        content = "\n".join(shard.keys) + "\n"
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            write_text_atomic(path, content)
        files[shard.url] = str(path.resolve())
    return files


def loader_urls(run_dir: Path, resolved: ResolvedSource) -> list[str]:
    """The URL OpenCLIP opens for each shard (a path, or a `pipe:` through biomedica.net.stream)."""
    files = write_keys_files(run_dir, resolved)
    urls = [pipe_url(s.url, resolved.fetch, files.get(s.url), ranges=s.sparse) for s in resolved.shards]
    for url in urls:
        if "::" in url or "{" in url or "${" in url:
            raise PlanError(
                f"source {resolved.name}: shard location {url!r} contains '::', '{{' or '${{', which OpenCLIP's "
                "URL lists would split or expand; rename or re-host the shard"
            )
    return urls


def mixture_weights(sources: list[ResolvedSource]) -> list[float]:
    """Per-shard draw weights: each source's weight spread evenly per sample (see module doc)."""
    weights = []
    for source in sources:
        if source.samples == 0:
            raise PlanError(f"source {source.name} has no samples")
        weights += [source.weight / source.samples] * len(source.shards)
    return weights


def _device(config: TrainConfig) -> str:
    from biomedica.models.device import pick_device

    return pick_device(config.device)


def build_plan(config: TrainConfig, world_size: int | None = None, sources: list[ResolvedSource] | None = None) -> TrainPlan:
    """Resolve the sources and build the OpenCLIP argv for this process (world size from torchrun's env)."""
    world_size = world_size or int(os.environ.get("WORLD_SIZE", "1"))
    sources = sources if sources is not None else [resolve_source(s) for s in config.data.sources]
    run_dir = config.run_dir
    notes = [note for s in sources for note in s.notes]
    warnings = [warning for s in sources for warning in s.warnings]
    device = _device(config)
    shards = sum(len(s.shards) for s in sources)
    data = config.data
    loader = resolve_loader(data.workers, data.pin_memory, data.prefetch_factor, device, world_size,
                            None if data.resampled else shards)
    epochs = plan_epochs(config, world_size, sum(s.samples for s in sources), loader.workers)
    if epochs.total_steps != config.schedule.total_steps:
        notes.append(
            f"{epochs.total_steps} steps will run ({epochs.epochs} checkpoints of {epochs.steps_per_epoch} steps), "
            f"not {config.schedule.total_steps}: OpenCLIP rounds an epoch to whole batches per data worker"
        )
    optim, model = config.optim, config.model
    urls: list[str] = []
    for source in sources:
        urls += loader_urls(run_dir, source)
    argv = ["--dataset-type", "webdataset", "--train-data", "::".join(urls), "--train-num-samples", str(epochs.samples_per_epoch)]
    if config.data.resampled:
        argv += ["--dataset-resampled"]
        if loader.workers == 0:
            notes.append(
                "data.workers is 0: OpenCLIP seeds resampled shard draws from the DataLoader worker seed, so "
                "without workers every checkpoint interval streams the same shard sequence; use workers >= 1"
            )
        if len(sources) > 1:
            argv += ["--train-data-upsampling-factors", "::".join(f"{w:.12g}" for w in mixture_weights(sources))]
    else:
        if shards < max(1, loader.workers) * world_size:
            raise PlanError(
                f"{shards} shard(s) for {max(1, loader.workers)} workers x {world_size} processes: "
                "without resampling every worker needs a shard; lower data.workers or set resampled: true"
            )
    argv += [
        "--epochs", str(epochs.epochs),
        "--batch-size", str(optim.batch_size),
        "--accum-freq", str(optim.accum_freq),
        "--lr", f"{optim.lr:g}",
        "--beta1", f"{optim.beta1:g}",
        "--beta2", f"{optim.beta2:g}",
        "--eps", f"{optim.eps:g}",
        "--wd", f"{optim.weight_decay:g}",
        "--warmup", str(optim.warmup),
        "--lr-scheduler", optim.lr_scheduler,
        "--model", model.name,
        "--precision", model.precision,
        "--workers", str(loader.workers),
        "--seed", str(config.data.seed),
        "--logs", str(config.output_dir.resolve()),
        "--name", config.name,
        "--save-frequency", "1",
        "--save-most-recent",
        "--resume", "latest",
        "--log-every-n-steps", str(config.logging.log_every_steps),
        "--report-to", ",".join(config.logging.report_to),
        "--device", device,
        "--zeroshot-frequency", "0",
    ]
    if optim.grad_clip_norm is not None:
        argv += ["--grad-clip-norm", f"{optim.grad_clip_norm:g}"]
    if model.pretrained:
        argv += ["--pretrained", model.pretrained]
    if model.context_length:
        argv += ["--force-context-length", str(model.context_length)]
    if model.force_image_size:
        argv += ["--force-image-size", str(model.force_image_size)]
    for flag, on in (
        ("--grad-checkpointing", model.grad_checkpointing),
        ("--torchcompile", model.torchcompile),
        ("--local-loss", model.local_loss),
        ("--gather-with-grad", model.gather_with_grad),
        ("--lock-image", model.lock_image),
        ("--lock-text", model.lock_text),
        ("--delete-previous-checkpoint", config.schedule.keep_checkpoints == "latest"),
    ):
        if on:
            argv.append(flag)
    val = None
    if config.data.val is not None:
        val = resolve_source(config.data.val, role="val")
        notes += val.notes
        argv += [
            "--val-data", "::".join(loader_urls(run_dir, val)),
            "--val-num-samples", str(val.samples),
            "--val-frequency", str(config.eval.every_checkpoints),
        ]
    argv += config.extra_args
    return TrainPlan(argv=argv, sources=sources, epochs=epochs, val=val, notes=notes, loader=loader, warnings=warnings)
