"""Typed configuration of `biomedica enrich` (where to ask, how fast, where to cache)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from biomedica.net.retry import RetryPolicy

EUTILS_BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
EUTILS_URL_ENV = "BIOMEDICA_EUTILS_URL"  # a mirror, a proxy, or a local server in tests
# NCBI's published limits: 3 requests/s per IP without an API key, 10/s with one
RATE_WITHOUT_KEY = 3.0
RATE_WITH_KEY = 10.0
MAX_EFETCH_BATCH = 200


def _api_key_from_env() -> str | None:
    return os.environ.get("NCBI_API_KEY") or None


def _base_url_from_env() -> str:
    return os.environ.get(EUTILS_URL_ENV) or EUTILS_BASE_URL


class EnrichConfig(BaseModel):
    """What `enrich_archive` reads, asks NCBI E-utilities, and writes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    archive: Path = Field(description="archive root built by `biomedica ingest`")
    api_key: str | None = Field(
        default_factory=_api_key_from_env, description="NCBI API key (default: $NCBI_API_KEY); raises the rate to 10/s"
    )
    email: str | None = Field(default=None, description="contact address NCBI asks heavy users to send")
    tool: str = Field(default="biomedica", description="the `tool` parameter NCBI uses to identify the client")
    base_url: str = Field(
        default_factory=_base_url_from_env, description=f"E-utilities base URL (default ${EUTILS_URL_ENV}, else NCBI's)"
    )
    batch_size: int = Field(default=MAX_EFETCH_BATCH, ge=1, le=MAX_EFETCH_BATCH, description="PMIDs per efetch")
    requests_per_second: float | None = Field(
        default=None, gt=0, description="request rate; default 3/s without an API key, 10/s with one"
    )
    cache_dir: Path | None = Field(
        default=None, description="per-PMID cache of PubMed records (default ARCHIVE/enrichment/_cache)"
    )
    rows_per_part: int = Field(default=50_000, ge=1, description="rows per enrichment/part-*.parquet file")
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=120.0, gt=0, description="efetch of 200 records can take a while")
    retry: RetryPolicy = Field(default_factory=lambda: RetryPolicy(retries=5, base_delay=1.0, max_delay=60.0))
    progress: bool = True

    @property
    def rate(self) -> float:
        """The request rate in force: the explicit one, else NCBI's limit for keyed/unkeyed use."""
        if self.requests_per_second is not None:
            return self.requests_per_second
        return RATE_WITH_KEY if self.api_key else RATE_WITHOUT_KEY

    @property
    def cache_root(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else self.archive / "enrichment" / "_cache"
