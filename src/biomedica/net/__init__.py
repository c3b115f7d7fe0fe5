"""The network layer: one client for HTTP(S) and S3 with retries, rate limit, cache, md5 checks.

Readers (PMC Cloud, legacy packages over HTTP, E-utilities) all fetch through `NetClient`,
so timeouts, backoff, the request budget and the crash-safe cache are decided once.
"""

from biomedica.net.cache import ContentCache, cache_key
from biomedica.net.client import NetClient, NetStats, ObjectInfo
from biomedica.net.config import NetConfig
from biomedica.net.errors import (
    AccessDeniedError,
    ChecksumMismatch,
    FetchError,
    NotFoundError,
    TransientError,
)
from biomedica.net.ratelimit import RateLimiter, TokenBucket, Unlimited
from biomedica.net.retry import RetryPolicy
from biomedica.net.urls import ObjectRef, md5_from_url, parse_object_url

__all__ = [
    "AccessDeniedError", "ChecksumMismatch", "ContentCache", "FetchError", "NetClient", "NetConfig", "NetStats",
    "NotFoundError", "ObjectInfo", "ObjectRef", "RateLimiter", "RetryPolicy", "TokenBucket", "TransientError",
    "Unlimited", "cache_key", "md5_from_url", "parse_object_url",
]
