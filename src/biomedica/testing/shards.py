"""Small synthetic WebDataset shards shaped like the archive's, for tests and benchmarks."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from PIL import Image


def write_shards(folder: Path, prefix: str, shard_sizes: list[int], color: tuple[int, int, int], caption: str) -> list[Path]:
    """Tars of `KEY.png` (a solid `color` image), `KEY.txt`, `KEY.json` plus `sizes.json`, like the archive."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buffer, format="PNG")
    png = buffer.getvalue()
    paths, sizes = [], {}
    for index, size in enumerate(shard_sizes):
        path = folder / f"{index:06d}.tar"
        with tarfile.open(path, "w") as tar:
            for n in range(size):
                key = f"{prefix}{index:03d}_{n:03d}"
                for ext, data in (("png", png), ("txt", f"{caption} {n}".encode()), ("json", json.dumps({"key": key}).encode())):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        sizes[path.name] = size
        paths.append(path)
    (folder / "sizes.json").write_text(json.dumps(sizes), encoding="utf-8")
    return paths
