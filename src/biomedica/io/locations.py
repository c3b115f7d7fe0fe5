"""Locations: what kind of URL a string is, the S3 object or hub file behind it, and its `?md5=`.

The one place that parses URLs (standard library only: the `pipe:` shard helper imports it).
Supported forms, used by the network client, the streaming reader and source resolution:

| written as                                   | read with                                        |
|----------------------------------------------|--------------------------------------------------|
| `/data/archive/commercial/000000.tar`, `file://...` | the local file system                     |
| `https://host/path/000000.tar` (or http)     | HTTP GET, `Authorization` from an env var        |
| `hf://datasets/ORG/NAME[@REV]/path`          | `{HF_ENDPOINT}/datasets/ORG/NAME/resolve/REV/path`, token from `HF_TOKEN` |
| `s3://bucket/key`                            | anonymous: HTTPS GET on the bucket endpoint; with credentials: boto3 (or the aws CLI) |
| `https://bucket.s3[.region].amazonaws.com/key`, `https://s3.amazonaws.com/bucket/key` | the same S3 object (`parse_object_url`) |

Any of them may carry `?md5=<32 hex digits>`, the digest the bytes must have (PMC Cloud's
metadata writes it). Nothing here touches the network; `biomedica.net` does.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

DEFAULT_HF_ENDPOINT = "https://huggingface.co"
HF_TOKEN_ENV = "HF_TOKEN"
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
# AWS S3 hosts: virtual-hosted (bucket.s3.amazonaws.com, bucket.s3.us-east-1.amazonaws.com) and path style
_VIRTUAL_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.\-]*)\.s3(?:[.\-][a-z0-9\-]+)?\.amazonaws\.com$")
_PATH_HOST = re.compile(r"^s3(?:[.\-][a-z0-9\-]+)?\.amazonaws\.com$")


class UnsupportedUrl(ValueError):
    """A shard location this module cannot read; the message says which forms are supported."""


def url_scheme(url: str) -> str:
    """`file`, `http`, `https`, `hf` or `s3`; a bare path is `file`."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("", "file"):
        return "file"
    if len(scheme) == 1:  # a Windows drive letter, C:\...
        return "file"
    if scheme in ("http", "https", "hf", "s3"):
        return scheme
    raise UnsupportedUrl(
        f"{url!r}: unsupported URL scheme {scheme!r}; use a local path, file://, http(s)://, hf://datasets/... or s3://"
    )


def is_remote(url: str) -> bool:
    return url_scheme(url) != "file"


def local_path(url: str) -> str:
    """The file-system path of a local URL (`file:///x` -> `/x`)."""
    parts = urlsplit(url)
    return parts.path if parts.scheme.lower() == "file" else url


@dataclass(frozen=True)
class HfLocation:
    """A file in a Hugging Face dataset repository."""

    repo_id: str  # ORG/NAME
    revision: str
    path: str

    def resolve_url(self, endpoint: str | None = None) -> str:
        """The hub's download address: `{endpoint}/datasets/{repo}/resolve/{revision}/{path}`."""
        base = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT).rstrip("/")
        return f"{base}/datasets/{self.repo_id}/resolve/{quote(self.revision, safe='')}/{quote(self.path)}"


def parse_hf_url(url: str) -> HfLocation:
    """Split `hf://datasets/ORG/NAME[@REVISION]/path/in/repo` (huggingface_hub's HfFileSystem form)."""
    if not url.startswith("hf://"):
        raise UnsupportedUrl(f"{url!r} is not an hf:// URL")
    rest = url[len("hf://") :]
    if not rest.startswith("datasets/"):
        raise UnsupportedUrl(f"{url!r}: only dataset repositories are supported: hf://datasets/ORG/NAME/path")
    parts = rest[len("datasets/") :].split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise UnsupportedUrl(f"{url!r}: expected hf://datasets/ORG/NAME[@REVISION]/path")
    name, _, revision = parts[1].partition("@")
    revision = revision or "main"
    # a revision such as refs/convert/parquet may be written with %2F or with its slashes
    path = "/".join(parts[2:])
    return HfLocation(repo_id=f"{parts[0]}/{name}", revision=revision.replace("%2F", "/"), path=path)


@dataclass(frozen=True)
class S3Location:
    """One S3 object; `md5` is the expected hex digest when the URL carried one."""

    bucket: str
    key: str
    md5: str | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def https_url(self, endpoint: str | None = None) -> str:
        """Anonymous HTTPS address: path style on a custom endpoint, virtual-hosted on AWS."""
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            return f"{endpoint.rstrip('/')}/{self.bucket}/{quote(self.key)}"
        return f"https://{self.bucket}.s3.amazonaws.com/{quote(self.key)}"


ObjectRef = S3Location  # the network client's old name, kept for one release


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


def parse_s3_url(url: str) -> S3Location:
    """`s3://BUCKET/KEY[?md5=...]` (the key percent-decoded)."""
    parts = urlsplit(url)
    key = unquote(parts.path.lstrip("/"))
    if parts.scheme != "s3" or not parts.netloc or not key:
        raise UnsupportedUrl(
            f"{url}: an s3 URL needs a bucket and a key, e.g. s3://pmc-oa-opendata/PMC123.1/PMC123.1.xml"
        )
    return S3Location(parts.netloc, key, md5_from_url(url))


def parse_object_url(url: str) -> S3Location | None:
    """The S3 object of an s3:// or AWS S3 https URL; None for any other http(s) URL (a plain GET)."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        return parse_s3_url(url)
    if parts.scheme not in ("http", "https"):
        raise UnsupportedUrl(f"{url}: unsupported URL scheme {parts.scheme!r}; use s3://, https:// or http://")
    host = (parts.hostname or "").lower()
    match = _VIRTUAL_HOST.match(host)
    if match:
        return S3Location(match["bucket"], unquote(parts.path.lstrip("/")), md5_from_url(url))
    if _PATH_HOST.match(host):
        bucket, _, key = parts.path.lstrip("/").partition("/")
        if bucket and key:
            return S3Location(bucket, unquote(key), md5_from_url(url))
    return None


def strip_query(url: str) -> str:
    """The URL without its query string (cache keys and log lines)."""
    return url.split("?", 1)[0]


def sibling_url(url: str, name: str) -> str:
    """The URL of `name` in the same folder as `url` (works for paths and every scheme above)."""
    return join_url(parent_url(url), name)


def parent_url(url: str) -> str:
    """The folder of `url`, without a trailing slash."""
    if url_scheme(url) == "file" and not url.startswith("file:"):
        return os.path.dirname(url) or "."
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, posixpath.dirname(parts.path), "", ""))


def join_url(base: str, relative: str) -> str:
    """`relative` resolved against the folder URL `base`; an absolute URL or path is returned as is."""
    if url_scheme(relative) != "file" or relative.startswith(("/", "file:")):
        return relative
    if url_scheme(base) == "file" and not base.startswith("file:"):
        return os.path.normpath(os.path.join(base, relative))
    parts = urlsplit(base)
    path = posixpath.normpath(posixpath.join(parts.path or "/", relative))
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
