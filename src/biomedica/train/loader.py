"""DataLoader settings of a training process: worker count, pinned memory, prefetch depth.

`data.workers: auto` gives each training process the cores of its share of the node:
`cores available to this process (sched_getaffinity) // processes on this node
(LOCAL_WORLD_SIZE, set by torchrun) - 1` (one core stays with the process feeding the GPU),
at least 1 and at most `MAX_AUTO_WORKERS` (16). The cap: OpenCLIP shuffles raw samples in a
5,000-sample buffer per worker (about 1 GB of original-size figures per worker), every worker
is a process with its own copy of the pipeline, and at ~250 training-ready samples/s per core
16 workers already feed ~4,000 samples/s, beyond one GPU's ViT-B/16 rate. Without resampling a
worker needs a shard, so auto never asks for more workers than shards per process.

`pin_memory` (auto: on with CUDA) makes batches page-locked so that OpenCLIP's
`.to(device, non_blocking=True)` copies overlap compute; without an accelerator PyTorch
ignores it (with a warning), so auto leaves it off on CPU.
`prefetch_factor` (default 4; PyTorch's is 2): batches each worker prepares ahead. The
DataLoader hands out batches in worker order, so one stalled worker (a shard opened over
HTTP, a retry with back-off, a huge original PNG) blocks the step once its queue is empty.
At ViT-B/16 rates (~1,500 samples/s, batch 256: a batch every ~0.17 s) with 11 workers a
worker's batch is due every ~1.9 s, so depth 4 rides out a ~7 s stall where 2 covers ~4 s;
the cost is memory: workers x prefetch x batch in shared memory (11 x 4 x 154 MB = 6.8 GB per
GPU process at 224 px fp32). Measured on CPU (2 shared cores, tiny model, 1 worker, demo
archive): loader 200-316 samples/s and training 89-122 samples/s with 2.5-5% data wait for
every prefetch 2/4/8 x pin on/off, i.e. no effect beyond run-to-run noise, as expected when
one worker keeps ahead of a CPU model; the depth only matters when workers stall.
OpenCLIP builds its `wds.WebLoader` without either; `openclip_loader_options` adds them by
patching the name `open_clip_train.data` looks up (like `compat.openclip_tar_reader_fixed`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

MAX_AUTO_WORKERS = 16


@dataclass(frozen=True)
class LoaderSettings:
    """What the DataLoader of this process gets; `how` says where the worker count came from."""

    workers: int
    pin_memory: bool
    prefetch_factor: int | None  # None with 0 workers (PyTorch refuses it without worker processes)
    how: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def auto_workers(cpus: int, local_world_size: int) -> int:
    """Workers per training process: its share of the cores less one for itself, within 1..MAX_AUTO_WORKERS."""
    return max(1, min(MAX_AUTO_WORKERS, cpus // max(1, local_world_size) - 1))


def available_cpus() -> int:
    """Cores this process may run on (a cgroup/affinity limit counts, os.cpu_count() does not see it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def local_world_size(world_size: int, device: str) -> int:
    """Training processes on this node: torchrun's LOCAL_WORLD_SIZE, else the world size up to the GPUs here."""
    env = os.environ.get("LOCAL_WORLD_SIZE")
    if env:
        return max(1, int(env))
    if device == "cuda" and world_size > 1:
        import torch

        return max(1, min(world_size, torch.cuda.device_count() or world_size))
    return max(1, world_size)


def resolve_loader(workers: int | str, pin_memory: bool | str, prefetch_factor: int, device: str,
                   world_size: int, shards: int | None = None) -> LoaderSettings:
    """The settings for this process; `shards` (without resampling) caps an automatic worker count."""
    if workers == "auto":
        cpus, local = available_cpus(), local_world_size(world_size, device)
        count = auto_workers(cpus, local)
        how = f"auto: {cpus} cores / {local} process(es) on this node - 1"
        if count == MAX_AUTO_WORKERS and cpus // local - 1 > MAX_AUTO_WORKERS:
            how += f", capped at {MAX_AUTO_WORKERS}"
        if shards is not None and count * world_size > shards:
            count = max(1, shards // world_size)
            how += f", limited by {shards} shard(s) without resampling"
    else:
        count, how = int(workers), "data.workers"
    pin = device == "cuda" if pin_memory == "auto" else bool(pin_memory)
    return LoaderSettings(count, pin, prefetch_factor if count > 0 else None, how)


class _WebdatasetWithOptions:
    """The `webdataset` module as open_clip_train.data sees it, with WebLoader given our DataLoader options."""

    def __init__(self, module, options: dict[str, Any]):
        self._module, self._options = module, options

    def __getattr__(self, name: str):
        return getattr(self._module, name)

    def WebLoader(self, *args: Any, **kwargs: Any):  # the name OpenCLIP calls
        return self._module.WebLoader(*args, **{**self._options, **kwargs})


@contextmanager
def openclip_loader_options(settings: LoaderSettings) -> Iterator[None]:
    """Within the block, OpenCLIP's webdataset loaders pin memory and prefetch as `settings` say."""
    import open_clip_train.data as openclip_data

    options: dict[str, Any] = {"pin_memory": settings.pin_memory}
    if settings.prefetch_factor is not None:
        options["prefetch_factor"] = settings.prefetch_factor
    original = openclip_data.wds
    openclip_data.wds = _WebdatasetWithOptions(original, options)
    try:
        yield
    finally:
        openclip_data.wds = original
