"""Incremental sync against a moto S3 bucket: the second run fetches and writes only what changed."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq

from biomedica.archive.units import completed_units
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig, PmcCloudSource
from biomedica.ingest.sync import BuildState, plan_sync, read_builds, read_retractions, run_sync, snapshot_tag
from biomedica.net import NetConfig, RetryPolicy
from biomedica.testing.cloud_mirror import publish_inventory, publish_version
from biomedica.testing.servers import FaultProxy

FIXTURES = Path(__file__).resolve().parents[1] / ".." / ".." / "shared" / "fixtures"
DAY1 = datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc)
DAY2 = datetime(2026, 11, 21, 1, 0, tzinfo=timezone.utc)


def _source(bucket: str, endpoint: str, cache: Path) -> PmcCloudSource:
    net = NetConfig(endpoint_url=endpoint, cache_dir=cache, retry=RetryPolicy(max_attempts=3, base_delay=0.01))
    return PmcCloudSource(PmcCloudConfig(bucket=bucket, net=net))


def _files(root: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every shard and shard index."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for group in ("commercial", "noncommercial", "other")
        for p in sorted((root / group).glob("[0-9]*.*"))
    }


def _xml_gets(proxy: FaultProxy) -> set[str]:
    return {r.path.rsplit("/", 1)[-1] for r in proxy.log if r.method == "GET" and r.path.endswith(".xml")}


def test_second_sync_fetches_only_new_and_changed_versions(make_pmc_bucket, pmc_cloud_corpus, pmc_cloud_folder,
                                                          s3_server, tmp_path):
    bucket = make_pmc_bucket(inventory_at=DAY1)
    out, cache = tmp_path / "archive", tmp_path / "cache"
    config = IngestConfig(input=pmc_cloud_folder, output=out, articles_per_unit=2, progress=False)
    with FaultProxy(s3_server.endpoint_url) as proxy:
        first = run_sync(config, _source(bucket, proxy.endpoint_url, cache))
        assert (first.plan.new, first.plan.changed, first.plan.first_unit_id) == (5, 0, 0)
        assert first.ingest.samples_total == 17
        assert len(_xml_gets(proxy)) == 5
        before = _files(out)

        # the bucket moves on: a new version, a changed XML, a retraction, a new article
        admin = s3_server.admin_client()
        by_id = {a.pmcid: a for a in pmc_cloud_corpus}
        a = by_id["PMC3166277"]
        publish_version(admin, bucket, a.pmcid, 2, a.xml, a.media, license_code="CC BY")
        b = by_id["PMC2599765"]
        publish_version(admin, bucket, b.pmcid, 1, b.xml.replace(b"</article>", b"</article>\n"), {}, license_code="CC0")
        c = by_id["PMC13173394"]
        publish_version(admin, bucket, c.pmcid, 1, c.xml, c.media, license_code="CC BY", is_retracted=True)
        new_xml = (FIXTURES / "pmc_nxml" / "PMC7302504.nxml").read_bytes()
        publish_version(admin, bucket, "PMC7302504", 1, new_xml, {}, license_code="CC0")
        publish_inventory(admin, bucket, DAY2)

        proxy.clear_log()
        second = run_sync(config, _source(bucket, proxy.endpoint_url, cache))
        second_xml = _xml_gets(proxy)
        second_json = {r.path.rsplit("/", 1)[-1] for r in proxy.log if r.method == "GET" and r.path.endswith(".json")
                       and "inventory" not in r.path}

    assert (second.plan.new, second.plan.changed, second.plan.unchanged) == (2, 1, 2)
    assert second.plan.items == ["PMC2599765.1", "PMC3166277.2", "PMC7302504.1"]
    assert second_xml == {"PMC2599765.1.xml", "PMC3166277.2.xml", "PMC7302504.1.xml"}
    # unchanged metadata came from the cache; changed or new metadata objects were fetched
    assert second_json == {"PMC2599765.1.json", "PMC3166277.2.json", "PMC7302504.1.json", "PMC13173394.1.json"}
    assert second.plan.first_unit_id == 3
    assert sorted(completed_units(out)) == [0, 1, 2, 3, 4]
    after = _files(out)
    assert {k: v for k, v in after.items() if k in before} == before  # old shards untouched
    assert all(name.split("/")[1].startswith(("000003", "000004")) for name in set(after) - set(before))

    retractions = read_retractions(out).to_pylist()
    assert [(r["article_id"], r["item_id"], r["snapshot"]) for r in retractions] == [
        ("PMC13173394", "PMC13173394.1", "2026-11-21T01:00:00+00:00")
    ]
    builds = read_builds(out)
    assert [(b.snapshot, b.status, b.first_unit_id, b.next_unit_id) for b in builds] == [
        ("2026-11-20T01:00:00+00:00", "complete", 0, 3),
        ("2026-11-21T01:00:00+00:00", "complete", 3, 5),
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [b["snapshot"] for b in manifest["source"]["builds"]] == [b.snapshot for b in builds]
    assert manifest["source"]["snapshot"] == "2026-11-21T01:00:00+00:00"
    articles = pq.read_table(out / "articles").column("article_id").to_pylist()
    assert sorted(articles).count("PMC3166277") == 2  # both versions, in their own builds

    # the same inventory again: nothing to fetch, nothing written
    with FaultProxy(s3_server.endpoint_url) as proxy:
        third = run_sync(config, _source(bucket, proxy.endpoint_url, cache))
        assert _xml_gets(proxy) == set()
    assert third.plan.items == [] and _files(out) == after
    assert len(read_retractions(out)) == 1


def test_an_unfinished_build_is_resumed_with_its_own_items(make_pmc_bucket, s3_server, tmp_path):
    bucket = make_pmc_bucket(inventory_at=DAY1)
    out = tmp_path / "archive"
    state = BuildState(snapshot="2026-11-19T01:00:00+00:00", first_unit_id=7, next_unit_id=8,
                       items=["PMC2329613.1"], signatures={"PMC2329613.1": "x/y"})
    (out / "builds").mkdir(parents=True)
    (out / "builds" / f"{snapshot_tag(state.snapshot)}.json").write_text(json.dumps(state.__dict__))
    plan = plan_sync(out, _source(bucket, s3_server.endpoint_url, tmp_path / "cache"))
    assert plan.resumed and plan.items == ["PMC2329613.1"] and plan.first_unit_id == 7
