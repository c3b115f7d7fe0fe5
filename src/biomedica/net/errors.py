"""Errors of the network client: every failure is an OSError, so readers' callers record it."""

from __future__ import annotations


class FetchError(OSError):
    """A GET or LIST that failed for good (after the retries its kind allows)."""

    def __init__(self, url: str, message: str, attempts: int = 1):
        super().__init__(f"{url}: {message}")
        self.url = url
        self.attempts = attempts


class NotFoundError(FetchError):
    """The object does not exist (HTTP 404 / S3 NoSuchKey); never retried."""


class AccessDeniedError(FetchError):
    """The server refused the request (401/403); retrying will not help."""


class ChecksumMismatch(FetchError):
    """The bytes received do not have the md5 the URL promised (retried, then raised)."""


class TransientError(FetchError):
    """A failure worth retrying: 5xx, 429, throttling, connection reset, timeout."""
