"""Partitioned near-duplicate search: the same groups as the single-process search, in bounded units."""

import numpy as np
import pyarrow.parquet as pq
import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

from biomedica.archive.reader import read_shard_index
from biomedica.cli.curate import curate_app
from biomedica.curate.components import connected_components
from biomedica.curate.config import DedupConfig
from biomedica.curate.dedup import DEDUP_INPUT_COLUMNS, find_duplicates
from biomedica.curate.dedup_partition import (
    RUN_DIR_PREFIX,
    Substrings,
    UnionFind,
    drop_field,
    near_groups,
    parse_memory,
)
from biomedica.curate.hamming import hamming_pairs


def _planted(n_random: int = 16_000, seed: int = 7) -> np.ndarray:
    """Random hashes, near copies with 1..12 flipped bits, and a 'blank panel' cluster sharing the top bits."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**63, size=n_random, dtype=np.int64).astype(np.uint64)
    parts = [base]
    for flips in range(1, 13):
        copies = base[rng.integers(0, n_random, 250)]
        for _ in range(flips):
            copies ^= np.uint64(1) << rng.integers(0, 64, 250).astype(np.uint64)
        parts.append(copies)
    blank = np.zeros(1_500, dtype=np.uint64)
    for _ in range(5):
        blank |= np.uint64(1) << rng.integers(0, 20, 1_500).astype(np.uint64)
    parts.append(blank)
    return np.unique(np.concatenate(parts))


def _reference(hashes: np.ndarray, threshold: int) -> np.ndarray:
    found = list(hamming_pairs(hashes, None, threshold))
    first = np.concatenate([f for f, _, _ in found]) if found else np.empty(0, np.int64)
    second = np.concatenate([s for _, s, _ in found]) if found else np.empty(0, np.int64)
    return connected_components(len(hashes), first, second)


@pytest.fixture(scope="module")
def planted():
    return _planted()


@pytest.mark.slow
@pytest.mark.parametrize("thresholds", [(0, 1, 2, 3, 4), (5, 6, 7, 8), (9, 10), (11, 12)])
def test_partitioned_groups_equal_single_process_for_thresholds_0_to_12(planted, thresholds, tmp_path):
    for threshold in thresholds:
        search = near_groups(planted, threshold, work_dir=tmp_path)
        assert np.array_equal(search.labels, _reference(planted, threshold)), threshold
    assert list(tmp_path.iterdir()) == []  # the run folder is removed


@pytest.mark.slow
def test_tiny_budget_spills_many_units_and_block_pairs_with_the_same_groups(planted, tmp_path):
    search = near_groups(planted, 6, memory="64KB", work_dir=tmp_path)
    assert search.units > 50 and search.block_units > 0
    assert any("block pairs" in note for note in search.notes)  # the blank cluster exceeds 819 hashes per unit
    assert search.largest_unit <= 64 * 1024 // 80 + 1
    assert np.array_equal(search.labels, _reference(planted, 6))
    assert not any(p.name.startswith(RUN_DIR_PREFIX) for p in tmp_path.iterdir())


def test_run_folder_is_removed_after_an_error(tmp_path):
    with pytest.raises(ValueError):
        near_groups(np.arange(10, dtype=np.uint64), 6, memory="64KB", executor="nope", work_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_two_local_workers_give_the_same_groups(planted, tmp_path):
    search = near_groups(planted, 6, workers=2, work_dir=tmp_path)
    assert search.units >= 7
    assert np.array_equal(search.labels, _reference(planted, 6))


def test_union_find_in_batches_equals_connected_components():
    rng = np.random.default_rng(3)
    first, second = rng.integers(0, 5_000, 4_000), rng.integers(0, 5_000, 4_000)
    groups = UnionFind(5_000)
    for start in range(0, 4_000, 333):
        groups.union(first[start : start + 333], second[start : start + 333])
    assert np.array_equal(groups.labels(), connected_components(5_000, first, second))


def test_dropping_a_shared_field_keeps_distances():
    rng = np.random.default_rng(5)
    values = rng.integers(0, 2**63, size=200, dtype=np.int64).astype(np.uint64)
    substrings = Substrings.for_threshold(6)
    for p in range(len(substrings.widths)):
        shift, width = substrings.field(p)
        same = values & ~np.uint64(((1 << width) - 1) << shift)  # the field zeroed: shared by all
        packed = drop_field(same, shift, width)
        assert np.array_equal(np.bitwise_count(same[:-1] ^ same[1:]), np.bitwise_count(packed[:-1] ^ packed[1:]))
        assert not (packed & np.uint64((1 << width) - 1)).any()  # the free bits are at the bottom


def test_memory_sizes_parse_and_a_bad_one_is_refused():
    assert parse_memory("2GB") == 2 << 30 and parse_memory("64KB") == 65_536 and parse_memory("1.5M") == 1_572_864
    with pytest.raises(ValidationError, match="not a size"):
        DedupConfig(memory="lots")
    assert not DedupConfig().partitioned and DedupConfig(workers=2).partitioned


@pytest.mark.slow
def test_find_duplicates_partitioned_equals_single_process_on_the_curation_archive(curation_archive, tmp_path):
    index = read_shard_index(curation_archive, columns=DEDUP_INPUT_COLUMNS)
    for threshold in range(13):
        single = find_duplicates(index, DedupConfig(near_threshold=threshold))
        stats: dict[str, int] = {}
        parted = find_duplicates(
            index, DedupConfig(near_threshold=threshold, memory="64KB"), work_dir=tmp_path, stats=stats
        )
        assert parted.equals(single), threshold
        assert threshold == 0 or stats["near_units"] > 0


def test_cli_dedup_with_a_budget_writes_the_same_table(curation_archive, tmp_path):
    app = typer.Typer()
    app.add_typer(curate_app)
    runner = CliRunner()
    plain, budget = tmp_path / "plain", tmp_path / "budget"
    result = runner.invoke(app, ["curate", "dedup", str(curation_archive), "--annotations", str(plain)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["curate", "dedup", str(curation_archive), "--annotations", str(budget),
                                 "--memory", "64KB", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "near_units" in " ".join(result.output.split())
    assert pq.read_table(budget / "dedup.parquet").equals(pq.read_table(plain / "dedup.parquet"))
    assert sorted(p.name for p in budget.iterdir() if p.name.startswith(".dedup")) == []
    result = runner.invoke(app, ["curate", "dedup", str(curation_archive), "--annotations", str(budget),
                                 "--memory", "lots"])
    assert result.exit_code == 2 and "not a size" in " ".join(result.output.split())


@pytest.mark.slow
def test_ray_units_give_the_same_groups(planted, local_ray, tmp_path):
    search = near_groups(planted, 6, memory="1MB", executor="ray", workers=2, work_dir=tmp_path)
    assert search.units > 7
    assert np.array_equal(search.labels, _reference(planted, 6))
