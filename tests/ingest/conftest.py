"""PMC Cloud fixtures: a moto S3 server and buckets in the PMC Cloud layout built from ../shared/fixtures.

The corpus is real XML (a real PMC package, cloud-era JATS 1.4, classic OA nxml) with real
image files; where an article's own images are not in the fixtures, real figure images of
other PMC packages are stored under the names its graphics reference. Nothing is copied
into the repository: the bucket and a matching folder (for a `dir` ingest) are written at
test time.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"


@dataclass
class CloudArticle:
    pmcid: str
    version: int
    xml: bytes
    media: dict[str, bytes]
    fields: dict

    @property
    def item_id(self) -> str:
        return f"{self.pmcid}.{self.version}"


def _corpus() -> list[CloudArticle]:
    package = FIXTURES / "pmc_packages" / "PMC10802347"
    ijms = FIXTURES / "images" / "pmc_package_figures" / "PMC10487465"
    genome = FIXTURES / "images" / "pmc_package_figures" / "PMC1175969"
    nxml = FIXTURES / "pmc_nxml"
    jpgs = itertools.cycle(sorted(ijms.glob("*.jpg")))
    gifs = itertools.cycle(sorted(ijms.glob("*.gif")))
    rcm_media: dict[str, bytes] = {}
    for n in range(1, 10):
        rcm_media[f"RCM-40-e70102-g00{n}.jpg"] = next(jpgs).read_bytes()
        rcm_media[f"RCM-40-e70102-g00{n}.gif"] = next(gifs).read_bytes()
    rcm_media["RCM-40-e70102-s001.pdf"] = b"%PDF-1.4 supplement, never fetched"
    return [
        CloudArticle(
            "PMC10802347", 1, next(package.glob("*.nxml")).read_bytes(),
            {p.name: p.read_bytes() for p in sorted(package.iterdir()) if p.suffix in (".jpg", ".gif")},
            {"license_code": "CC BY-NC-ND", "is_manuscript": True, "pmid": "38260464"},
        ),
        CloudArticle("PMC13173394", 1, (nxml / "PMC13173394.nxml").read_bytes(), rcm_media, {"license_code": "CC BY"}),
        CloudArticle(
            "PMC3166277", 1, (nxml / "PMC3166277.nxml").read_bytes(),
            {f"1471-2180-11-174-{n}.jpg": (genome / f"gb-2005-6-6-r49-{n}.jpg").read_bytes() for n in range(1, 5)},
            {"license_code": "CC BY"},
        ),
        CloudArticle("PMC2599765", 1, (nxml / "PMC2599765.nxml").read_bytes(), {}, {"license_code": "CC0"}),
        CloudArticle("PMC2329613", 1, (nxml / "PMC2329613.nxml").read_bytes(), {}, {"license_code": "CC BY"}),
    ]


@pytest.fixture(scope="session")
def pmc_cloud_corpus() -> list[CloudArticle]:
    if not FIXTURES.is_dir():
        pytest.fail(f"real test data not found at {FIXTURES}: check out ../shared beside the repository")
    return _corpus()


def write_folder(articles: list[CloudArticle], folder: Path) -> Path:
    """The same articles as a plain folder (PMC<id>.<v>/ with XML and media) for a `dir` ingest."""
    for article in articles:
        base = folder / article.item_id
        base.mkdir(parents=True, exist_ok=True)
        (base / f"{article.item_id}.xml").write_bytes(article.xml)
        for name, data in article.media.items():
            if not name.endswith(".pdf"):
                (base / name).write_bytes(data)
    return folder


@pytest.fixture(scope="session")
def pmc_cloud_folder(pmc_cloud_corpus, tmp_path_factory) -> Path:
    return write_folder(pmc_cloud_corpus, tmp_path_factory.mktemp("pmc-cloud-folder"))


@pytest.fixture(scope="session")
def s3_server():
    pytest.importorskip("moto.server", reason="moto[server] is needed for the local S3 server")
    from biomedica.testing.servers import LocalS3Server

    with LocalS3Server() as server:
        yield server


_bucket_numbers = itertools.count()


@pytest.fixture
def make_pmc_bucket(s3_server, pmc_cloud_corpus):
    """Factory: a fresh public bucket holding `articles` (default: the corpus) and an inventory."""

    def make(articles: list[CloudArticle] | None = None, inventory_at: datetime | None = None) -> str:
        from biomedica.testing.cloud_mirror import publish_inventory, publish_version

        bucket = f"pmc-test-{next(_bucket_numbers)}"
        admin = s3_server.admin_client()
        admin.create_bucket(Bucket=bucket)
        admin.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
                           "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}],
        }))
        for article in pmc_cloud_corpus if articles is None else articles:
            publish_version(admin, bucket, article.pmcid, article.version, article.xml, article.media, **article.fields)
        publish_inventory(admin, bucket, inventory_at or datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc))
        return bucket

    return make
