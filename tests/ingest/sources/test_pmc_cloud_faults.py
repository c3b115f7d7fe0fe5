"""pmc-cloud under damaged S3 bodies: retried to the clean archive, or recorded; never an abort or a silent exclusion.

A real moto server behind FaultProxy, which flips a byte of a body, sends a short body, or
cuts the connection mid-body. moto sends `x-amz-checksum-crc32`, so botocore's own checksum
validation sees most damage (FlexibleChecksumError); rules that strip those headers (and the
etag) leave it to the md5 in the metadata's URLs, the server's etag or the listing's etag.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from biomedica.archive.reader import iter_samples
from biomedica.cli import app
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig, PmcCloudSource
from biomedica.net import NetConfig, RetryPolicy
from biomedica.testing.servers import FaultProxy, FaultRule

FAST_RETRY = RetryPolicy(retries=2, base_delay=0.01, max_delay=0.02)
NO_CHECKSUMS = ("x-amz-checksum",)
NO_SERVER_DIGESTS = ("x-amz-checksum", "etag")
LICENSES = ("CC BY", "CC0")  # PMC10802347 (CC BY-NC-ND) is the one rightly excluded


def _source(bucket: str, endpoint: str, **options) -> PmcCloudSource:
    net = NetConfig(endpoint_url=endpoint, retry=FAST_RETRY, **options.pop("net", {}))
    return PmcCloudSource(PmcCloudConfig(bucket=bucket, net=net, licenses=LICENSES, **options))


def _ingest(source: PmcCloudSource, folder: Path, out: Path) -> Path:
    run_ingest(IngestConfig(input=folder, output=out, articles_per_unit=2, progress=False), source=source)
    return out


def _samples(root: Path) -> list[tuple[str, str, str]]:
    return sorted((r["key"], r["caption"], hashlib.sha256(image).hexdigest()) for r, image in iter_samples(root))


def _errors(root: Path) -> dict[str, dict]:
    rows = [row for path in sorted((root / "errors").glob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    return {row["id"]: row for row in rows}


def _bucket_md5s(s3_server, bucket: str) -> set[str]:
    admin = s3_server.admin_client()
    keys = [o["Key"] for o in admin.list_objects_v2(Bucket=bucket)["Contents"]]
    return {hashlib.md5(admin.get_object(Bucket=bucket, Key=k)["Body"].read()).hexdigest() for k in keys}


def test_bodies_damaged_once_give_the_clean_archive(make_pmc_bucket, pmc_cloud_folder, s3_server, tmp_path):
    bucket = make_pmc_bucket()
    clean_source = _source(bucket, s3_server.endpoint_url)
    clean = _ingest(clean_source, pmc_cloud_folder, tmp_path / "clean")
    rules = [
        FaultRule(path_contains="/manifest.json", body="flip", times=1),
        FaultRule(path_contains=".csv.gz", body="truncate", times=1),
        # only the inventory's etag can tell: no checksum header, no etag in the response
        FaultRule(path_contains="/PMC3166277.1.json", body="flip", strip_headers=NO_SERVER_DIGESTS, times=1),
        FaultRule(path_contains="/PMC13173394.1.json", body="cut", times=1),
        FaultRule(path_contains="/PMC2599765.1.xml", body="flip", times=1),
        FaultRule(path_contains="/PMC2329613.1.xml", body="truncate", strip_headers=NO_CHECKSUMS, times=1),
        FaultRule(path_contains="/1471-2180-11-174-2.jpg", body="flip", strip_headers=NO_SERVER_DIGESTS, times=1),
        FaultRule(path_contains="/RCM-40-e70102-g001.jpg", body="cut", times=1),
    ]
    cache = tmp_path / "cache"
    with FaultProxy(s3_server.endpoint_url, rules=rules) as proxy:
        source = _source(bucket, proxy.endpoint_url, net={"cache_dir": cache})
        noisy = _ingest(source, pmc_cloud_folder, tmp_path / "noisy")
        damaged = [r.path for r in proxy.log if r.fault]
    assert len(damaged) == len(rules) and all(rule.times == 0 for rule in rules)
    assert source.list_items() == clean_source.list_items()
    assert source.describe()["excluded"] == clean_source.describe()["excluded"] == {"license": 1}
    assert _samples(noisy) == _samples(clean) and len(_samples(clean)) == 9 + 4
    assert {k: e["kind"] for k, e in _errors(noisy).items()} == {k: e["kind"] for k, e in _errors(clean).items()}
    cached = [p for p in cache.rglob("*") if p.is_file()]
    assert cached and {hashlib.md5(p.read_bytes()).hexdigest() for p in cached} <= _bucket_md5s(s3_server, bucket)


def test_bodies_bad_on_every_attempt_are_recorded_and_the_run_completes(
    make_pmc_bucket, pmc_cloud_corpus, pmc_cloud_folder, s3_server, tmp_path
):
    bucket = make_pmc_bucket()
    clean = _ingest(_source(bucket, s3_server.endpoint_url), pmc_cloud_folder, tmp_path / "clean")
    # a record that cannot be right, at the source: no license_code (read with defaults, it would
    # silently fall out of a --license selection)
    admin = s3_server.admin_client()
    record = json.loads(admin.get_object(Bucket=bucket, Key="PMC2599765.1/PMC2599765.1.json")["Body"].read())
    del record["license_code"]
    admin.put_object(Bucket=bucket, Key="PMC2599765.1/PMC2599765.1.json", Body=json.dumps(record).encode())
    rules = [
        FaultRule(path_contains="/PMC3166277.1.json", body="flip", strip_headers=NO_CHECKSUMS),
        FaultRule(path_contains="/RCM-40-e70102-g002.jpg", body="cut"),
    ]
    with FaultProxy(s3_server.endpoint_url, rules=rules) as proxy:
        source = _source(bucket, proxy.endpoint_url, select="prefix")
        out = _ingest(source, pmc_cloud_folder, tmp_path / "out")
        metadata_gets = proxy.requests_for("/PMC3166277.1/PMC3166277.1.json")
    errors = _errors(out)
    damaged, implausible = errors["PMC3166277.1"], errors["PMC2599765.1"]
    assert damaged["kind"] == implausible["kind"] == "metadata-unreadable"
    assert f"s3://{bucket}/PMC3166277.1/PMC3166277.1.json" in damaged["message"]
    assert "gave up after 3 attempts; the body was damaged on every attempt" in damaged["message"]
    assert "without license_code" in implausible["message"] and "wrong at the source" in implausible["message"]
    assert len(metadata_gets) == 3  # retried in the listing, not once more per item
    (image,) = [e for e in errors.values() if e["source"] == "RCM-40-e70102-g002.jpg"]
    assert image["kind"] == "image-fetch-failed" and "gave up after 3 attempts" in image["message"]
    # recorded, not filtered out as "not matching the licence"
    assert source.describe()["excluded"] == {"license": 1}
    assert {"PMC3166277.1", "PMC2599765.1"} <= set(source.list_items())
    # every other article is intact
    lost = {image["id"]} | {key for key, _, _ in _samples(clean) if key.startswith("PMC3166277_")}
    assert _samples(out) == [s for s in _samples(clean) if s[0] not in lost]


def test_the_cli_exits_1_when_objects_could_not_be_fetched(make_pmc_bucket, s3_server, tmp_path):
    bucket = make_pmc_bucket()
    rule = FaultRule(path_contains="/PMC3166277.1.json", body="truncate")
    with FaultProxy(s3_server.endpoint_url, rules=[rule]) as proxy:
        args = ["ingest", "--source", "pmc-cloud", "--bucket", bucket, "--endpoint-url", proxy.endpoint_url,
                "--retries", "1", "--no-progress", "--out"]
        result = CliRunner().invoke(app, [*args, str(tmp_path / "out")])
        assert result.exit_code == 1, result.output
        said = " ".join(result.output.split())
        assert "1 document(s) have objects that could not be fetched intact after the retries (first: PMC3166277.1)" in said
        assert "rerun the same command to fetch them again" in said
        assert "Traceback" not in result.output
        assert _errors(tmp_path / "out")["PMC3166277.1"]["kind"] == "metadata-unreadable"
        rule.times = 1  # damaged once only: retried, the job is done
        result = CliRunner().invoke(app, [*args, str(tmp_path / "again")])
        assert result.exit_code == 0, result.output


def test_a_seeded_share_of_damaged_bodies_gives_the_clean_archive(make_pmc_bucket, s3_server, tmp_path):
    from biomedica.testing.faults import ingest_through_corrupting_proxy

    bucket = make_pmc_bucket()
    clean = ingest_through_corrupting_proxy(bucket, s3_server.endpoint_url, tmp_path / "clean", fraction=0.0)
    assert clean.damaged == 0 and clean.summary.samples_total == 17
    # the reliability benchmark damages 5%; 20% here so that two small runs surely damage some
    runs = [ingest_through_corrupting_proxy(bucket, s3_server.endpoint_url, tmp_path / f"noisy{seed}", 0.2, seed)
            for seed in (1, 2)]
    assert sum(run.damaged for run in runs) >= 4, [run.by_fault for run in runs]  # ~40 object GETs a run
    for n, run in enumerate(runs, start=1):
        assert _samples(tmp_path / f"noisy{n}") == _samples(tmp_path / "clean")
        assert _errors(tmp_path / f"noisy{n}").keys() == _errors(tmp_path / "clean").keys()
        assert run.summary.errors_by_kind == clean.summary.errors_by_kind


def test_a_rerun_fetches_again_what_could_not_be_fetched(make_pmc_bucket, pmc_cloud_folder, s3_server, tmp_path):
    """An object that failed for good is not forgotten: the next plain run takes its document again."""
    bucket = make_pmc_bucket()
    clean = _ingest(_source(bucket, s3_server.endpoint_url), pmc_cloud_folder, tmp_path / "clean")
    rule = FaultRule(path_contains="/RCM-40-e70102-g002.jpg", body="cut")
    with FaultProxy(s3_server.endpoint_url, rules=[rule]) as proxy:
        out = _ingest(_source(bucket, proxy.endpoint_url), pmc_cloud_folder, tmp_path / "out")
    assert len(_samples(out)) == len(_samples(clean)) - 1
    config = IngestConfig(input=pmc_cloud_folder, output=out, articles_per_unit=2, progress=False)
    again = run_ingest(config, source=_source(bucket, s3_server.endpoint_url))
    assert (again.documents_new, again.documents_changed, again.documents_removed) == (0, 1, 0)
    assert _samples(out) == _samples(clean)  # the old copy of the article is superseded by the complete one
    settled = run_ingest(config, source=_source(bucket, s3_server.endpoint_url))
    assert (settled.documents_new, settled.documents_changed) == (0, 0)
