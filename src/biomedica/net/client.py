"""The one network client every reader uses: HTTP(S) GET and S3 GET/LIST, done carefully.

Every request goes through the same loop: take a token from the rate limiter, send with
connect/read timeouts, verify the body (the md5 the URL promised, the server's
`x-amz-checksum-*` through botocore, a single-part etag, and a caller's parse), and on a
transient failure (5xx, 429/throttling, reset, timeout, short or damaged body) wait with
exponential backoff and jitter and try again. A 404 or 403 is final at once. Successful reads of objects whose
version is known (md5 or etag) go to the on-disk cache, so a re-run downloads nothing twice.

The client pickles to its configuration only (a spawn worker gets a copy), and builds its
boto3 client, HTTP connection pool and thread pool lazily in each process.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, TypeVar

from biomedica.io.locations import md5_from_url, parse_object_url, strip_query
from biomedica.net.cache import ContentCache, cache_key
from biomedica.net.config import NetConfig
from biomedica.net.errors import (
    DAMAGED_FIX,
    UNAVAILABLE_FIX,
    UNUSABLE_FIX,
    ChecksumMismatch,
    ContentError,
    FetchError,
    TransientError,
    error_for_status,
    s3_error,
)
from biomedica.net.ratelimit import RateLimiter, TokenBucket, Unlimited

T = TypeVar("T")
R = TypeVar("R")
_MD5 = re.compile(r"^[0-9a-f]{32}$")  # a single-part etag; a multipart one ends in -<parts>


@dataclass(frozen=True)
class ObjectInfo:
    """One row of an S3 listing."""

    key: str
    size: int
    etag: str  # without quotes
    last_modified: str  # ISO 8601, UTC


@dataclass
class NetStats:
    """Counters of one client in one process (thread-safe increments)."""

    requests: int = 0  # attempts sent, retries included
    retries: int = 0
    bytes: int = 0  # bytes received from the network (cache hits excluded)
    cache_hits: int = 0
    failures: int = 0  # requests that failed for good
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {name: getattr(self, name) for name in ("requests", "retries", "bytes", "cache_hits", "failures")}


class NetClient:
    """GET bytes by URL (s3://, https://, http://), list S3 prefixes, run fetches concurrently."""

    def __init__(self, config: NetConfig | None = None, rate_limiter: RateLimiter | None = None):
        self.config = config or NetConfig()
        if rate_limiter is None:
            rate = self.config.requests_per_second
            rate_limiter = TokenBucket(rate, self.config.burst) if rate else Unlimited()
        self.rate_limiter = rate_limiter
        self.cache = ContentCache(self.config.cache_dir) if self.config.cache_dir else None
        self.stats = NetStats()
        self._lock = threading.Lock()
        self._s3_client: Any = None
        self._http_pool: Any = None
        self._threads: ThreadPoolExecutor | None = None

    # -- pickling: configuration travels, connections are rebuilt in the new process --------
    def __getstate__(self) -> dict:
        return {"config": self.config, "rate_limiter": self.rate_limiter}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["config"], state["rate_limiter"])

    # -- public API ---------------------------------------------------------------------------
    def get(self, url: str, md5: str | None = None, etag: str | None = None) -> bytes:
        """The bytes at `url`, md5-verified when the URL (or `md5`) names one, cached when versioned."""
        return self.load(url, None, md5=md5, etag=etag)

    def get_object(self, bucket: str, key: str, md5: str | None = None, etag: str | None = None) -> bytes:
        """One S3 object's bytes (GET through the configured endpoint), verified and cached.

        `etag` is the object's etag from a listing: the cache version, and (single part) its expected md5.
        """
        return self.load_object(bucket, key, None, md5=md5, etag=etag)

    def load(self, url: str, parse: Callable[[bytes], T] | None, md5: str | None = None, etag: str | None = None) -> T:
        """`parse(bytes at url)`; a body that `parse` rejects (ValueError, KeyError, ...) is retried like a bad md5.

        Only a body that passed every check and `parse` reaches the cache, and a cached body is
        checked the same way before use (a failing entry is dropped and fetched again).
        """
        ref = parse_object_url(url)
        md5 = (md5 or (ref.md5 if ref else md5_from_url(url)) or None)
        if ref is not None:
            return self.load_object(ref.bucket, ref.key, parse, md5=md5, etag=etag)
        return self._cached(url, md5, etag, lambda: (self._http_get(url), None), parse)

    def load_object(
        self, bucket: str, key: str, parse: Callable[[bytes], T] | None, md5: str | None = None, etag: str | None = None
    ) -> T:
        """`parse(bytes of the object)`, with the checks, retries and cache of `load`."""
        url = f"s3://{bucket}/{key}"
        return self._cached(url, md5, etag, lambda: self._s3_get(bucket, key), parse)

    def list_objects(self, bucket: str, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Every object under `prefix`, in key order (one ListObjectsV2 page at a time, retried)."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            elif start_after:
                kwargs["StartAfter"] = start_after
            page = self._with_retries(f"s3://{bucket}/{prefix}", lambda: self._s3_call("list_objects_v2", **kwargs))
            for item in page.get("Contents", ()):
                yield ObjectInfo(
                    key=item["Key"],
                    size=int(item.get("Size", 0)),
                    etag=str(item.get("ETag", "")).strip('"'),
                    last_modified=item["LastModified"].isoformat() if "LastModified" in item else "",
                )
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def list_prefixes(self, bucket: str, prefix: str = "", delimiter: str = "/") -> list[str]:
        """The "folders" directly under `prefix` (CommonPrefixes), sorted."""
        found: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": delimiter}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._with_retries(f"s3://{bucket}/{prefix}", lambda: self._s3_call("list_objects_v2", **kwargs))
            found += [p["Prefix"] for p in page.get("CommonPrefixes", ())]
            if not page.get("IsTruncated"):
                return sorted(found)
            token = page.get("NextContinuationToken")

    def submit(self, fn: Callable[..., R], *args: Any) -> Future[R]:
        """Run `fn(*args)` on the client's bounded thread pool (max_concurrency threads)."""
        return self._pool().submit(fn, *args)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | BaseException]]:
        """`fn` over items with at most max_concurrency in flight; yields (item, result or error) in order."""
        window = self.config.max_concurrency * 2
        pending: list[tuple[T, Future]] = []
        for item in items:
            pending.append((item, self.submit(fn, item)))
            if len(pending) >= window:
                yield _settle(*pending.pop(0))
        while pending:
            yield _settle(*pending.pop(0))

    def get_many(self, urls: Iterable[str]) -> list[bytes | BaseException]:
        """Fetch many URLs concurrently; each entry is the bytes or the error of that URL."""
        return [result for _, result in self.map(self.get, urls)]

    def close(self) -> None:
        with self._lock:
            if self._threads is not None:
                self._threads.shutdown(wait=True, cancel_futures=True)
                self._threads = None
            if self._http_pool is not None:
                self._http_pool.clear()
                self._http_pool = None

    # -- the retry loop -----------------------------------------------------------------------
    def _cached(
        self,
        url: str,
        md5: str | None,
        etag: str | None,
        fetch: Callable[[], tuple[bytes, str | None]],
        parse: Callable[[bytes], Any] | None,
    ) -> Any:
        md5 = md5.lower() if md5 else None
        etag = etag.strip('"').lower() if etag else None
        version = md5 or etag
        key = cache_key(url, version) if (self.cache is not None and version) else None
        if key is not None:
            data = self.cache.get(key)
            if data is not None:
                try:
                    value = self._verify(url, data, md5, etag, parse)
                except (ChecksumMismatch, ContentError):  # a damaged cache entry: drop it and fetch again
                    self.cache.discard(key)
                else:
                    self.stats.add(cache_hits=1)
                    return value

        def attempt() -> tuple[bytes, Any, bool]:
            data, served = fetch()
            self.stats.add(bytes=len(data))
            # The S3 fetch checked the body against the etag the server sent with it; the listing's
            # etag is the reference only where the server sent none. An etag that differs from the
            # listing's means the object changed since it was listed: served, but not cached under
            # the listing's version.
            value = self._verify(url, data, md5, etag if served is None else None, parse)
            return data, value, served is None or etag is None or served == etag

        data, value, listed_version = self._with_retries(url, attempt)
        if key is not None and listed_version:
            self.cache.put(key, data)
        return value

    def _verify(
        self, url: str, data: bytes, md5: str | None, etag: str | None, parse: Callable[[bytes], Any] | None
    ) -> Any:
        """`data` (or parse(data)) when it has the md5 the URL promised and the md5 a single-part etag is."""
        if md5 is not None:
            got = hashlib.md5(data).hexdigest()
            if got != md5:
                raise ChecksumMismatch(url, f"md5 of the {len(data)} bytes received is {got}, the URL says {md5}")
        if etag is not None and self.config.verify_etag and _MD5.match(etag):
            # a multipart etag (`<md5 of the parts' md5s>-<parts>`) is no digest of the body: not compared
            got = hashlib.md5(data).hexdigest()
            if got != etag:
                raise ChecksumMismatch(url, f"md5 of the {len(data)} bytes received is {got}, the listing's etag says {etag}")
        if parse is None:
            return data
        try:
            return parse(data)
        except FetchError:
            raise
        except (ValueError, LookupError, TypeError, EOFError, OSError) as exc:
            raise ContentError(url, str(exc)) from exc

    def _with_retries(self, url: str, attempt: Callable[[], T]) -> T:
        policy = self.config.retry
        last: FetchError | None = None
        damaged: FetchError | None = None  # reported first: it says what arrived was damaged
        for n in range(policy.attempts):
            if n:
                self.stats.add(retries=1)
                time.sleep(policy.delay(n - 1))
            self.rate_limiter.acquire()
            self.stats.add(requests=1)
            try:
                return attempt()
            except (ChecksumMismatch, ContentError) as exc:
                last = damaged = exc
            except TransientError as exc:
                last = exc
            except FetchError:
                self.stats.add(failures=1)
                raise
        self.stats.add(failures=1)
        last = damaged or last
        assert last is not None
        fix = UNUSABLE_FIX if isinstance(damaged, ContentError) else DAMAGED_FIX if damaged is not None else UNAVAILABLE_FIX
        raise type(last)(
            url, f"{last.reason} (gave up after {policy.attempts} attempts; {fix})", attempts=policy.attempts
        ) from last

    # -- one attempt: S3 ------------------------------------------------------------------------
    def _s3(self) -> Any:
        with self._lock:
            if self._s3_client is None:
                import boto3
                from botocore import UNSIGNED
                from botocore.config import Config

                cfg = self.config
                options: dict[str, Any] = {
                    "connect_timeout": cfg.connect_timeout,
                    "read_timeout": cfg.read_timeout,
                    "retries": {"total_max_attempts": 1},  # our loop retries, with our policy
                    "max_pool_connections": cfg.max_concurrency,
                    "user_agent_extra": cfg.user_agent,
                }
                if cfg.anonymous:
                    options["signature_version"] = UNSIGNED
                if cfg.endpoint_url:  # local / private servers: no bucket-name DNS
                    options["s3"] = {"addressing_style": "path"}
                session = boto3.session.Session()
                self._s3_client = session.client(
                    "s3", endpoint_url=cfg.endpoint_url, region_name=cfg.region, config=Config(**options)
                )
            return self._s3_client

    def _s3_call(self, operation: str, **kwargs: Any) -> Any:
        url = f"s3://{kwargs.get('Bucket')}/{kwargs.get('Key', kwargs.get('Prefix', ''))}"
        with _s3_errors(url):
            return getattr(self._s3(), operation)(**kwargs)

    def _s3_get(self, bucket: str, key: str) -> tuple[bytes, str | None]:
        """The body and the etag the server sent with it, checked against that etag where it is an md5.

        botocore checks the `x-amz-checksum-*` the server sends (FlexibleChecksumError, mapped to
        ChecksumMismatch); the etag check covers objects stored without such a checksum.
        """
        url = f"s3://{bucket}/{key}"
        with _s3_errors(url):
            response = self._s3().get_object(Bucket=bucket, Key=key)
            data = response["Body"].read()
        served = str(response.get("ETag") or "").strip('"').lower() or None
        # SSE-KMS and SSE-C objects have etags that are no md5 of the body (AWS S3 docs, "Checking object integrity")
        encrypted = response.get("SSECustomerAlgorithm") or response.get("ServerSideEncryption") in ("aws:kms", "aws:kms:dsse")
        if served and self.config.verify_etag and _MD5.match(served) and not encrypted:
            got = hashlib.md5(data).hexdigest()
            if got != served:
                raise ChecksumMismatch(url, f"md5 of the {len(data)} bytes received is {got}, the server's etag says {served}")
        return data, served

    # -- one attempt: HTTP ----------------------------------------------------------------------
    def _http(self) -> Any:
        with self._lock:
            if self._http_pool is None:
                import urllib3

                self._http_pool = urllib3.PoolManager(
                    num_pools=16,
                    maxsize=self.config.max_concurrency,
                    timeout=urllib3.Timeout(connect=self.config.connect_timeout, read=self.config.read_timeout),
                    retries=False,
                    headers={"User-Agent": self.config.user_agent},
                )
            return self._http_pool

    def _http_get(self, url: str) -> bytes:
        import urllib3

        shown = strip_query(url)
        try:
            response = self._http().request("GET", url, preload_content=True, redirect=True)
        except urllib3.exceptions.HTTPError as exc:
            raise TransientError(shown, f"{type(exc).__name__}: {exc}") from exc
        error = error_for_status(shown, response.status, response.reason or "")
        if error is not None:
            raise error
        return response.data

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.config.max_concurrency, thread_name_prefix="biomedica-net")
            return self._threads


def _settle(item: T, future: Future) -> tuple[T, Any]:
    try:
        return item, future.result()
    except Exception as exc:  # handed to the caller as a value, per item
        return item, exc


@contextmanager
def _s3_errors(url: str) -> Iterator[None]:
    """Raise botocore exceptions as our FetchError kinds (retryable or final)."""
    try:
        yield
    except Exception as exc:
        error = s3_error(url, exc)
        if error is None:
            raise
        raise error from exc
