"""Shard locations: what kind of URL a string is, and the HTTP(S) address behind hf:// and s3://.

Supported forms (one table, used by the fetcher and by source resolution):

| written as                                   | read with                                        |
|----------------------------------------------|--------------------------------------------------|
| `/data/archive/commercial/000000.tar`, `file://...` | the local file system                     |
| `https://host/path/000000.tar` (or http)     | HTTP GET, `Authorization` from an env var        |
| `hf://datasets/ORG/NAME[@REV]/path`          | `{HF_ENDPOINT}/datasets/ORG/NAME/resolve/REV/path`, token from `HF_TOKEN` |
| `s3://bucket/key`                            | anonymous: HTTPS GET on the bucket endpoint; with credentials: boto3 (or the aws CLI) |

Nothing here touches the network; `biomedica.net.stream` does.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

DEFAULT_HF_ENDPOINT = "https://huggingface.co"
HF_TOKEN_ENV = "HF_TOKEN"


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
        f"{url!r}: unsupported scheme {scheme!r}; use a local path, file://, http(s)://, hf://datasets/... or s3://"
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
    bucket: str
    key: str

    def https_url(self, endpoint: str | None = None) -> str:
        """Anonymous HTTPS address: path style on a custom endpoint, virtual-hosted on AWS."""
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            return f"{endpoint.rstrip('/')}/{self.bucket}/{quote(self.key)}"
        return f"https://{self.bucket}.s3.amazonaws.com/{quote(self.key)}"


def parse_s3_url(url: str) -> S3Location:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
        raise UnsupportedUrl(f"{url!r}: expected s3://BUCKET/KEY")
    return S3Location(bucket=parts.netloc, key=parts.path.lstrip("/"))


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
