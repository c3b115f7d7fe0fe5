"""What `biomedica serve` serves and how: one typed config the cli builds and the app reads."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_PORT = 8000
DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024  # an image query: a figure-sized PNG/JPEG, never a data set


class ServeConfig(BaseModel):
    """The archive, its index, the address and the search settings of one search server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    archive: Path
    index: Path | None = Field(default=None, description="index folder (default: ARCHIVE/index)")
    annotations: Path | None = Field(default=None, description="annotations folder (default: ARCHIVE/annotations)")
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names accepted in the Host header besides 127.0.0.1, localhost, [::1] and --host",
    )
    rrf_k: int = Field(default=60, ge=1, le=10_000, description="reciprocal rank fusion constant: 1/(k + rank)")
    max_limit: int = Field(default=100, ge=1, le=1000, description="largest page (`limit`) one request may ask for")
    max_offset: int = Field(default=10_000, ge=0, description="deepest result (`offset`) one request may page to")
    max_export: int = Field(default=1_000_000, ge=1, description="most keys one export may hold")
    max_upload_bytes: int = Field(default=DEFAULT_MAX_UPLOAD, ge=1024, description="image query upload cap")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="JSON body cap (an export's key list)")
    embedding: str | None = Field(default=None, description="embedding name to search (default: the index's first)")
    model: str | None = Field(
        default=None, description="query model spec (default: the one the embeddings' meta.json records)"
    )
    device: str = Field(default="cpu", description="device of the query model (cpu, cuda, auto)")

    def index_dir(self) -> Path:
        return self.index or Path(self.archive) / "index"

    def annotations_dir(self) -> Path:
        return self.annotations or Path(self.archive) / "annotations"
