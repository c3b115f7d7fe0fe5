"""The sha256 of a file, read in 1 MiB blocks (weights, shards, annotation tables): one way for every stage."""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file at `path` (bounded memory: 1 MiB at a time)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
