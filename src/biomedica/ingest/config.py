"""Typed configuration of an ingest run (what the CLI and the library both build)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from biomedica.exec import check_executor
from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig
from biomedica.ingest.sources.safe_read import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_XML_BYTES
from biomedica.net import NetConfig


class IngestConfig(BaseModel):
    """Everything that decides what an ingest run reads and writes.

    Fields that change the archive's content (source, articles_per_unit, image options) are
    recorded in manifest.json; a re-run into the same archive must use the same values, or
    unit boundaries would move (the run refuses and says so).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["dir", "pmc-package", "pmc-cloud"] = "dir"
    input: str | None = Field(
        default=None,
        description="dir: folder of JATS XML + images; pmc-package: mirror folder or http(s) base URL; "
        "pmc-cloud: unused (see pmc_cloud)",
    )
    output: Path = Field(description="archive root to create or resume")
    file_list: str | None = Field(default=None, description="pmc-package: oa_file_list.csv/.txt path or URL")
    license_groups: tuple[str, ...] | None = Field(
        default=None, description="pmc-package: keep only these groups from the file list (before download)"
    )
    net: NetConfig = Field(default_factory=NetConfig, description="pmc-package: timeouts, retries, rate, cache")
    pmc_cloud: PmcCloudConfig | None = Field(default=None, description="pmc-cloud: bucket, selection, filters")
    workers: int = Field(default=1, ge=1, description="worker processes of the local pool")
    executor: str = Field(
        default="local", description="where units run: local (process pool), ray, array (one task of a job array)"
    )
    articles_per_unit: int = Field(
        default=500, ge=1, description="input files (an article of a Europe PMC bulk file counts as one) per work unit; "
        "one unit = one shard per license group"
    )
    lossy_images: bool = Field(default=False, description="convert non-JPEG/PNG images to JPEG instead of PNG")
    jpeg_quality: int = Field(default=95, ge=1, le=100)
    max_image_pixels: int = Field(default=178_956_970, ge=1, description="refuse larger images (decompression bombs)")
    max_xml_bytes: int = Field(
        default=DEFAULT_MAX_XML_BYTES, ge=1, description="dir, pmc-package: refuse (xml-too-large) a larger XML file"
    )
    max_image_bytes: int = Field(
        default=DEFAULT_MAX_IMAGE_BYTES, ge=1, description="dir, pmc-package: refuse (image-too-large) a larger image"
    )
    limit: int | None = Field(
        default=None, ge=1,
        description="ingest only the first N input files (a sample); documents beyond N are not counted as removed",
    )
    frozen: bool = Field(
        default=False,
        description="refuse (instead of appending new units) when the input differs from what the archive holds",
    )
    progress: bool = True

    @field_validator("input", mode="before")
    @classmethod
    def _path_to_str(cls, value):
        return str(value) if isinstance(value, Path) else value

    @field_validator("executor")
    @classmethod
    def _known_executor(cls, value: str) -> str:
        return check_executor(value)

    @model_validator(mode="after")
    def _input_for_source(self) -> "IngestConfig":
        if self.source in ("dir", "pmc-package") and not self.input:
            raise ValueError(f"source {self.source} needs an input folder or URL")
        return self

    def archive_settings(self) -> dict:
        """The settings that must stay equal between a run and its resume."""
        return {
            "source": self.source,
            "articles_per_unit": self.articles_per_unit,
            "lossy_images": self.lossy_images,
            "jpeg_quality": self.jpeg_quality,
            "max_image_pixels": self.max_image_pixels,
            "max_xml_bytes": self.max_xml_bytes,
            "max_image_bytes": self.max_image_bytes,
        }

    @classmethod
    def settings_defaults(cls) -> dict:
        """What an archive recorded before a setting existed was built with: today's default.

        (Such archives read files without a size limit; the defaults are far above real
        PMC files, so resuming one with them leaves its content unchanged.)
        """
        fields = cls.model_fields
        return {name: fields[name].default for name in ("max_xml_bytes", "max_image_bytes")}
