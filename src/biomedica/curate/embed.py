"""Image and caption embeddings of every sample, stored per shard as float16 (resumable).

Models: any OpenCLIP model (a hub name such as `hf-hub:org/name`, a built-in name with a
pretrained tag, or a local checkpoint file; a custom architecture JSON can be registered
with `model_config_json`), or an image-only timm model (`timm:<name>`, e.g. a DINOv2
`timm:vit_large_patch14_dinov2.lvd142m`) with local weights. torch, open_clip and timm are
imported here only, so the rest of curation stays torch-free.

Output, under `annotations/embeddings/<name>/`:

    meta.json                          model, pretrained, dim, created; a resume must match it
    <group>-<shard>.image.npy          float16 [n, dim], L2-normalised, rows in shard order
    <group>-<shard>.text.npy           the same for captions (OpenCLIP models only)
    <group>-<shard>.keys.parquet       the n sample keys, written last: it marks the part done

The shard is the unit of work: an interrupted run redoes only the shards without a keys
file. JPEGs are decoded at reduced scale (PIL draft) close to the model's input size.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from biomedica.io.atomic import atomic_open, write_json_atomic
from biomedica.io.settings import check_settings
from biomedica.archive.reader import iter_shard, shard_paths
from biomedica.archive.annotations import AnnotationStore, write_table_atomic
from biomedica.archive.errors import ErrorSink
from biomedica.records import ErrorRecord
from biomedica.curate.config import EmbedConfig


@dataclass
class Encoder:
    """A loaded model: preprocess (PIL -> tensor), encoders, tokenizer (None for image-only)."""

    model: object
    preprocess: Callable
    tokenizer: Callable | None
    device: str
    image_size: int
    kind: str  # "open_clip" | "timm"

    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        batch = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        with torch.inference_mode(), _autocast(self.device):
            if self.kind == "open_clip":
                features = self.model.encode_image(batch)
            else:
                features = self.model(batch)
            features = torch.nn.functional.normalize(features.float(), dim=-1)
        return features.cpu().numpy().astype(np.float16)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        if self.tokenizer is None:
            raise ValueError("this model has no text tower (timm image model); use an OpenCLIP model for captions")
        tokens = self.tokenizer(texts).to(self.device)
        with torch.inference_mode(), _autocast(self.device):
            features = torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)
        return features.cpu().numpy().astype(np.float16)


def _autocast(device: str):
    import contextlib

    import torch

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def resolve_device(requested: str) -> str:
    import torch

    if requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(config: EmbedConfig) -> Encoder:
    """Build the model of `config` on its device, in eval mode."""
    device = resolve_device(config.device)
    if config.model.startswith("timm:"):
        return _load_timm(config, device)
    import open_clip

    if config.model_config_json is not None:
        if not Path(config.model_config_json).is_file():
            raise FileNotFoundError(f"{config.model_config_json}: model config JSON not found")
        open_clip.add_model_config(Path(config.model_config_json))
    pretrained = config.pretrained
    if pretrained and Path(pretrained).suffix and not Path(pretrained).is_file():
        raise FileNotFoundError(f"{pretrained}: checkpoint file not found; give a local file or an OpenCLIP pretrained tag")
    if not pretrained:
        # random weights (tests, smoke runs): seed them, so a resumed run embeds with the same model
        import torch

        torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(config.model, pretrained=pretrained, device=device)
    model.eval()
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    return Encoder(model, preprocess, open_clip.get_tokenizer(config.model), device, size, "open_clip")


def _load_timm(config: EmbedConfig, device: str) -> Encoder:
    import timm
    import torch

    name = config.model.removeprefix("timm:")
    model = timm.create_model(name, pretrained=False, num_classes=0)
    if config.pretrained:
        weights = Path(config.pretrained)
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: timm weights file not found (models are never downloaded here)")
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(weights))
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [m for m in missing if not m.startswith("head")]:
            raise ValueError(f"{weights}: weights do not fit timm model {name!r} (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.eval().to(device)
    data_config = timm.data.resolve_data_config({}, model=model)
    preprocess = timm.data.create_transform(**data_config)
    return Encoder(model, preprocess, None, device, int(data_config["input_size"][-1]), "timm")


def _decode(image_bytes: bytes, side: int) -> Image.Image:
    image = Image.open(io.BytesIO(image_bytes))
    if image.format == "JPEG":
        image.draft("RGB", (2 * side, 2 * side))
    return image.convert("RGB")


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


def _meta(config: EmbedConfig, dim: int, has_text: bool) -> dict:
    return {"model": config.model, "pretrained": config.pretrained, "dim": dim, "text": has_text, "dtype": "float16",
            "normalized": True}


def embed_archive(
    archive: Path, store: AnnotationStore, config: EmbedConfig, progress: Callable[[int], None] | None = None,
    encoder: Encoder | None = None,
) -> EmbedResult:
    """Embed every complete shard not yet embedded; returns counts. Images that fail to decode get NaN rows.

    `encoder` reuses a model already loaded from the same `config`.
    """
    folder = store.embeddings_dir(config.folder_name())
    meta_path = folder / "meta.json"
    previous = check_settings(meta_path, {"model": config.model, "pretrained": config.pretrained},
                              f"embedding folder {folder}", "choose another --name or delete the folder", record=False)
    encoder = encoder or load_encoder(config)
    folder.mkdir(parents=True, exist_ok=True)
    has_text = config.captions and encoder.tokenizer is not None
    done = skipped = samples = failed = 0
    dim = 0
    for group, tar_path in shard_paths(Path(archive)):
        stem = f"{group}-{tar_path.stem}"
        keys_path = folder / f"{stem}.keys.parquet"
        if keys_path.is_file():
            skipped += 1
            continue
        keys, images, captions, bad, errors = [], [], [], [], []
        for record, image_bytes in iter_shard(tar_path):
            keys.append(record["key"])
            captions.append(record.get("caption") or "")
            try:
                images.append(_decode(image_bytes, encoder.image_size))
            except Exception as exc:  # undecodable image: NaN row, counted and recorded, the run goes on
                images.append(None)
                bad.append(len(keys) - 1)
                errors.append(ErrorRecord(id=record["key"], stage="curate", kind="image-undecodable",
                                          message=f"{exc}; its embedding is NaN", source=str(tar_path)))
        image_vectors = []
        for batch in _batches(images, config.batch_size):
            usable = [im if im is not None else Image.new("RGB", (encoder.image_size, encoder.image_size)) for im in batch]
            image_vectors.append(encoder.encode_images(usable))
            if progress:
                progress(len(batch))
        vectors = np.concatenate(image_vectors) if image_vectors else np.zeros((0, 0), np.float16)
        if bad:
            vectors[bad] = np.nan
        dim = vectors.shape[1] if len(vectors) else dim
        if previous is None:
            previous = _meta(config, dim, has_text)
            write_json_atomic(meta_path, {**previous, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        elif previous["dim"] != dim:
            raise ValueError(f"{folder}: holds {previous['dim']}-d embeddings, this model gives {dim}-d; delete the folder")
        _save_npy(folder / f"{stem}.image.npy", vectors)
        if has_text:
            text_vectors = [encoder.encode_texts(batch) for batch in _batches(captions, config.batch_size)]
            _save_npy(folder / f"{stem}.text.npy", np.concatenate(text_vectors) if text_vectors else vectors[:0])
        ErrorSink(Path(archive), "curate").write(f"embed-{stem}", errors)
        write_table_atomic(keys_path, pa.table({"key": pa.array(keys, pa.string())}))
        done += 1
        samples += len(keys)
        failed += len(bad)
    return EmbedResult(config.folder_name(), folder, done, skipped, samples, failed, dim or (previous or {}).get("dim", 0))


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
