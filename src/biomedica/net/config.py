"""Typed configuration of the network client (timeouts, retries, rate, concurrency, cache)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from biomedica.net.retry import RetryPolicy


class NetConfig(BaseModel):
    """How every network reader talks to servers; the defaults suit the public PMC bucket."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_url: str | None = Field(
        default=None, description="S3 endpoint (None = AWS); e.g. http://127.0.0.1:5000 for a local server"
    )
    region: str = Field(default="us-east-1", description="AWS region of the bucket (pmc-oa-opendata: us-east-1)")
    anonymous: bool = Field(default=True, description="unsigned S3 requests (public buckets need no credentials)")
    connect_timeout: float = Field(default=10.0, gt=0, description="seconds to open a connection")
    read_timeout: float = Field(default=60.0, gt=0, description="seconds without data before a read fails")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="retries after the first attempt, backoff")
    requests_per_second: float | None = Field(
        default=None, gt=0, description="request rate limit per process (None = unlimited)"
    )
    burst: float | None = Field(default=None, ge=1, description="requests allowed at once above the rate")
    max_concurrency: int = Field(default=16, ge=1, le=1024, description="requests in flight per process")
    verify_etag: bool = Field(
        default=True,
        description="check S3 bodies against a single-part etag (the md5 of the body); turn off for S3-compatible "
        "servers whose etags are not md5 digests",
    )
    cache_dir: Path | None = Field(
        default=None, description="on-disk cache of fetched objects (None = no cache); safe to share between runs"
    )
    user_agent: str = "biomedica (+https://github.com/biomedica)"
