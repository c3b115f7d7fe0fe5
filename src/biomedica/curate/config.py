"""Typed settings of the curation steps (what the CLI and the library both build)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from biomedica.io.memory import checked_size


class DedupConfig(BaseModel):
    """Duplicate detection: exact (sha256 of the stored bytes) and near (pHash Hamming distance)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    near_threshold: int = Field(
        default=6, ge=0, le=32,
        description="largest pHash Hamming distance (of 64 bits) that still counts as a near-duplicate; 0 = exact pHash",
    )
    eval_images: Path | None = Field(
        default=None,
        description="evaluation images to check for leaks: a folder of images, or a .parquet/.csv/.txt with a phash column",
    )
    leak_threshold: int = Field(default=6, ge=0, le=32, description="pHash distance that counts as an eval leak")
    memory: str | None = Field(
        default=None,
        description="memory budget of each near-duplicate search unit (e.g. '2GB', '512MB'); set, or workers > 1, "
        "or executor ray: the search runs partitioned (curate.dedup_partition) with pairs spilled to disk",
    )
    partitions: int | None = Field(
        default=None, ge=1, description="least value ranges per hash substring (default: enough for 4 units per worker)"
    )
    workers: int = Field(default=1, ge=1, description="processes (local) or tasks in flight (ray) of the near search")
    executor: Literal["local", "ray"] = Field(default="local", description="where the near-search units run")

    @field_validator("memory")
    @classmethod
    def _memory_size(cls, value: str | None) -> str | None:
        return checked_size(value)

    @property
    def partitioned(self) -> bool:
        """Whether the near search runs as partitioned units (a budget, several workers or Ray asked for)."""
        return self.memory is not None or self.workers > 1 or self.executor != "local" or self.partitions is not None


class QualityConfig(BaseModel):
    """Thresholds of the quality flags. A flagged sample is kept in the archive; `select` drops it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_side: int = Field(default=64, ge=1, description="flag `tiny-image` when width or height is below this (px)")
    min_pixels: int = Field(default=64 * 64, ge=1, description="flag `tiny-image` when width*height is below this")
    max_aspect: float = Field(default=5.0, gt=1.0, description="flag `extreme-aspect` above this long/short side ratio")
    min_caption_words: int = Field(default=3, ge=0, description="flag `short-caption` below this many words")
    min_language_words: int = Field(
        default=6, ge=1, description="captions with fewer words are not language-checked (too little evidence)"
    )


class EmbedConfig(BaseModel):
    """Which model embeds images and captions, and how the work is batched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        description="model spec as every stage takes it (biomedica.models.spec): tiny-random, ARCH:TAG, ARCH:/path.pt, "
        "hf-hub:ORG/NAME, timm:NAME[:/path]; or, the older form, a bare OpenCLIP ARCH or timm:NAME with `pretrained`"
    )
    pretrained: str | None = Field(
        default=None,
        description="older form: OpenCLIP pretrained tag or local checkpoint of a bare ARCH (none: seeded random "
        "weights); with timm:NAME a local weights file",
    )
    model_config_json: Path | None = Field(
        default=None, description="a custom OpenCLIP model config JSON to register first (its file stem is the name)"
    )
    name: str | None = Field(default=None, description="folder name under annotations/embeddings/ (default: derived from the model)")
    batch_size: int = Field(default=64, ge=1)
    device: str = Field(default="auto", description="auto (cuda when present), cpu, cuda, cuda:1, mps")
    captions: bool = Field(default=True, description="also embed captions (OpenCLIP models only)")
    workers: int = Field(default=0, ge=0, description="image decoding threads (0 = in the main thread)")
    progress: bool = True
    executor: Literal["local", "ray"] = Field(
        default="local", description="where shards are embedded: local (this machine) or ray (exec.run_units); "
        "the same bytes either way")
    shard_workers: int = Field(
        default=1, ge=1, description="shards embedded at once: processes (local; 1 = in this process) or Ray tasks "
        "in flight (ray; 1 = one per cluster CPU)")
    gpus_per_worker: float = Field(
        default=0.0, ge=0, description="ray: share of a GPU each shard task asks for (0.25: four share one GPU)")

    @model_validator(mode="after")
    def _gpus_on_ray_only(self):
        if self.gpus_per_worker and self.executor != "ray":
            raise ValueError("--gpus-per-worker applies to --executor ray only (local: one process per GPU)")
        return self

    @field_validator("model")
    @classmethod
    def _model_is_a_spec(cls, model: str) -> str:
        _parse(_spec_text(model, None))
        return model

    @field_validator("pretrained")
    @classmethod
    def _weights_given_once(cls, pretrained: str | None, info: ValidationInfo) -> str | None:
        if pretrained is not None and "model" in info.data:
            _parse(_spec_text(info.data["model"], pretrained))
        return pretrained

    def spec(self) -> str:
        """The model spec (biomedica.models.spec) this config names, older forms translated."""
        return _spec_text(self.model, self.pretrained)

    def recorded_model(self) -> tuple[str, str | None]:
        """(model, pretrained) as meta.json records them (biomedica.models.spec.recorded_pair), whichever form was given.

        Two configs naming the same weights record the same pair, so either form resumes the other's folder.
        """
        from biomedica.models.spec import recorded_pair

        return recorded_pair(_parse(self.spec()))

    def folder_name(self) -> str:
        if self.name:
            return self.name
        model, pretrained = self.recorded_model()
        base = model.replace("hf-hub:", "").replace("/", "--").replace(":", "-")
        if pretrained and not Path(pretrained).suffix and pretrained != "random":  # random: the bare name, as ARCH:random
            base += f"--{pretrained}"
        return base


