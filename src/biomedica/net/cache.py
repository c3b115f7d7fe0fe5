"""On-disk content cache: fetched bytes keyed by URL + version (md5 or etag), written atomically.

An entry exists only when the object's version is known (the `?md5=` of a PMC Cloud URL, or
the etag from a listing), so a cached answer is never stale: a new version has a new key.
Entries are published with write-to-temporary + rename, so a run killed mid-write leaves
no half file, and a re-run after a crash downloads nothing it already has.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from biomedica.io.atomic import write_bytes_atomic


def cache_key(url: str, version: str) -> str:
    """Stable key of one object version: sha256 over the URL (no query) and its md5/etag."""
    return hashlib.sha256(f"{url.split('?', 1)[0]}\0{version.strip(chr(34)).lower()}".encode()).hexdigest()


class ContentCache:
    """Files under `root/<2 hex>/<key>`; safe for many threads and processes at once."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        write_bytes_atomic(self.path(key), data)

    def discard(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()
