"""Errors of the network layer, one hierarchy for the client and the streaming reader.

Every failure is an OSError, so readers' callers record it. Standard library only (the
`pipe:` shard helper imports it); the translation of botocore errors imports botocore
only when there is one to translate.
"""

from __future__ import annotations


class FetchError(OSError):
    """A GET or LIST that failed for good (after the retries its kind allows)."""

    def __init__(self, url: str, message: str, attempts: int = 1):
        super().__init__(f"{url}: {message}")
        self.url = url
        self.reason = message
        self.attempts = attempts


class NotFoundError(FetchError):
    """The object does not exist (HTTP 404/410, S3 NoSuchKey, no such file); never retried."""


class AccessDeniedError(FetchError):
    """The server refused the request (401/403); retrying will not help."""


class ChecksumMismatch(FetchError):
    """The bytes received do not have the md5 the URL promised (retried, then raised)."""


class TransientError(FetchError):
    """A failure worth retrying: 5xx, 429, 408, throttling, connection reset, timeout, short read."""


class ContentError(FetchError):
    """The bytes arrived intact by every check but cannot be what the object is (not JSON, fields missing).

    Retried like a checksum mismatch: a body damaged in a way no checksum covers (an object
    without etag or md5) looks exactly like this, and a wrong parse must never pass as data.
    """


# The fixes named when a read failed on every attempt (the object itself may be fine).
DAMAGED_FIX = "the body was damaged on every attempt: rerun later, or check the endpoint and any proxy between"
UNUSABLE_FIX = "the object read back unusable on every attempt: rerun later; if it persists, it is wrong at the source"
UNAVAILABLE_FIX = "the server failed on every attempt: rerun later, or allow more retries"


_RETRYABLE_S3_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
     "InternalError", "ServiceUnavailable", "503", "500", "502", "504"}
)


def error_for_status(url: str, status: int, reason: str = "", denied_hint: str | None = None) -> FetchError | None:
    """The error an HTTP status means (None for 2xx); `denied_hint` replaces the generic 401/403 advice."""
    if 200 <= status < 300:
        return None
    message = f"HTTP {status} {reason}".strip()
    if status in (404, 410):
        return NotFoundError(url, f"{message}: the object does not exist (check the id/URL, or the listing is stale)")
    if status in (401, 403):
        return AccessDeniedError(url, f"{message}: access refused; {denied_hint or 'is the bucket/URL public? check the endpoint'}")
    if status in (408, 429) or status >= 500:
        return TransientError(url, message)
    return FetchError(url, message)


def s3_error(url: str, exc: BaseException) -> FetchError | None:
    """Our error kind for a botocore (or socket) exception raised by an S3 call; None when it is not one."""
    if isinstance(exc, FetchError):
        return None
    from botocore import exceptions as bx
    from botocore.parsers import ResponseParserError

    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound") or status == 404:
            return NotFoundError(url, f"{code or 404}: the object does not exist (check the id, bucket and endpoint)")
        if code in _RETRYABLE_S3_CODES or status >= 500 or status == 429:
            return TransientError(url, f"{code} (HTTP {status}): {error.get('Message', '')}".strip())
        if status in (401, 403) or code == "AccessDenied":
            return AccessDeniedError(url, f"{code}: access refused (public bucket? use anonymous access)")
        return FetchError(url, f"{code} (HTTP {status}): {error.get('Message', '')}")
    if isinstance(exc, bx.FlexibleChecksumError):  # x-amz-checksum-* disagrees with the body received
        return ChecksumMismatch(url, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ResponseParserError):  # its text quotes the response body: never shown
        return TransientError(url, "ResponseParserError: the server's response was garbled (not the XML S3 sends)")
    if isinstance(exc, (bx.HTTPClientError, bx.ConnectionError, bx.IncompleteReadError)):
        # HTTPClientError covers ReadTimeoutError and ResponseStreamingError (a body cut or stalled
        # mid-read); IncompleteReadError is a body shorter than its Content-Length
        return TransientError(url, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, bx.NoCredentialsError):
        return AccessDeniedError(url, "no AWS credentials; set anonymous access for public buckets")
    if isinstance(exc, OSError):
        return TransientError(url, f"{type(exc).__name__}: {exc}")
    import http.client

    from urllib3.exceptions import HTTPError as Urllib3Error

    if isinstance(exc, (http.client.HTTPException, Urllib3Error)):  # a short read botocore did not wrap
        return TransientError(url, f"{type(exc).__name__}: {exc}")
    return None