def _spec_text(model: str, pretrained: str | None) -> str:
    """The spec of an EmbedConfig's model and pretrained (older form: bare ARCH without weights = ARCH:random)."""
    from biomedica.models.spec import spec_from_recorded

    return spec_from_recorded(model, pretrained)


def _parse(spec: str):
    from biomedica.models.spec import ModelLoadError, parse_model_spec

    try:
        return parse_model_spec(spec)
    except ModelLoadError as exc:
        raise ValueError(str(exc)) from None


class ClusterConfig(BaseModel):
    """PCA + K-means over stored image embeddings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    embeddings: str = Field(description="folder name under annotations/embeddings/ to cluster")
    k: int = Field(default=2000, ge=2, description="number of clusters (BIOMEDICA: 2,000 at full scale)")
    pca_dim: int = Field(default=64, ge=1, description="dimensions kept by PCA before K-means")
    iterations: int = Field(default=25, ge=1, description="K-means iterations")
    restarts: int = Field(default=1, ge=1, description="K-means runs from different seeds; the best is kept")
    max_points_per_centroid: int = Field(
        default=256, ge=1, description="train on a random sample of at most k*this vectors (as faiss does), assign all"
    )
    seed: int = 0
    backend: Literal["auto", "faiss", "sklearn"] = "auto"
    fit_sample: int | None = Field(
        default=None, ge=2, description="fit on at most this many vectors (a seeded sample; None: k*max_points_per_centroid)"
    )
    workers: int = Field(default=1, ge=1, description="processes (or Ray tasks) assigning embedding parts")
    executor: Literal["local", "ray"] = Field(default="local", description="where the per-part assignment runs")


class ZeroShotConfig(BaseModel):
    """Zero-shot concept labels from a CLIP model and the taxonomy prompts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    embed: EmbedConfig
    taxonomy: Path | None = Field(default=None, description="a taxonomy YAML (default: the one shipped with biomedica)")
    top_k: int = Field(default=3, ge=1, description="local concepts kept per image")
    temperature: float = Field(default=100.0, gt=0, description="logit scale applied to cosine similarities")
