"""Typed configuration of an ingest run (what the CLI and the library both build)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class IngestConfig(BaseModel):
    """Everything that decides what an ingest run reads and writes.

    Fields that change the archive's content (source, articles_per_unit, image options) are
    recorded in manifest.json; a re-run into the same archive must use the same values, or
    unit boundaries would move (the run refuses and says so).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["dir"] = "dir"
    input: Path = Field(description="folder of JATS XML files and images (any layout)")
    output: Path = Field(description="archive root to create or resume")
    workers: int = Field(default=1, ge=1, description="worker processes of the local pool")
    executor: str = Field(default="local", description="where units run: local (process pool)")
    articles_per_unit: int = Field(
        default=500, ge=1, description="input files per work unit; one unit = one shard per license group"
    )
    lossy_images: bool = Field(default=False, description="convert non-JPEG/PNG images to JPEG instead of PNG")
    jpeg_quality: int = Field(default=95, ge=1, le=100)
    max_image_pixels: int = Field(default=178_956_970, ge=1, description="refuse larger images (decompression bombs)")
    limit: int | None = Field(default=None, ge=1, description="ingest only the first N input files (a sample)")
    progress: bool = True

    def archive_settings(self) -> dict:
        """The settings that must stay equal between a run and its resume."""
        return {
            "source": self.source,
            "articles_per_unit": self.articles_per_unit,
            "lossy_images": self.lossy_images,
            "jpeg_quality": self.jpeg_quality,
            "max_image_pixels": self.max_image_pixels,
        }
