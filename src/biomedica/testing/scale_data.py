"""Synthetic data with the shape of PMC, without images: inventories, pHashes, shard index files.

Why: the scale rehearsal (benchmarks/scale.py) measures how planning, near-duplicate search and
select grow from 1x to 24x of a slice of PMC; none of them needs pixels, only the files and
columns those stages read. Everything is seeded, so two runs measure the same data.

- `inventory_rows`: S3-inventory rows (Bucket, Key, Size, LastModifiedDate, ETag) of a
  pmc-cloud bucket: per article version the XML, the metadata JSON, a PDF and one figure; one
  article in ten also has an older version.
- `publish_synthetic_inventory`: those rows as an inventory report (csv.gz + manifest.json)
  uploaded to an S3 server (the local moto server in benchmarks).
- `planted_hashes`: 64-bit pHashes, 5% of them near copies (3 flipped bits) of others.
- `write_index_archive`: an archive's unit markers and shard Parquet (records.SHARD_SCHEMA),
  no tars: what `select`'s query and the catalogues read.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROWS_PER_VERSION = 4  # xml, json, pdf, one figure
_GROUPS = ("commercial",) * 6 + ("noncommercial",) * 3 + ("other",)  # unit u -> _GROUPS[u % 10]
_JOURNALS = ("PLoS One", "Sci Rep", "Nat Commun", "BMC Cancer", "Front Immunol", "Cureus", "Radiology Case Rep")
_CAPTION_WORDS = ("cells", "tumour", "MRI", "axial", "scale", "bar", "panel", "expression", "mice", "patients",
                  "control", "significant", "western", "blot", "CT", "staining", "arrow", "shows", "the", "of")


def inventory_rows(n_rows: int, bucket: str = "pmc-oa-opendata", seed: int = 0) -> Iterator[tuple[str, ...]]:
    """About `n_rows` inventory rows (whole versions, ROWS_PER_VERSION each), keys URL-safe already."""
    rng = np.random.default_rng(seed)
    versions = max(1, n_rows // ROWS_PER_VERSION)
    etags = rng.integers(0, 2**63, size=(versions * ROWS_PER_VERSION, 2), dtype=np.int64)
    sizes = rng.integers(2_000, 2_000_000, size=versions * ROWS_PER_VERSION)
    article, made = 1_000_000, 0
    while made < versions:
        article += 1
        for version in ((1, 2) if article % 10 == 0 else (1,)):
            if made >= versions:
                break
            item = f"PMC{article}.{version}"
            for n, name in enumerate((f"{item}.xml", f"{item}.json", f"{item}.pdf", f"fig{version}.jpg")):
                row = made * ROWS_PER_VERSION + n
                etag = f"{int(etags[row, 0]):016x}{int(etags[row, 1]):016x}"
                yield (bucket, f"{item}/{name}", str(int(sizes[row])), "2026-08-01T00:00:00.000Z", etag)
            made += 1


def publish_synthetic_inventory(s3: Any, bucket: str, n_rows: int, rows_per_file: int = 1_000_000,
                                seed: int = 0) -> str:
    """Upload an inventory report of `n_rows` synthetic rows (not the bucket's real content); returns the manifest key."""
    from biomedica.testing.cloud_mirror import INVENTORY_SCHEMA

    root = f"inventory-reports/{bucket}/daily"
    files: list[dict] = []
    rows = inventory_rows(n_rows, bucket, seed)
    while True:
        text = io.StringIO()
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        count = 0
        for row in rows:
            writer.writerow(row)
            count += 1
            if count == rows_per_file:
                break
        if not count:
            break
        data = gzip.compress(text.getvalue().encode("utf-8"), compresslevel=1, mtime=0)
        key = f"{root}/data/20260801T0000-{len(files):04d}.csv.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        files.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
        if count < rows_per_file:
            break
    manifest = {"sourceBucket": bucket, "destinationBucket": f"arn:aws:s3:::{bucket}", "version": "2016-11-30",
                "creationTimestamp": str(int(datetime(2026, 8, 1, tzinfo=timezone.utc).timestamp() * 1000)),
                "fileFormat": "CSV", "fileSchema": ", ".join(INVENTORY_SCHEMA), "files": files}
    key = f"{root}/2026-08-01T00-00Z/manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode("utf-8"))
    return key


def planted_hashes(n: int, seed: int = 0, near_fraction: float = 0.05, flips: int = 3) -> np.ndarray:
    """`n` random uint64 pHashes; the last `near_fraction` are copies of the first ones with `flips` bits flipped."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64) | (rng.integers(0, 2, size=n, dtype=np.uint64) << np.uint64(63))
    planted = int(n * near_fraction)
    if planted:
        noise = np.zeros(planted, dtype=np.uint64)
        for bit in rng.integers(0, 64, size=(flips, planted)).astype(np.uint64):
            noise ^= np.uint64(1) << bit
        hashes[n - planted :] = hashes[:planted] ^ noise
    return hashes


def _captions(rng: np.random.Generator, count: int) -> list[str]:
    words = np.array(_CAPTION_WORDS)
    lengths = rng.integers(8, 120, size=count)  # PMC captions: a few words to a paragraph
    return [f"Figure {i % 9 + 1}. " + " ".join(rng.choice(words, size=n)) + "." for i, n in enumerate(lengths)]


def write_index_archive(root: Path, n_rows: int, n_files: int, seed: int = 0) -> Path:
    """An archive of `n_files` units with one shard Parquet each (`n_rows` in all) and their markers; no tars.

    Units are spread over the license groups (6:3:1); four figures per article; years 1995-2025
    weighted to recent ones; captions from a pool of 4,096 of PMC-like length.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from biomedica.archive.layout import ArchiveLayout
    from biomedica.archive.units import ShardInfo, UnitStats
    from biomedica.records import SHARD_SCHEMA

    layout = ArchiveLayout(Path(root))
    layout.units_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pool = pa.array(_captions(rng, 4096))
    years = np.arange(1995, 2026)
    weights = np.exp((years - 1995) / 8.0)
    weights /= weights.sum()
    per_file = -(-n_rows // n_files)
    empty = {f.name: pa.nulls(per_file, f.type) for f in SHARD_SCHEMA}
    for unit in range(n_files):
        first = unit * per_file
        count = min(per_file, n_rows - first)
        if count <= 0:
            break
        group = _GROUPS[unit % len(_GROUPS)]
        shard = f"{unit:06d}.tar"
        numbers = np.arange(first, first + count)
        keys = [f"PMC{1_000_000 + n // 4}_{n % 4:03d}" for n in numbers]
        columns = {name: column.slice(0, count) for name, column in empty.items()}
        columns.update(
            key=pa.array(keys), pmcid=pa.array([k.split("_")[0] for k in keys]),
            caption=pool.take(pa.array(rng.integers(0, len(pool), count))),
            year=pa.array(rng.choice(years, count, p=weights).astype(np.int32)),
            license_group=pa.array([group] * count), license=pa.array(["CC BY 4.0"] * count),
            journal=pa.array(rng.choice(_JOURNALS, count)), shard=pa.array([shard] * count),
            phash=pa.array([f"{h:016x}" for h in planted_hashes(count, seed=unit).tolist()]),
            width=pa.array(rng.integers(300, 2000, count).astype(np.int32)),
            height=pa.array(rng.integers(300, 2000, count).astype(np.int32)),
            image_offset=pa.array(numbers * 4096, pa.int64()), image_size=pa.array(np.full(count, 150_000, np.int64)),
            txt_offset=pa.array(np.zeros(count, np.int64)), txt_size=pa.array(np.zeros(count, np.int64)),
            json_offset=pa.array(np.zeros(count, np.int64)), json_size=pa.array(np.zeros(count, np.int64)),
            mentions=pa.array([[]] * count, pa.list_(pa.string())), keywords=pa.array([[]] * count, pa.list_(pa.string())),
            subjects=pa.array([[]] * count, pa.list_(pa.string())),
        )
        layout.group_dir(group).mkdir(exist_ok=True)
        pq.write_table(pa.table(columns, schema=SHARD_SCHEMA), layout.shard_index(group, unit))
        marker = UnitStats(unit_id=unit, articles=-(-count // 4), samples={group: count}, errors=0, bytes=0,
                           shards={group: ShardInfo(shard, count, 0, "")})
        layout.marker(unit).write_text(json.dumps(marker.to_dict()))
    return Path(root)
