"""The synthetic PMC-shape data: inventories the pmc-cloud listing reads, hashes, a valid index archive."""

from __future__ import annotations

import numpy as np

from biomedica.archive.reader import read_shard_index, shard_paths
from biomedica.ingest.sources.pmc_cloud import _choose_versions, _versions_from_keys
from biomedica.testing.scale_data import inventory_rows, planted_hashes, write_index_archive


def test_inventory_rows_are_whole_versions_the_listing_understands():
    rows = list(inventory_rows(4_000))
    assert len(rows) == 4_000
    versions = _versions_from_keys((key, etag, modified) for _, key, _, modified, etag in rows)
    assert len(versions) == 1_000
    latest = _choose_versions(versions, all_versions=False)
    assert len(latest) == len({v.pmcid for v in versions}) < 1_000  # one article in ten has two versions
    assert rows == list(inventory_rows(4_000))  # seeded


def test_planted_hashes_have_near_copies_within_three_bits():
    hashes = planted_hashes(10_000)
    planted = 500
    distance = np.array([(int(a) ^ int(b)).bit_count() for a, b in zip(hashes[:planted], hashes[-planted:])])
    assert distance.max() <= 3 and (distance > 0).mean() > 0.9


def test_index_archive_is_an_archive_select_can_read(tmp_path):
    root = write_index_archive(tmp_path / "archive", n_rows=1_000, n_files=10)
    paths = shard_paths(root)
    assert len(paths) == 10 and {g for g, _ in paths} == {"commercial", "noncommercial", "other"}
    index = read_shard_index(root, columns=["key", "year", "license_group"])
    assert index.num_rows == 1_000 and len(set(index.column("key").to_pylist())) == 1_000
    assert min(index.column("year").to_pylist()) >= 1995
