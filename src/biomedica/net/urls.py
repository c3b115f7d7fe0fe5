"""Object URLs: tell S3 objects (s3://, *.s3.amazonaws.com) from plain HTTP, read `?md5=`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
# virtual-hosted (bucket.s3.amazonaws.com, bucket.s3.us-east-1.amazonaws.com) and path style
_VIRTUAL_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.\-]*)\.s3(?:[.\-][a-z0-9\-]+)?\.amazonaws\.com$")
_PATH_HOST = re.compile(r"^s3(?:[.\-][a-z0-9\-]+)?\.amazonaws\.com$")


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object; `md5` is the expected hex digest when the URL carried one."""

    bucket: str
    key: str
    md5: str | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def md5_from_url(url: str) -> str | None:
    """The `md5=` query value of a URL, lower-cased; None when absent. A malformed one raises."""
    query = urlsplit(url).query
    if not query:
        return None
    values = parse_qs(query).get("md5")
    if not values:
        return None
    digest = values[0].strip().lower()
    if not _MD5_HEX.match(digest):
        raise ValueError(f"{url}: md5={values[0]!r} is not a 32-digit hex md5; fix the metadata that holds this URL")
    return digest


def parse_object_url(url: str) -> ObjectRef | None:
    """An ObjectRef for s3:// and AWS S3 https URLs, None for any other URL (plain HTTP GET)."""
    parts = urlsplit(url)
    md5 = md5_from_url(url)
    if parts.scheme == "s3":
        key = unquote(parts.path.lstrip("/"))
        if not parts.netloc or not key:
            raise ValueError(f"{url}: an s3 URL needs a bucket and a key, e.g. s3://pmc-oa-opendata/PMC123.1/PMC123.1.xml")
        return ObjectRef(parts.netloc, key, md5)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url}: unsupported URL scheme {parts.scheme!r}; use s3://, https:// or http://")
    host = (parts.hostname or "").lower()
    match = _VIRTUAL_HOST.match(host)
    if match:
        return ObjectRef(match["bucket"], unquote(parts.path.lstrip("/")), md5)
    if _PATH_HOST.match(host):
        bucket, _, key = parts.path.lstrip("/").partition("/")
        if bucket and key:
            return ObjectRef(bucket, unquote(key), md5)
    return None


def strip_query(url: str) -> str:
    """The URL without its query string (cache keys and log lines)."""
    return url.split("?", 1)[0]
