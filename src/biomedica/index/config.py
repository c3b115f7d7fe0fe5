"""Typed settings of `biomedica index`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from biomedica.archive.annotations import default_annotations_dir
from biomedica.search.layout import default_index_dir
from biomedica.search.vectors import DEFAULT_EXACT_MAX


class IndexConfig(BaseModel):
    """Which archive to index, where the index goes, which embeddings feed its vector indexes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    archive: Path
    index_dir: Path | None = Field(default=None, description="index folder (default <archive>/index)")
    annotations: Path | None = Field(default=None, description="annotation tables (default <archive>/annotations)")
    embeddings: list[str] = Field(
        default_factory=list, description="embedding folder names under annotations/embeddings/ (default: all)"
    )
    exact_max: int = Field(default=DEFAULT_EXACT_MAX, ge=1, description="exact vector search up to this many vectors, IVF above")
    nlist: int | None = Field(default=None, ge=1, description="IVF lists (default: about 4 * sqrt(n))")
    nprobe: int = Field(default=32, ge=1, description="IVF lists searched per query")

    def index_folder(self) -> Path:
        return Path(self.index_dir) if self.index_dir else default_index_dir(self.archive)

    def annotations_folder(self) -> Path:
        return Path(self.annotations) if self.annotations else default_annotations_dir(self.archive)
