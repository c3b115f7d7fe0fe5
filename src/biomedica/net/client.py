"""The one network client every reader uses: HTTP(S) GET and S3 GET/LIST, done carefully.

Every request goes through the same loop: take a token from the rate limiter, send with
connect/read timeouts, verify the md5 the URL promised, and on a transient failure (5xx,
429/throttling, reset, timeout, checksum mismatch) wait with exponential backoff and
jitter and try again. A 404 or 403 is final at once. Successful reads of objects whose
version is known (md5 or etag) go to the on-disk cache, so a re-run downloads nothing twice.

The client pickles to its configuration only (a spawn worker gets a copy), and builds its
boto3 client, HTTP connection pool and thread pool lazily in each process.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, TypeVar

from biomedica.io.locations import md5_from_url, parse_object_url, strip_query
from biomedica.net.cache import ContentCache, cache_key
from biomedica.net.config import NetConfig
from biomedica.net.errors import ChecksumMismatch, FetchError, TransientError, error_for_status, s3_error
from biomedica.net.ratelimit import RateLimiter, TokenBucket, Unlimited

T = TypeVar("T")
R = TypeVar("R")


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
        ref = parse_object_url(url)
        md5 = (md5 or (ref.md5 if ref else md5_from_url(url)) or None)
        if ref is not None:
            return self.get_object(ref.bucket, ref.key, md5=md5, etag=etag)
        return self._cached(url, md5, etag, lambda: self._http_get(url))

    def get_object(self, bucket: str, key: str, md5: str | None = None, etag: str | None = None) -> bytes:
        """One S3 object's bytes (GET through the configured endpoint), verified and cached."""
        url = f"s3://{bucket}/{key}"
        return self._cached(url, md5, etag, lambda: self._s3_get(bucket, key))

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
    def _cached(self, url: str, md5: str | None, etag: str | None, fetch: Callable[[], bytes]) -> bytes:
        version = md5 or (etag.strip('"') if etag else None)
        key = cache_key(url, version) if (self.cache is not None and version) else None
        if key is not None:
            data = self.cache.get(key)
            if data is not None and (md5 is None or hashlib.md5(data).hexdigest() == md5):
                self.stats.add(cache_hits=1)
                return data
            if data is not None:  # a damaged cache entry: drop it and fetch again
                self.cache.discard(key)
        data = self._with_retries(url, fetch, md5)
        if key is not None:
            self.cache.put(key, data)
        return data

    def _with_retries(self, url: str, attempt: Callable[[], T], md5: str | None = None) -> T:
        policy = self.config.retry
        last: FetchError | None = None
        mismatch: ChecksumMismatch | None = None  # reported first: it says the object is damaged
        for n in range(policy.attempts):
            if n:
                self.stats.add(retries=1)
                time.sleep(policy.delay(n - 1))
            self.rate_limiter.acquire()
            self.stats.add(requests=1)
            try:
                result = attempt()
                if md5 is not None:
                    got = hashlib.md5(result).hexdigest()  # type: ignore[arg-type]
                    if got != md5:
                        raise ChecksumMismatch(url, f"md5 of the {len(result)} bytes received is {got}, the URL says {md5}")  # type: ignore[arg-type]
                if isinstance(result, (bytes, bytearray)):
                    self.stats.add(bytes=len(result))
                return result
            except ChecksumMismatch as exc:
                last = mismatch = exc
            except TransientError as exc:
                last = exc
            except FetchError:
                self.stats.add(failures=1)
                raise
        self.stats.add(failures=1)
        last = mismatch or last
        assert last is not None
        raise type(last)(
            url, f"{last.reason} (gave up after {policy.attempts} attempts)", attempts=policy.attempts
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

    def _s3_get(self, bucket: str, key: str) -> bytes:
        url = f"s3://{bucket}/{key}"
        with _s3_errors(url):
            response = self._s3().get_object(Bucket=bucket, Key=key)
            return response["Body"].read()

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
