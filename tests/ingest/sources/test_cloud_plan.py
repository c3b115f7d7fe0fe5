"""The pmc-cloud plan file: written in bounded memory, read by row group, pickled as a path."""

from __future__ import annotations

import pickle
import random
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.ingest.sources.cloud_plan import PLAN_SCHEMA, PlanError, PlanReader, write_plan
from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig, PmcCloudSource, VersionListing, plan_from_inventory_rows
from biomedica.net import NetConfig, RetryPolicy


def _inventory(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(key, etag, last_modified) rows of `n` articles shaped like the PMC bucket: xml, json, media; some v2."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        pmcid = f"PMC{1_000_000 + i * 7}"
        versions = (1, 2) if i % 10 == 0 else (1,)
        for v in versions:
            item = f"{pmcid}.{v}"
            rows.append((f"{item}/{item}.xml", f'"x{i}v{v}"', "2026-08-01T00:00:00.000Z"))
            rows.append((f"{item}/{item}.json", f'"j{i}v{v}"', "2026-08-01T00:00:00.000Z"))
            rows.append((f"{item}/fig{rng.randrange(9)}.jpg", '"m"', "2026-08-01T00:00:00.000Z"))
    rng.shuffle(rows)  # inventory files are not sorted by key
    return rows


def test_plan_of_100k_inventory_rows_reads_back_by_item(tmp_path):
    n = 100_000
    path = tmp_path / "plan.parquet"
    assert plan_from_inventory_rows(_inventory(n), path) == n
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == n and meta.num_row_groups == 2  # 64k rows a group: a unit reads one or two
    reader = pickle.loads(pickle.dumps(PlanReader(path)))  # what a worker receives: the path
    assert len(pickle.dumps(reader)) < 1_000
    for i in (0, 10, 9_999, 65_535, 65_536, 99_990, 99_999):
        version = 2 if i % 10 == 0 else 1
        item = f"PMC{1_000_000 + i * 7}.{version}"
        assert reader.etags(item) == (f"x{i}v{version}", f"j{i}v{version}")
    assert reader.etags("PMC1000000.1") is None  # an older version is not planned (latest only)
    assert reader.etags("PMC999.1") is None and reader.etags("PMC9999999.1") is None
    ids = pq.read_table(path, columns=["item_id"]).column("item_id").to_pylist()
    assert ids == sorted(ids)
    at = ids.index("PMC1458752.1")  # 65_536th version: the read-ahead crosses into the next row group
    assert reader.following(ids[at - 2], 4) == ids[at - 1 : at + 3]
    assert reader.following(ids[-1], 4) == []


def _listings(n: int):
    for i in range(n):
        yield VersionListing(f"PMC{10_000_000 + i}.1", f"PMC{10_000_000 + i}", 1, f"x{i}", f"j{i}")


def _peak(n: int, path: Path) -> int:
    tracemalloc.start()
    try:
        write_plan(_listings(n), path, row_group_rows=8_192)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_writing_a_plan_takes_memory_of_one_row_group_not_of_the_listing(tmp_path):
    _peak(1_000, tmp_path / "warm.parquet")  # first use allocates pyarrow's and zstd's own state
    small = _peak(25_000, tmp_path / "small.parquet")
    large = _peak(100_000, tmp_path / "large.parquet")
    assert large < 1.3 * small + 256_000, (small, large)  # flat in the row count
    assert PlanReader(tmp_path / "large.parquet").etags("PMC10099999.1") == ("x99999", "j99999")


def test_unsorted_plan_rows_are_refused_and_nothing_is_left(tmp_path):
    rows = [VersionListing("PMC2.1", "PMC2", 1, "a", "b"), VersionListing("PMC1.1", "PMC1", 1, "a", "b")]
    with pytest.raises(PlanError, match="not sorted"):
        write_plan(rows, tmp_path / "plan.parquet")
    assert list(tmp_path.iterdir()) == []


def test_a_worker_copy_carries_the_plan_path_not_the_listing(make_pmc_bucket, s3_server, tmp_path):
    bucket = make_pmc_bucket()
    config = PmcCloudConfig(bucket=bucket, net=NetConfig(endpoint_url=s3_server.endpoint_url,
                                                         retry=RetryPolicy(max_attempts=3, base_delay=0.01)))
    source = PmcCloudSource(config)
    items = source.list_items()
    with source.worker_plan(tmp_path) as plan:
        state = source.__getstate__()
        assert state["etags"] == {} and state["order"] == [] and plan.exists()
        copy = pickle.loads(pickle.dumps(source))
        assert copy._etag_pair(items[0]) == source._etag_pair(items[0])
        assert copy._following(items[0], 2) == items[1:3]
        item = copy.open_item("PMC3166277.1")
        assert item.read_media("1471-2180-11-174-2.jpg")[:2] == b"\xff\xd8"
    assert not plan.exists() and list(tmp_path.iterdir()) == []  # the run removes its own plan


@pytest.mark.slow
def test_ingest_on_workers_reads_the_plan_and_leaves_no_file(make_pmc_bucket, pmc_cloud_folder, s3_server, tmp_path):
    bucket = make_pmc_bucket()
    config = PmcCloudConfig(bucket=bucket, net=NetConfig(endpoint_url=s3_server.endpoint_url))
    out = tmp_path / "archive"
    run_ingest(IngestConfig(input=pmc_cloud_folder, output=out, articles_per_unit=2, progress=False, workers=2),
               source=PmcCloudSource(config))
    assert not list(out.glob(".pmc-cloud-plan*"))
    assert sum(1 for _ in out.glob("*/*.tar")) > 0


@pytest.mark.parametrize("all_versions", [False, True])
def test_bounded_inventory_plan_equals_the_in_memory_listing(tmp_path, all_versions):
    from biomedica.ingest.sources.pmc_cloud import _choose_versions, _versions_from_keys

    rows = _inventory(3_000, seed=1)
    rows.append(("PMC5.1/PMC5.1.xml", '"lonely"', ""))  # no json beside it: not a version
    rows.append(("PMC6.2/PMC6.1.xml", '"elsewhere"', ""))  # an object under another version's prefix
    expected = [(v.item_id, v.pmcid, v.version, v.xml_etag, v.json_etag)
                for v in _choose_versions(_versions_from_keys(rows), all_versions)]
    path = tmp_path / "plan.parquet"
    assert plan_from_inventory_rows(rows, path, all_versions=all_versions, memory="64MB") == len(expected)
    table = pq.read_table(path)
    assert [(f.name, f.type) for f in table.schema] == [(f.name, f.type) for f in PLAN_SCHEMA]
    got = list(zip(*(table.column(c).to_pylist() for c in ("item_id", "pmcid", "version", "xml_etag", "json_etag"))))
    assert got == expected
    assert table.column("order").to_pylist() == list(range(len(expected)))
    assert [p.name for p in tmp_path.iterdir()] == ["plan.parquet"]  # the spill folder is gone


def _inventory_stream(n: int):
    for i in range(n):
        item = f"PMC{2_000_000 + i}.1"
        yield (f"{item}/{item}.xml", f'"x{i}"', "")
        yield (f"{item}/{item}.json", f'"j{i}"', "")
        yield (f"{item}/f.jpg", '"m"', "")


@pytest.mark.slow
def test_planning_an_inventory_holds_a_batch_in_python_not_the_inventory(tmp_path):
    """Python-side peak (tracemalloc) is flat in the row count; DuckDB's own memory is capped by `memory`."""
    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            assert plan_from_inventory_rows(_inventory_stream(n), tmp_path / f"{n}.parquet", memory="128MB",
                                            batch_rows=4_096) == n
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(1_000)  # first use: duckdb's and pyarrow's own state
    small, large = peak(20_000), peak(100_000)
    assert large < 1.3 * small + 256_000, (small, large)
