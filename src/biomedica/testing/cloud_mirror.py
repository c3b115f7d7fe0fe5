"""Write articles in the PMC Cloud layout: a private mirror, a test bucket, a benchmark bucket.

`publish_version` uploads one article version as PMC does (`PMC<id>.<v>/` with the XML,
the media and a metadata JSON whose URLs carry `?md5=`), and `publish_inventory` writes a
daily S3-inventory report (manifest.json + csv.gz) of the bucket, so a mirror can be read
with every selection mode of the `pmc-cloud` source.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from biomedica.ingest.sources.pmc_cloud import PMC_BUCKET

INVENTORY_SCHEMA = ("Bucket", "Key", "Size", "LastModifiedDate", "ETag")


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def version_metadata(
    pmcid: str, version: int, xml: bytes, media: dict[str, bytes], url_bucket: str = PMC_BUCKET, **fields: Any
) -> dict[str, Any]:
    """The `PMC<id>.<v>.json` document PMC publishes for one version (fields override defaults)."""
    item = f"{pmcid}.{version}"
    base = f"s3://{url_bucket}/{item}"
    metadata: dict[str, Any] = {
        "pmcid": pmcid,
        "version": version,
        "pmid": None,
        "doi": None,
        "mid": None,
        "title": None,
        "citation": None,
        "is_pmc_openaccess": True,
        "is_manuscript": False,
        "is_historical_ocr": False,
        "is_retracted": False,
        "license_code": "CC BY",
        "xml_url": f"{base}/{item}.xml?md5={_md5(xml)}",
        "pdf_url": None,
        "media_urls": [f"{base}/{quote(name)}?md5={_md5(data)}" for name, data in sorted(media.items())],
        "text_url": None,
    }
    metadata.update(fields)
    return metadata


def publish_version(
    s3: Any,
    bucket: str,
    pmcid: str,
    version: int,
    xml: bytes,
    media: dict[str, bytes],
    url_bucket: str = PMC_BUCKET,
    **fields: Any,
) -> dict[str, Any]:
    """Upload XML, media and metadata of one version with a boto3 client; returns the metadata."""
    item = f"{pmcid}.{version}"
    metadata = version_metadata(pmcid, version, xml, media, url_bucket, **fields)
    s3.put_object(Bucket=bucket, Key=f"{item}/{item}.xml", Body=xml)
    for name, data in sorted(media.items()):
        s3.put_object(Bucket=bucket, Key=f"{item}/{name}", Body=data)
    body = json.dumps(metadata, indent=2).encode("utf-8")
    s3.put_object(Bucket=bucket, Key=f"{item}/{item}.json", Body=body)
    return metadata


def publish_inventory(
    s3: Any,
    bucket: str,
    snapshot: datetime,
    prefix: str = "inventory-reports/",
    config_id: str = "daily",
    rows_per_file: int = 1000,
) -> str:
    """List `bucket` and write an S3-inventory report of it dated `snapshot`; returns the manifest key."""
    rows: list[tuple[str, ...]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", ()):
            if obj["Key"].startswith(prefix):
                continue
            modified = obj["LastModified"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            rows.append((bucket, quote(obj["Key"]), str(obj["Size"]), modified, obj["ETag"].strip('"')))
    stamp = snapshot.astimezone(timezone.utc)
    root = f"{prefix}{bucket}/{config_id}"
    files = []
    for n, start in enumerate(range(0, max(len(rows), 1), rows_per_file)):
        text = io.StringIO()
        csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows[start : start + rows_per_file])
        data = gzip.compress(text.getvalue().encode("utf-8"), mtime=0)
        key = f"{root}/data/{stamp:%Y%m%dT%H%M}-{n:04d}.csv.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        files.append({"key": key, "size": len(data), "MD5checksum": _md5(data)})
    manifest = {
        "sourceBucket": bucket,
        "destinationBucket": f"arn:aws:s3:::{bucket}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(stamp.timestamp() * 1000)),
        "fileFormat": "CSV",
        "fileSchema": ", ".join(INVENTORY_SCHEMA),
        "files": files,
    }
    key = f"{root}/{stamp:%Y-%m-%dT%H-%M}Z/manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest, indent=2).encode("utf-8"))
    return key
