"""Image and caption embeddings of every sample, stored per shard as float16 (resumable).

Models: any spec `biomedica.models` loads, as eval and train take it (`tiny-random`,
`ARCH:TAG`, `ARCH:/path.pt`, `hf-hub:ORG/NAME`, an image-only timm model such as a DINOv2
`timm:vit_large_patch14_dinov2.lvd142m:/path/to/weights.safetensors`); a custom architecture
JSON can be registered with `model_config_json`. torch, open_clip and timm are imported by
biomedica.models only, so the rest of curation stays torch-free.

Output, under `annotations/embeddings/<name>/`:

    meta.json                          model, pretrained (EmbedConfig.recorded_model), decode (the decode rule), dim,
                                       created; a resume must match model, pretrained and decode
    <group>-<shard>.image.npy          float16 [n, dim], L2-normalised, rows in shard order
    <group>-<shard>.text.npy           the same for captions (OpenCLIP models only)
    <group>-<shard>.keys.parquet       the n sample keys, written last: it marks the part done

The shard is the unit of work: an interrupted run redoes only the shards without a keys
file. Shards run in this process (`shard_workers` 1, the default), in a local process pool, or as
Ray tasks (`executor="ray"`, `gpus_per_worker` a share of a GPU each) through `exec.run_units`;
every way writes the same files with the same bytes (one model per worker process, loaded once;
meta.json is written by the parent before any part, its dim probed on CPU when no worker ran yet). Undecodable images get NaN rows and one error each in
`errors/curate-embed-<group>-<shard>.parquet` (one part per shard, whatever the model: decoding
does not depend on it), under the folder the run locks (archive.annotations.annotations_owner).
Images decode through `biomedica.models.decode_image`, as eval's do, so the same archive
embeds to the same vectors in curate and eval.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from biomedica.archive.annotations import AnnotationStore, annotations_lock, annotations_owner, write_table_atomic
from biomedica.archive.errors import ErrorSink
from biomedica.archive.reader import LiveShard, iter_shard, live_shards
from biomedica.curate.config import EmbedConfig
from biomedica.exec import run_units, stop_if_orphaned
from biomedica.io.atomic import atomic_open, write_json_atomic
from biomedica.io.settings import check_settings
from biomedica.models.decode import DECODE_RULE, decode_image
from biomedica.models.load import Model, load_model
from biomedica.records import ErrorRecord


def load_encoder(config: EmbedConfig) -> Model:
    """The model `config` names (biomedica.models), on its device, in eval mode."""
    return load_model(config.spec(), config.device, config_file=config.model_config_json)


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class EmbedResult:
    name: str
    folder: Path
    shards_done: int
    shards_skipped: int
    samples: int
    failed: int
    dim: int
    executor: str = "local"
    shard_workers: int = 1
    seconds: float = 0.0

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class EmbedJob:
    """What every shard unit shares, sent once per worker: where to write and which model (loaded once per worker)."""

    folder: Path
    errors_root: Path  # annotations_owner: the folder the parent locks
    config: EmbedConfig
    dim: int  # what meta.json records; a unit refuses to write other vectors


@dataclass
class ShardEmbedding:
    """What one shard unit wrote."""

    stem: str
    samples: int
    failed: int


def _settings(config: EmbedConfig) -> dict:
    """What a resume must match: the weights and the image decode rule (either changes the vectors)."""
    model, pretrained = config.recorded_model()
    return {"model": model, "pretrained": pretrained, "decode": DECODE_RULE}


def embed_archive(
    archive: Path, store: AnnotationStore, config: EmbedConfig, progress: Callable[[int], None] | None = None,
    encoder: Model | None = None,
) -> EmbedResult:
    """Embed every complete shard not yet embedded; returns counts. Images that fail to decode get NaN rows.

    `encoder` reuses a model already loaded from the same `config`. Holds the annotations' write lock.
    Shards run here one after the other (`shard_workers` 1, local) or as units of `exec.run_units`
    (local processes or Ray tasks) writing the same files.
    """
    with annotations_lock(archive, store, "biomedica curate embed"):
        return _embed(Path(archive), store, config, progress, encoder)


def _inline(config: EmbedConfig) -> bool:
    return config.executor == "local" and config.shard_workers <= 1


def _embed(
    archive: Path, store: AnnotationStore, config: EmbedConfig, progress: Callable[[int], None] | None,
    encoder: Model | None,
) -> EmbedResult:
    started = time.perf_counter()
    name = config.folder_name()
    folder = store.embeddings_dir(name)
    meta_path = folder / "meta.json"
    settings = _settings(config)
    previous = check_settings(meta_path, settings, f"embedding folder {folder}",
                              "choose another --name or delete the folder", record=False)
    units, skipped = [], 0
    for unit in live_shards(archive):  # one shard: the unit of work, resume and error parts
        if (folder / f"{unit.stem}.keys.parquet").is_file():
            skipped += 1
        else:
            units.append(unit)
    result = EmbedResult(name, folder, 0, skipped, 0, 0, (previous or {}).get("dim", 0), config.executor,
                         config.shard_workers)
    if not units:
        return result
    if _inline(config) or previous is None:  # inline: the model that embeds; else probed once for meta.json
        encoder = encoder or (load_encoder(config) if _inline(config) else _probe_encoder(config))
        dim = _probe_dim(encoder)
        if previous is None:  # recorded before any part, so a resume with other settings is refused
            previous = {**settings, "dim": dim, "text": config.captions and encoder.tokenizer is not None,
                        "dtype": "float16", "normalized": True}
            folder.mkdir(parents=True, exist_ok=True)
            write_json_atomic(meta_path, {**previous, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        elif previous["dim"] != dim:
            raise ValueError(f"{folder}: holds {previous['dim']}-d embeddings, this model gives {dim}-d; delete the folder")
    job = EmbedJob(folder, annotations_owner(archive, store), config, previous["dim"])
    if _inline(config):
        done = ((unit, embed_shard(unit, job, encoder, progress)) for unit in units)
    else:
        done = run_units(embed_shard, units, executor=config.executor, workers=config.shard_workers, context=job,
                         gpus_per_worker=config.gpus_per_worker)
    for _, part in done:
        result.shards_done += 1
        result.samples += part.samples
        result.failed += part.failed
        if progress and not _inline(config):
            progress(part.samples)
    result.dim = previous["dim"]
    result.seconds = time.perf_counter() - started
    return result


def _probe_encoder(config: EmbedConfig) -> Model:
    """The model on CPU, only to learn its output size (the shard workers load their own on their device)."""
    return load_model(config.spec(), "cpu", config_file=config.model_config_json)


def _probe_dim(encoder: Model) -> int:
    blank = Image.new("RGB", (encoder.image_size, encoder.image_size))
    return int(encoder.image_vectors([blank]).shape[1])


_WORKER_ENCODERS: dict[str, Model] = {}  # per worker process: the model of the run's config, loaded once


def _worker_encoder(config: EmbedConfig) -> Model:
    key = config.model_dump_json()
    if key not in _WORKER_ENCODERS:
        _WORKER_ENCODERS.clear()  # one model per worker process at a time
        if config.executor == "local":  # share the cores among the pool (Ray already sets one thread per task CPU)
            import torch

            torch.set_num_threads(max(1, (os.cpu_count() or 1) // config.shard_workers))
        _WORKER_ENCODERS[key] = load_encoder(config)
    return _WORKER_ENCODERS[key]


def embed_shard(unit: LiveShard, job: EmbedJob, encoder: Model | None = None,
                progress: Callable[[int], None] | None = None) -> ShardEmbedding:
    """Embed one shard and write its part (unit function of `exec.run_units`): vectors, errors, then keys (done mark)."""
    config = job.config
    encoder = encoder or _worker_encoder(config)
    has_text = config.captions and encoder.tokenizer is not None
    keys, images, captions, bad, errors = [], [], [], [], []
    records = list(iter_shard(unit.tar, unit.superseded))
    decoders = ThreadPoolExecutor(config.workers) if config.workers else nullcontext()  # 0: decode in this thread
    with decoders as pool:
        decode_map = pool.map if pool else map
        decoded = list(decode_map(lambda item: _decode_or_error(item[1], encoder.image_size), records))
    for (record, _), (image, exc) in zip(records, decoded):
        keys.append(record["key"])
        captions.append(record.get("caption") or "")
        images.append(image)
        if exc is not None:  # undecodable image: NaN row, counted and recorded, the run goes on
            bad.append(len(keys) - 1)
            errors.append(ErrorRecord(id=record["key"], stage="curate", kind="image-undecodable",
                                      message=f"{exc}; its embedding is NaN", source=str(unit.tar)))
    image_vectors = []
    for batch in _batches(images, config.batch_size):
        stop_if_orphaned()
        usable = [im if im is not None else Image.new("RGB", (encoder.image_size, encoder.image_size)) for im in batch]
        image_vectors.append(encoder.image_vectors(usable).astype(np.float16))
        if progress:
            progress(len(batch))
    vectors = np.concatenate(image_vectors) if image_vectors else np.zeros((0, job.dim), np.float16)
    if bad:
        vectors[bad] = np.nan
    if vectors.shape[1] != job.dim:
        raise ValueError(f"{job.folder}: holds {job.dim}-d embeddings, this model gives {vectors.shape[1]}-d; "
                         "delete the folder")
    _save_npy(job.folder / f"{unit.stem}.image.npy", vectors)
    if has_text:
        text_vectors = [encoder.text_vectors(batch).astype(np.float16) for batch in _batches(captions, config.batch_size)]
        _save_npy(job.folder / f"{unit.stem}.text.npy", np.concatenate(text_vectors) if text_vectors else vectors[:0])
    ErrorSink(job.errors_root, "curate").write(f"embed-{unit.stem}", errors)  # decode failures do not depend on the model
    write_table_atomic(job.folder / f"{unit.stem}.keys.parquet", pa.table({"key": pa.array(keys, pa.string())}))
    return ShardEmbedding(unit.stem, len(keys), len(bad))


def _decode_or_error(image_bytes: bytes, side: int) -> tuple[Image.Image | None, Exception | None]:
    try:
        return decode_image(image_bytes, side), None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is one undecodable image
        return None, exc


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path) as handle:
        np.save(handle, array.astype(np.float16), allow_pickle=False)


def read_embeddings(store: AnnotationStore, name: str, kind: str = "image") -> tuple[list[str], np.ndarray]:
    """(keys, float16 [n, dim]) of every finished part of embedding folder `name`, sorted by key."""
    keys: list[str] = []
    arrays = []
    for part in store.embedding_parts(name, kind):
        keys += pq.read_table(part.keys).column("key").to_pylist()
        arrays.append(np.load(part.vectors, allow_pickle=False))
    vectors = np.concatenate(arrays)
    order = np.argsort(np.array(keys, dtype=object), kind="stable")
    return [keys[i] for i in order], vectors[order]
