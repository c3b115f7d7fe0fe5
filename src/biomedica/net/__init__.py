"""The network layer: the one stack for HTTP(S), S3 and hub reads, with retries, rate limit, cache, md5 checks.

Readers (PMC Cloud, legacy packages over HTTP, E-utilities) fetch through `NetClient`;
training streams shards through `biomedica.net.stream` (Range resume, key filters, the
`pipe:` helper). Both share one error hierarchy (`errors`), one `RetryPolicy` and the
URL rules of `biomedica.io.locations`, so timeouts, retries and backoff mean the same
everywhere.
"""

from typing import TYPE_CHECKING

from biomedica.lazy import lazy_exports

# Public names and the module that defines each. Imported on first use (PEP 562) so that
# `python -m biomedica.net.stream` (the pipe: helper, run once per shard) starts with the
# standard library only: no pydantic, boto3 or urllib3 come in with the package.
_EXPORTS = {
    "AccessDeniedError": "errors",
    "ChecksumMismatch": "errors",
    "ContentCache": "cache",
    "ContentError": "errors",
    "FetchError": "errors",
    "FetchOptions": "stream",
    "NetClient": "client",
    "NetConfig": "config",
    "NetStats": "client",
    "NotFoundError": "errors",
    "ObjectInfo": "client",
    "RateLimiter": "ratelimit",
    "RetryPolicy": "retry",
    "RetryingReader": "stream",
    "TokenBucket": "ratelimit",
    "TransientError": "errors",
    "Unlimited": "ratelimit",
    "cache_key": "cache",
    "host_of": "probe",
    "read_bytes": "stream",
    "unreachable": "probe",
}
# URL names the package exported before they moved to biomedica.io.locations
_EXPORTS.update({name: "biomedica.io.locations" for name in ("ObjectRef", "md5_from_url", "parse_object_url")})
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from biomedica.io.locations import ObjectRef, md5_from_url, parse_object_url
    from biomedica.net.cache import ContentCache, cache_key
    from biomedica.net.client import NetClient, NetStats, ObjectInfo
    from biomedica.net.config import NetConfig
    from biomedica.net.errors import (
        AccessDeniedError,
        ChecksumMismatch,
        ContentError,
        FetchError,
        NotFoundError,
        TransientError,
    )
    from biomedica.net.probe import host_of, unreachable
    from biomedica.net.ratelimit import RateLimiter, TokenBucket, Unlimited
    from biomedica.net.retry import RetryPolicy
    from biomedica.net.stream import FetchOptions, RetryingReader, read_bytes
