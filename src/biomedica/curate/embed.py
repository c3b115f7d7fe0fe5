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
file. Undecodable images get NaN rows and one error each in
`errors/curate-embed-<group>-<shard>.parquet` (one part per shard, whatever the model: decoding
does not depend on it), under the folder the run locks (archive.annotations.annotations_owner).
Images decode through `biomedica.models.decode_image`, as eval's do, so the same archive
embeds to the same vectors in curate and eval.
"""

from __future__ import annotations

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
from biomedica.archive.reader import iter_shard, live_shards
from biomedica.curate.config import EmbedConfig
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
    """
    decoders = ThreadPoolExecutor(config.workers) if config.workers else nullcontext()  # 0: decode in this thread
    with annotations_lock(archive, store, "biomedica curate embed"), decoders as pool:
        return _embed(Path(archive), store, config, progress, encoder, pool.map if pool else map)


def _embed(
    archive: Path, store: AnnotationStore, config: EmbedConfig, progress: Callable[[int], None] | None,
    encoder: Model | None, decode_map: Callable,
) -> EmbedResult:
    name = config.folder_name()
    folder = store.embeddings_dir(name)
    meta_path = folder / "meta.json"
    settings = _settings(config)
    previous = check_settings(meta_path, settings, f"embedding folder {folder}",
                              "choose another --name or delete the folder", record=False)
    encoder = encoder or load_encoder(config)
    folder.mkdir(parents=True, exist_ok=True)
    has_text = config.captions and encoder.tokenizer is not None
    errors_sink = ErrorSink(annotations_owner(archive, store), "curate")
    done = skipped = samples = failed = 0
    dim = 0
    for group, tar_path, superseded in live_shards(archive):
        stem = f"{group}-{tar_path.stem}"
        keys_path = folder / f"{stem}.keys.parquet"
        if keys_path.is_file():
            skipped += 1
            continue
        keys, images, captions, bad, errors = [], [], [], [], []
        records = list(iter_shard(tar_path, superseded))
        decoded = decode_map(lambda item: _decode_or_error(item[1], encoder.image_size), records)
        for (record, _), (image, exc) in zip(records, decoded):
            keys.append(record["key"])
            captions.append(record.get("caption") or "")
            images.append(image)
            if exc is not None:  # undecodable image: NaN row, counted and recorded, the run goes on
                bad.append(len(keys) - 1)
                errors.append(ErrorRecord(id=record["key"], stage="curate", kind="image-undecodable",
                                          message=f"{exc}; its embedding is NaN", source=str(tar_path)))
        image_vectors = []
        for batch in _batches(images, config.batch_size):
            usable = [im if im is not None else Image.new("RGB", (encoder.image_size, encoder.image_size)) for im in batch]
            image_vectors.append(encoder.image_vectors(usable).astype(np.float16))
            if progress:
                progress(len(batch))
        vectors = np.concatenate(image_vectors) if image_vectors else np.zeros((0, 0), np.float16)
        if bad:
            vectors[bad] = np.nan
        dim = vectors.shape[1] if len(vectors) else dim
        if previous is None:
            previous = {**settings, "dim": dim, "text": has_text, "dtype": "float16", "normalized": True}
            write_json_atomic(meta_path, {**previous, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        elif previous["dim"] != dim:
            raise ValueError(f"{folder}: holds {previous['dim']}-d embeddings, this model gives {dim}-d; delete the folder")
        _save_npy(folder / f"{stem}.image.npy", vectors)
        if has_text:
            text_vectors = [encoder.text_vectors(batch).astype(np.float16) for batch in _batches(captions, config.batch_size)]
            _save_npy(folder / f"{stem}.text.npy", np.concatenate(text_vectors) if text_vectors else vectors[:0])
        errors_sink.write(f"embed-{stem}", errors)  # decode failures do not depend on the model
        write_table_atomic(keys_path, pa.table({"key": pa.array(keys, pa.string())}))
        done += 1
        samples += len(keys)
        failed += len(bad)
    return EmbedResult(name, folder, done, skipped, samples, failed, dim or (previous or {}).get("dim", 0))


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
    folder = store.embeddings_dir(name)
    parts = sorted(folder.glob("*.keys.parquet")) if folder.is_dir() else []
    if not parts:
        raise FileNotFoundError(f"{folder}: no embeddings; run `biomedica curate embed` first")
    keys: list[str] = []
    arrays = []
    for part in parts:
        stem = part.name[: -len(".keys.parquet")]
        vector_path = folder / f"{stem}.{kind}.npy"
        if not vector_path.is_file():
            raise FileNotFoundError(f"{vector_path}: missing ({kind} embeddings were not computed for this model)")
        keys += pq.read_table(part).column("key").to_pylist()
        arrays.append(np.load(vector_path, allow_pickle=False))
    vectors = np.concatenate(arrays)
    order = np.argsort(np.array(keys, dtype=object), kind="stable")
    return [keys[i] for i in order], vectors[order]
