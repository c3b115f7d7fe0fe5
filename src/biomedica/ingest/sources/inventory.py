"""S3 inventory reports: find the latest `manifest.json`, read its `csv.gz` files as rows.

An S3 inventory is a daily listing a bucket writes about itself:
`<prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/manifest.json` names data files
(`csv.gz`, with their md5) whose rows follow the manifest's `fileSchema` (for PMC:
Bucket, Key, [Size,] LastModifiedDate, ETag). Keys in the rows are URL-encoded. Reading the
inventory costs a handful of GETs instead of millions of LIST pages, and its folder date is
the snapshot a build records.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator
from urllib.parse import unquote

from biomedica.net import NetClient

_DATE_FOLDER = re.compile(r"/(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})Z/manifest\.json$")
DEFAULT_SCHEMA = ("Bucket", "Key", "LastModifiedDate", "ETag")


class InventoryError(ValueError):
    """An inventory manifest or data file that cannot be used (names the file and the fix)."""


@dataclass(frozen=True)
class InventoryFile:
    key: str
    size: int
    md5: str | None


@dataclass(frozen=True)
class InventoryManifest:
    bucket: str  # where the manifest and its data files live
    key: str
    source_bucket: str
    snapshot: str  # ISO 8601 UTC time of the inventory
    schema: tuple[str, ...]
    files: tuple[InventoryFile, ...]


@dataclass(frozen=True)
class InventoryRow:
    bucket: str
    key: str
    size: int | None
    last_modified: str
    etag: str


def find_latest_manifest(client: NetClient, bucket: str, prefix: str = "inventory-reports/") -> str:
    """Key of the newest `manifest.json` under `prefix` (date folders sort by time)."""
    keys = [o.key for o in client.list_objects(bucket, prefix) if o.key.endswith("/manifest.json")]
    if not keys:
        raise InventoryError(
            f"s3://{bucket}/{prefix}: no inventory manifest.json found; pass the manifest key, or select "
            "articles by prefix listing or a PMCID list instead"
        )
    dated = [k for k in keys if _DATE_FOLDER.search(k)]
    return max(dated or keys)


def _parse_manifest(raw: bytes) -> tuple[dict, tuple[InventoryFile, ...]]:
    try:
        data = json.loads(raw)
        files = tuple(
            InventoryFile(key=f["key"], size=int(f.get("size", 0)), md5=(f.get("MD5checksum") or None))
            for f in data["files"]
        )
    except UnicodeDecodeError as exc:
        raise InventoryError(f"not an S3 inventory manifest (not UTF-8 at byte {exc.start})") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InventoryError(f"not an S3 inventory manifest ({type(exc).__name__}: {exc}); expected JSON with a "
                             "'files' list") from None
    return data, files


def _gunzip_text(raw: bytes) -> str:
    try:
        return gzip.decompress(raw).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InventoryError(f"not a gzip'd UTF-8 CSV ({type(exc).__name__})") from None


def read_manifest(client: NetClient, bucket: str, key: str) -> InventoryManifest:
    """Parse one inventory `manifest.json` (a body that does not parse is fetched again, then refused)."""
    where = f"s3://{bucket}/{key}"
    data, files = client.load_object(bucket, key, _parse_manifest)
    if str(data.get("fileFormat", "CSV")).upper() != "CSV":
        raise InventoryError(f"{where}: inventory format {data.get('fileFormat')!r} is not supported; use CSV")
    schema_text = data.get("fileSchema")
    schema = tuple(c.strip() for c in schema_text.split(",")) if schema_text else DEFAULT_SCHEMA
    return InventoryManifest(
        bucket=bucket, key=key, source_bucket=data.get("sourceBucket", ""), snapshot=_snapshot(key, data),
        schema=schema, files=files,
    )


def iter_rows(client: NetClient, manifest: InventoryManifest) -> Iterator[InventoryRow]:
    """All rows of the inventory's data files, in file order."""
    columns = {name.lower().replace("-", "").replace("_", ""): i for i, name in enumerate(manifest.schema)}
    try:
        key_col = columns["key"]
        etag_col = columns["etag"]
        modified_col = columns.get("lastmodifieddate", columns.get("lastmodified"))
    except KeyError as exc:
        raise InventoryError(
            f"s3://{manifest.bucket}/{manifest.key}: fileSchema {', '.join(manifest.schema)} lacks {exc}; "
            "the inventory must include Key and ETag"
        ) from None
    bucket_col, size_col = columns.get("bucket"), columns.get("size")
    for file in manifest.files:
        # md5-checked against the manifest, and gunzipped inside the fetch: a damaged file is fetched again
        text = client.load_object(manifest.bucket, file.key, _gunzip_text, md5=file.md5)
        for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not row:
                continue
            if len(row) < len(manifest.schema):
                raise InventoryError(
                    f"s3://{manifest.bucket}/{file.key} line {line_no}: {len(row)} columns, the manifest's "
                    f"fileSchema has {len(manifest.schema)}"
                )
            yield InventoryRow(
                bucket=row[bucket_col] if bucket_col is not None else manifest.source_bucket,
                key=unquote(row[key_col]),
                size=int(row[size_col]) if size_col is not None and row[size_col] else None,
                last_modified=row[modified_col] if modified_col is not None else "",
                etag=row[etag_col].strip('"'),
            )


def _snapshot(key: str, data: dict) -> str:
    match = _DATE_FOLDER.search(key)
    if match:
        return f"{match[1]}T{match[2]}:{match[3]}:00+00:00"
    stamp = data.get("creationTimestamp")
    if stamp:
        return datetime.fromtimestamp(int(stamp) / 1000, tz=timezone.utc).isoformat(timespec="seconds")
    return ""
