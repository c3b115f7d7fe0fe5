"""Source `pmc-cloud` against a moto S3 server on 127.0.0.1 holding a PMC Cloud layout bucket."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pyarrow.parquet as pq
import pytest

from biomedica.archive.reader import iter_samples
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.ingest.sources.directory import DirectorySource
from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig, PmcCloudSource, normalise_license_code, parse_pmcid
from biomedica.net import NetConfig, RetryPolicy
from biomedica.testing.servers import FaultProxy, FaultRule

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


def _source(bucket: str, endpoint: str, **options) -> PmcCloudSource:
    net = {"endpoint_url": endpoint, "retry": FAST_RETRY} | options.pop("net", {})
    config = PmcCloudConfig(bucket=bucket, net=NetConfig(**net), **options)
    return PmcCloudSource(config)


def _ingest(source, folder: Path, out: Path, **options) -> Path:
    config = IngestConfig(input=folder, output=out, articles_per_unit=2, progress=False, **options)
    run_ingest(config, source=source)
    return out


def _samples(root: Path) -> list[tuple[dict, str]]:
    return sorted(((record, hashlib.sha256(image).hexdigest()) for record, image in iter_samples(root)),
                  key=lambda s: s[0]["key"])


def _errors(root: Path) -> list[dict]:
    rows = []
    for path in sorted((root / "errors").glob("*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def _articles(root: Path) -> list[dict]:
    """Article rows without `source` (where the XML was read: an s3:// URL or a path)."""
    rows = [{k: v for k, v in row.items() if k != "source"} for row in pq.read_table(root / "articles").to_pylist()]
    return sorted(rows, key=lambda a: a["article_id"])


def test_pmcid_and_license_parsing():
    assert parse_pmcid("PMC0123") == ("PMC123", None)
    assert parse_pmcid(" 3166277.2 ") == ("PMC3166277", 2)
    assert parse_pmcid("pmc3166277") == ("PMC3166277", None)
    assert parse_pmcid("10.1000/xyz") is None
    assert normalise_license_code("CC BY-NC") == normalise_license_code("cc_by_nc") == "CCBYNC"


def test_inventory_selection_latest_version_and_filters(make_pmc_bucket, pmc_cloud_corpus, s3_server):
    article = pmc_cloud_corpus[2]  # PMC3166277
    extra = [
        *pmc_cloud_corpus,
        type(article)(article.pmcid, 2, article.xml, article.media, {"license_code": "CC BY"}),
        type(article)("PMC900001", 1, article.xml, {}, {"license_code": "CC BY", "is_retracted": True}),
        type(article)("PMC900002", 1, article.xml, {}, {"license_code": "CC BY", "is_historical_ocr": True}),
        type(article)("PMC900003", 1, article.xml, {}, {"license_code": "NO-CC CODE"}),
        type(article)("PMC900004", 1, article.xml, {}, {"license_code": "CC BY", "is_pmc_openaccess": False}),
    ]
    bucket = make_pmc_bucket(extra)
    source = _source(bucket, s3_server.endpoint_url)
    assert source.list_items() == [
        "PMC10802347.1", "PMC13173394.1", "PMC2329613.1", "PMC2599765.1", "PMC3166277.2", "PMC900003.1",
    ]
    described = source.describe()
    assert described["snapshot"] == "2026-11-20T01:00:00+00:00"
    assert described["inventory_manifest"].endswith("/2026-11-20T01-00Z/manifest.json")
    assert described["excluded"] == {"historical-ocr": 1, "not-open-access": 1, "retracted": 1}
    assert described["versions_listed"] == 9  # PMC3166277.1 is not listed: only the latest version

    licensed = _source(bucket, s3_server.endpoint_url, licenses=("cc-by", "CC0"), include_manuscripts=False)
    assert licensed.list_items() == ["PMC13173394.1", "PMC2329613.1", "PMC2599765.1", "PMC3166277.2"]
    every = _source(bucket, s3_server.endpoint_url, all_versions=True, include_retracted=True, limit=7)
    assert every.list_items() == [
        "PMC10802347.1", "PMC13173394.1", "PMC2329613.1", "PMC2599765.1", "PMC3166277.1", "PMC3166277.2",
        "PMC900001.1",
    ]


def test_prefix_listing_and_id_file_select_the_same(make_pmc_bucket, s3_server, tmp_path):
    bucket = make_pmc_bucket()
    by_prefix = _source(bucket, s3_server.endpoint_url, select="prefix", prefix="PMC1")
    assert by_prefix.list_items() == ["PMC10802347.1", "PMC13173394.1"]
    ids = tmp_path / "ids.txt"
    ids.write_text("pmcid\nPMC13173394\n10802347  # a comment\n\nPMC424242\n")
    by_ids = _source(bucket, s3_server.endpoint_url, select="ids", ids_file=ids)
    assert by_ids.list_items() == ["PMC10802347.1", "PMC13173394.1", "PMC424242"]
    with pytest.raises(OSError, match="PMC424242 is not in the bucket"):
        by_ids.open_item("PMC424242")
    ids.write_text("PMC1\nnot-an-id\n")
    with pytest.raises(ValueError, match=r"line 2: 'not-an-id'"):
        _source(bucket, s3_server.endpoint_url, select="ids", ids_file=ids).list_items()


def test_archive_equals_a_dir_ingest_of_the_same_articles(make_pmc_bucket, pmc_cloud_folder, s3_server, tmp_path):
    bucket = make_pmc_bucket()
    with FaultProxy(s3_server.endpoint_url) as proxy:
        source = _source(bucket, proxy.endpoint_url)
        cloud = _ingest(source, pmc_cloud_folder, tmp_path / "cloud")
        fetched = {r.path for r in proxy.log if r.method == "GET"}
    local = _ingest(DirectorySource(pmc_cloud_folder), pmc_cloud_folder, tmp_path / "dir")
    cloud_samples, local_samples = _samples(cloud), _samples(local)
    assert len(cloud_samples) == 9 + 4 + 4  # RCM figures, PMC3166277 figures, PMC10802347 (f0001 has its gif)
    assert cloud_samples == local_samples
    assert _articles(cloud) == _articles(local)
    assert [(e["id"], e["kind"]) for e in _errors(cloud)] == [(e["id"], e["kind"]) for e in _errors(local)]
    manifest = json.loads((cloud / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "pmc-cloud" and manifest["source"]["snapshot"].startswith("2026-11-20")
    # only XML, metadata and the figure images used were fetched: no PDF, no thumbnail beside a full image
    media = {p.rsplit("/", 1)[-1] for p in fetched if "/PMC" in p and not p.endswith((".xml", ".json"))}
    used = {r["image_name"] for r, _ in cloud_samples}
    assert media == used
    assert not any(p.endswith(".pdf") for p in fetched)


def test_workers_get_a_pickled_source(make_pmc_bucket, pmc_cloud_folder, s3_server, tmp_path):
    bucket = make_pmc_bucket()
    source = _source(bucket, s3_server.endpoint_url)
    source.list_items()
    copy = pickle.loads(pickle.dumps(source))  # what a spawn worker receives
    item = copy.open_item("PMC3166277.1")
    assert item.media_names == [f"1471-2180-11-174-{n}.jpg" for n in range(1, 5)]
    assert item.read_media("1471-2180-11-174-2.jpg")[:2] == b"\xff\xd8"
    assert len(pickle.dumps(source)) < 10_000


def test_corrupt_and_missing_objects_are_recorded(make_pmc_bucket, pmc_cloud_corpus, s3_server, pmc_cloud_folder, tmp_path):
    bucket = make_pmc_bucket()
    admin = s3_server.admin_client()
    admin.put_object(Bucket=bucket, Key="PMC3166277.1/1471-2180-11-174-2.jpg", Body=b"\xff\xd8 not the image")
    admin.put_object(Bucket=bucket, Key="PMC2329613.1/PMC2329613.1.xml", Body=b"<article>changed</article>")
    admin.delete_object(Bucket=bucket, Key="PMC13173394.1/RCM-40-e70102-g004.jpg")
    with FaultProxy(s3_server.endpoint_url) as proxy:
        out = _ingest(_source(bucket, proxy.endpoint_url), pmc_cloud_folder, tmp_path / "out")
        corrupt_gets = proxy.requests_for("/PMC3166277.1/1471-2180-11-174-2.jpg")
        missing_gets = proxy.requests_for("/PMC13173394.1/RCM-40-e70102-g004.jpg")
    errors = {e["id"]: e for e in _errors(out)}
    assert errors["PMC3166277_001"]["kind"] == "image-fetch-failed"  # never read intact: the job is partly not done
    assert "md5" in errors["PMC3166277_001"]["message"] and "gave up after 3 attempts" in errors["PMC3166277_001"]["message"]
    assert len(corrupt_gets) == 3  # retried, then recorded
    assert errors["PMC2329613.1"]["kind"] == "source-fetch-failed"
    assert "md5" in errors["PMC2329613.1"]["message"]
    missing = [e for e in errors.values() if "RCM-40-e70102-g004.jpg" in (e["source"] or "")]
    assert len(missing) == 1 and "does not exist" in missing[0]["message"]
    assert len(missing_gets) == 1  # a 404 is not retried
    keys = {r["key"] for r, _ in _samples(out)}
    assert "PMC3166277_000" in keys and "PMC3166277_001" not in keys and len(keys) == 17 - 2


def test_intermittent_server_gives_the_same_archive(make_pmc_bucket, pmc_cloud_folder, s3_server, tmp_path):
    bucket = make_pmc_bucket()
    with FaultProxy(s3_server.endpoint_url) as proxy:
        clean = _ingest(_source(bucket, proxy.endpoint_url), pmc_cloud_folder, tmp_path / "clean")
    # every object and listing answers 500 to its first request, then recovers: a fixed pattern per
    # path, so no interleaving of the workers' threads can land one request's every attempt on a failure
    with FaultProxy(s3_server.endpoint_url, latency=0.005, rules=[FaultRule(status=500, per_path=1)]) as flaky:
        source = _source(bucket, flaky.endpoint_url)
        noisy = _ingest(source, pmc_cloud_folder, tmp_path / "noisy", workers=2)  # spawn workers get a pickled source
        failures = sum(1 for r in flaky.log if r.status == 500)
    assert failures >= 10
    assert _samples(noisy) == _samples(clean)
    assert sorted((e["id"], e["kind"]) for e in _errors(noisy)) == sorted((e["id"], e["kind"]) for e in _errors(clean))


_KILL_SCRIPT = """
import sys, time
from pathlib import Path
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig, PmcCloudSource
from biomedica.net import NetConfig
bucket, endpoint, folder, out, cache = sys.argv[1:6]
net = NetConfig(endpoint_url=endpoint, cache_dir=Path(cache))
source = PmcCloudSource(PmcCloudConfig(bucket=bucket, net=net, read_ahead=0))  # leave items for the re-run
run_ingest(IngestConfig(input=Path(folder), output=Path(out), articles_per_unit=1, progress=False), source=source)
"""


def test_resume_after_kill_downloads_nothing_twice(make_pmc_bucket, pmc_cloud_folder, s3_server, tmp_path):
    bucket = make_pmc_bucket()
    out, cache = tmp_path / "out", tmp_path / "cache"
    with FaultProxy(s3_server.endpoint_url, latency=0.02) as proxy:
        child = subprocess.Popen(
            [sys.executable, "-c", _KILL_SCRIPT, bucket, proxy.endpoint_url, str(pmc_cloud_folder), str(out), str(cache)],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src")},
        )
        deadline = time.monotonic() + 60
        while not (out / "_units" / "000001.json").exists():  # kill after two of five units
            assert child.poll() is None, "the ingest child ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
        cached = {hashlib.md5(f.read_bytes()).hexdigest() for f in cache.rglob("*") if f.is_file() and ".tmp" not in f.name}
        first_run = [r.path for r in proxy.log if r.method == "GET" and r.status == 200 and "/PMC" in r.path]
        proxy.clear_log()
        source = _source(bucket, proxy.endpoint_url, net={"cache_dir": cache})
        run_ingest(IngestConfig(input=pmc_cloud_folder, output=out, articles_per_unit=1, progress=False), source=source)
        second_run = [r.path for r in proxy.log if r.method == "GET" and "/PMC" in r.path]
    assert first_run and second_run and cached
    # Nothing that reached the cache is downloaded again. An object whose response arrived just
    # before the kill but was not yet cached is fetched again, rightly: check each by its bytes.
    admin = s3_server.admin_client()
    for path in set(first_run) & set(second_run):
        bucket_name, _, key = unquote(path.split("?", 1)[0]).lstrip("/").partition("/")
        body = admin.get_object(Bucket=bucket_name, Key=key)["Body"].read()
        assert hashlib.md5(body).hexdigest() not in cached, f"{path} was in the cache and was downloaded again"
    assert len(set(first_run) & set(second_run)) < len(set(first_run))
    reference = _ingest(DirectorySource(pmc_cloud_folder), pmc_cloud_folder, tmp_path / "dir")
    assert _samples(out) == _samples(reference)
