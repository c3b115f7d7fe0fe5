"""Batched image/text embedding with an on-disk cache keyed by (model, dataset, preprocess).

The cache holds L2-normalised float32 arrays as `<digest>.npy` plus `<digest>.json` (the key
in readable form), so re-scoring or re-reporting a task never re-runs the model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biomedica.eval.images import ImageRef
from biomedica.io.atomic import atomic_open, write_text_atomic
from biomedica.models.load import l2_normalise

CACHE_FORMAT = 1


@dataclass(frozen=True)
class EmbeddingCache:
    """A folder of cached embeddings; `root=None` disables caching."""

    root: Path | None

    def _paths(self, key: dict) -> tuple[Path, Path]:
        digest = hashlib.sha1(json.dumps({**key, "format": CACHE_FORMAT}, sort_keys=True).encode()).hexdigest()[:24]
        return self.root / f"{digest}.npy", self.root / f"{digest}.json"

    def load(self, key: dict) -> np.ndarray | None:
        if self.root is None:
            return None
        array_path, _ = self._paths(key)
        if not array_path.is_file():
            return None
        try:
            return np.load(array_path)
        except (OSError, ValueError):
            return None  # a damaged entry is recomputed and overwritten

    def save(self, key: dict, array: np.ndarray) -> None:
        if self.root is None:
            return
        array_path, key_path = self._paths(key)
        with atomic_open(array_path) as handle:
            np.save(handle, array.astype(np.float32))
        write_text_atomic(key_path, json.dumps({**key, "shape": list(array.shape)}, indent=1))


def preprocess_fingerprint(preprocess) -> str:
    """A short hash of the preprocessing pipeline's repr (torchvision lists sizes, crops, normalisation)."""
    return hashlib.sha1(repr(preprocess).encode()).hexdigest()[:12]


def text_fingerprint(texts: Sequence[str]) -> str:
    return hashlib.sha1("\0".join(texts).encode()).hexdigest()[:16]


def _batches(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


class ImageLoadError(RuntimeError):
    """One image of a dataset cannot be decoded; the message names it."""


def _load_one(image: ImageRef, model):
    try:  # decoded as curate embed decodes, at the model's input side when it says it
        return model.preprocess(image.load(getattr(model, "image_size", None)))
    except Exception as exc:  # noqa: BLE001 - Pillow/pydicom raise many types
        raise ImageLoadError(f"cannot read image {image.identity()}: {type(exc).__name__}: {exc}") from None


def embed_images(
    model,
    images: Sequence[ImageRef],
    dataset_fingerprint: str,
    cache: EmbeddingCache,
    batch_size: int = 64,
    loader_threads: int = 2,
    progress: bool = False,
) -> tuple[np.ndarray, bool]:
    """(N x D normalised embeddings, whether they came from the cache)."""
    key = {
        "what": "image",
        "model": model.fingerprint,
        "dataset": dataset_fingerprint,
        "preprocess": preprocess_fingerprint(model.preprocess),
        "n": len(images),
    }
    cached = cache.load(key)
    if cached is not None and len(cached) == len(images):
        return cached, True
    import torch

    chunks = []
    batches = list(_batches(len(images), batch_size))
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="embedding images", unit="batch", leave=False)
    with ThreadPoolExecutor(max_workers=max(1, loader_threads)) as pool:
        for batch in batches:
            tensors = list(pool.map(lambda ref: _load_one(ref, model), [images[i] for i in batch]))
            chunks.append(model.encode_image(torch.stack(tensors)).cpu().numpy())
    array = l2_normalise(np.concatenate(chunks).astype(np.float32))
    cache.save(key, array)
    return array, False


def embed_texts(model, texts: Sequence[str], cache: EmbeddingCache, batch_size: int = 256) -> np.ndarray:
    """len(texts) x D normalised text embeddings (cached by model and the exact texts)."""
    key = {"what": "text", "model": model.fingerprint, "texts": text_fingerprint(texts), "n": len(texts)}
    cached = cache.load(key)
    if cached is not None and len(cached) == len(texts):
        return cached
    chunks = [model.encode_text([texts[i] for i in batch]).cpu().numpy() for batch in _batches(len(texts), batch_size)]
    array = l2_normalise(np.concatenate(chunks).astype(np.float32))
    cache.save(key, array)
    return array
