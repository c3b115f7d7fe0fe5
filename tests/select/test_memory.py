"""select under a memory budget: the manifest streams batch by batch, DuckDB spills beyond --memory, and a
failing query leaves the previous selection as it was."""

from __future__ import annotations

import json

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from biomedica.archive.reader import read_shard_index
from biomedica.cli import app
from biomedica.select import SelectConfig, run_select
from biomedica.select.run import SPILL_PREFIX
from biomedica.testing.scale_data import write_index_archive


@pytest.fixture(scope="module")
def big_index(tmp_path_factory):
    """300k index rows in 12 shard Parquet files (no tars: a manifest needs none)."""
    return write_index_archive(tmp_path_factory.mktemp("index") / "archive", 300_000, 12)


def _expected_keys(archive, split) -> list[str]:
    """year >= 2015, commercial, the held-out articles left out; sorted as select sorts (one group here)."""
    index = read_shard_index(archive, columns=["key", "pmcid", "year", "shard"])
    chosen = index.filter(pc.and_(pc.greater_equal(index.column("year"), 2015),
                                  pc.equal(index.column("group"), "commercial")))
    rows = zip(chosen.column("shard").to_pylist(), chosen.column("key").to_pylist(), chosen.column("pmcid").to_pylist())
    return [key for _, key, pmcid in sorted(rows) if not split.holds(key, pmcid)]


def test_a_manifest_streams_under_a_small_budget(big_index, tmp_path):
    out = tmp_path / "sel"
    config = SelectConfig(archive=big_index, out=out, min_year=2015, license_groups=["commercial"], memory="100MB")
    result = run_select(config)
    manifest = pq.ParquetFile(out / "manifest.parquet")
    keys = manifest.read(columns=["key"]).column("key").to_pylist()
    assert keys == _expected_keys(big_index, config.held_out) and result.selected == len(keys) > 50_000
    assert result.held_out_excluded > 0
    assert manifest.metadata.num_row_groups > 1  # written batch by batch, never as one table
    assert result.per_group == {"commercial": len(keys)} and result.total == 300_000
    summary = json.loads((out / "selection.json").read_text())
    assert summary["per_group"] == {"commercial": len(keys)} and summary["config"]["memory"] == "100MB"
    assert not list(out.glob(f"{SPILL_PREFIX}*"))


def test_too_small_a_budget_names_the_option(big_index, tmp_path):
    with pytest.raises(ValueError, match=r"raise --memory \(now 20MB\)"):
        run_select(SelectConfig(archive=big_index, out=tmp_path / "sel", min_year=2015, memory="20MB"))
    assert not (tmp_path / "sel").exists()  # the folder the run made (lock, spill) is gone with it


def test_overwrite_keeps_the_previous_selection_when_the_query_fails(big_index, tmp_path):
    out = tmp_path / "sel"
    run_select(SelectConfig(archive=big_index, out=out, min_year=2020))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    failing = "CAST(caption AS INTEGER) > 0"  # binds, then fails on the first row: the manifest is being written
    with pytest.raises(ValueError, match="selection query failed"):
        # no held-out split: the streamed manifest query is the first to run the condition
        run_select(SelectConfig(archive=big_index, out=out, min_year=2015, where=failing, overwrite=True,
                                exclude_held_out=False))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_bad_budget_is_refused_by_the_command(big_index, tmp_path):
    result = CliRunner().invoke(app, ["select", str(big_index), "--out", str(tmp_path / "sel"), "--memory", "lots"])
    assert result.exit_code == 2 and "not a size" in " ".join(result.output.split())
    assert "Traceback" not in result.output
