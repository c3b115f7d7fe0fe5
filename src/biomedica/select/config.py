"""Typed settings of `biomedica select`: which samples, which strategy, which output."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from biomedica.archive.split import DEFAULT_HELD_OUT_FRACTION, DEFAULT_SPLIT_SALT, HeldOutSplit
from biomedica.io.memory import checked_size

if TYPE_CHECKING:
    from biomedica.images.training import TrainingImageSpec

_IMAGE_OPTIONS = {"image_format": "--image-format", "quality": "--quality", "resize_mode": "--resize-mode"}


def _default_workers() -> int:
    return os.cpu_count() or 1


class SelectConfig(BaseModel):
    """A training subset: filters (all ANDed), then a concept strategy, then the output form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    archive: Path
    out: Path
    annotations: Path | None = Field(default=None, description="annotation tables (default <archive>/annotations)")
    where: str | None = Field(
        default=None, description="extra SQL condition over the `annotated` view, e.g. \"year >= 2020 AND journal ILIKE '%radiol%'\" "
        "(raw DuckDB SQL for the local command line; run sandboxed, never taken from a server request)"
    )
    keys: Path | None = Field(
        default=None, description="a key manifest (select's manifest.parquet, a search export, or JSON Lines of "
        "{shard, key}): keep only these keys; keys the archive lacks are counted and reported"
    )
    license_groups: list[Literal["commercial", "noncommercial", "other"]] = Field(default_factory=list)
    min_year: int | None = None
    max_year: int | None = None
    journals: list[str] = Field(default_factory=list, description="exact journal titles to keep")
    canonical_only: bool = Field(default=False, description="keep one sample per duplicate group (needs dedup)")
    exclude_leaks: bool = Field(default=True, description="drop samples matching the eval set (when dedup has leaks)")
    exclude_held_out: bool = Field(
        default=True, description="leave out the articles the eval held-out retrieval split holds out (archive.split "
        "defaults); False (--include-held-out) keeps them: held_out_fraction counts as 0",
    )
    held_out_fraction: float = Field(
        default=DEFAULT_HELD_OUT_FRACTION, ge=0, le=1,
        description="the share of articles evaluation holds out (archive.split, eval's default); 0 keeps them",
    )
    held_out_salt: str = Field(default=DEFAULT_SPLIT_SALT, min_length=1, description="salt of the held-out split")
    drop_flags: list[str] = Field(default_factory=list, description="quality flags to drop, or ['any'] for every flag")
    panel_types: list[Literal["single", "multiple"]] = Field(default_factory=list)
    strategy: Literal["all", "concept-filtered", "concept-balanced"] = "all"
    concept_level: Literal["global", "local"] = "global"
    concept_source: Literal["auto", "labels", "zeroshot"] = Field(
        default="auto", description="expert cluster labels, zero-shot labels, or labels first then zero-shot"
    )
    include_concepts: list[str] = Field(default_factory=list, description="keep only these concept ids")
    exclude_concepts: list[str] = Field(default_factory=list, description="concept-filtered: drop these concept ids")
    cap_per_concept: int | None = Field(default=None, ge=1, description="concept-balanced: at most this many per concept")
    min_concept_score: float | None = Field(default=None, ge=0, le=1, description="zero-shot labels below this score count as unlabelled")
    seed: int = Field(default=0, description="which samples a cap keeps (deterministic for a seed)")
    limit: int | None = Field(default=None, ge=1)
    output: Literal["manifest", "shards"] = "manifest"
    unit: Literal["figure", "subfigure"] = Field(
        default="figure", description="figure: one sample per figure; subfigure: one per panel of each selected figure "
        "(annotations/subfigures.parquet), written as crops (needs output shards)"
    )
    samples_per_shard: int = Field(default=5000, ge=1)
    image_size: int | None = Field(
        default=None, description="write training-ready copies resized to this many pixels (images.training; "
        "needs output shards); None: the stored bytes, copied"
    )
    image_format: Literal["jpeg", "webp"] = Field(default="jpeg", description="encoding of the training-ready copies")
    quality: int = Field(
        default=85, ge=1, le=100,  # images.training.DEFAULT_QUALITY (measured there; a test keeps them equal)
        description="encoder quality of the training-ready copies",
    )
    resize_mode: Literal["shorter-side", "longer-side", "center-crop"] = Field(
        default="shorter-side", description="which side image_size sets (center-crop: shorter side, then a square)"
    )
    workers: int = Field(default_factory=_default_workers, ge=1, description="processes writing shards in parallel")
    executor: Literal["local", "ray"] = Field(
        default="local", description="where shards are written: local processes or Ray tasks (exec.run_units); same bytes")
    memory: str = Field(
        default="2GB", description="DuckDB's memory budget for the selection query (e.g. '2GB', '512MB'); sorts "
        "beyond it spill to a folder in --out, so a selection of any size streams to manifest.parquet within it",
    )
    overwrite: bool = False

    @field_validator("memory")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        return checked_size(value)

    @property
    def held_out(self) -> HeldOutSplit:
        """The split this selection leaves out (fraction 0 with --include-held-out)."""
        return HeldOutSplit(self.held_out_fraction if self.exclude_held_out else 0.0, self.held_out_salt)

    @property
    def image_spec(self) -> TrainingImageSpec | None:
        """The training-image settings (None: shards copy the stored bytes)."""
        if self.image_size is None:
            return None
        from biomedica.images.training import TrainingImageSpec

        return TrainingImageSpec(size=self.image_size, mode=self.resize_mode, format=self.image_format,
                                 quality=self.quality)

    @model_validator(mode="after")
    def _strategy_needs(self) -> SelectConfig:
        if self.strategy == "concept-balanced" and self.cap_per_concept is None:
            raise ValueError("strategy concept-balanced needs cap_per_concept (e.g. --cap-per-concept 10000)")
        if self.strategy == "concept-filtered" and not self.exclude_concepts and not self.include_concepts:
            raise ValueError("strategy concept-filtered needs exclude_concepts or include_concepts")
        if self.unit == "subfigure" and self.output == "manifest":
            # a manifest names (tar, key) members of the archive; panel crops are in no archive tar, so
            # a manifest of them would stream nothing: crops are written as new shards instead
            raise ValueError("unit subfigure writes panel crops, which no archive shard holds, so it cannot be a "
                             "manifest; add --output shards")
        if self.image_size is not None and self.output != "shards":
            raise ValueError("--image-size writes new shards; add --output shards")
        if self.image_size is None:
            # a value differing from its default (a dumped config passes the defaults back: not an error)
            given = [flag for name, flag in _IMAGE_OPTIONS.items()
                     if getattr(self, name) != type(self).model_fields[name].default]
            if given:
                raise ValueError(f"{' and '.join(given)} only apply to training-ready copies; add --image-size "
                                 "(e.g. --image-size 288) or drop them")
        else:
            self.image_spec  # noqa: B018 - TrainingImageSpec validates size/quality with a one-line fix
        if not self.exclude_held_out and self.held_out_fraction not in (0, DEFAULT_HELD_OUT_FRACTION):
            raise ValueError("--include-held-out keeps every article, so --held-out-fraction has no effect; "
                             "drop one of them")
        if self.min_year is not None and self.max_year is not None and self.min_year > self.max_year:
            raise ValueError(f"min_year {self.min_year} is after max_year {self.max_year}")
        return self
