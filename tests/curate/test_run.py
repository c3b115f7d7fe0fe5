import sys

import pyarrow.parquet as pq
import pytest

from biomedica.curate.run import run_curate


def test_run_curate_writes_three_tables_keyed_by_every_sample(curation_archive, tmp_path):
    results = run_curate(curation_archive, tmp_path / "ann")
    assert [r.step for r in results] == ["dedup", "quality", "panels"]
    keys = None
    for result in results:
        table = pq.read_table(result.path)
        assert result.rows == table.num_rows == 51  # 45 demo samples + 2 exact + 4 copied
        column = table.column("key").to_pylist()
        assert column == sorted(column)
        keys = keys or column
        assert column == keys
    dedup = results[0].counts
    assert dedup["exact_duplicates"] >= 3 and dedup["near_duplicates"] >= 1 and dedup["eval_leaks"] == 0
    quality = pq.read_table(results[1].path).to_pylist()
    tiny = {r["key"] for r in quality if "tiny-image" in r["flags"]}
    assert tiny == {"PMC9000001_001", "PMC9000009_001"}  # the 44x170 and 47x208 demo images
    panels = {r["key"]: r for r in pq.read_table(results[2].path).to_pylist()}
    # the demo figure with two graphics and "(A) ... (B) ..." in one caption: one panel per graphic
    assert panels["PMC9000001_000"]["caption_letters"] == 2 and panels["PMC9000001_000"]["graphics_in_figure"] == 2
    assert panels["PMC9000001_000"]["panel_type"] == "single"
    assert not (tmp_path / "ann" / "errors-panels.parquet").exists()


def test_default_folder_and_unknown_step(curation_archive, tmp_path):
    with pytest.raises(ValueError, match="unknown curate step"):
        run_curate(curation_archive, tmp_path, steps=("dedupe",))
    with pytest.raises(FileNotFoundError, match="biomedica ingest"):
        run_curate(tmp_path / "nope")


def test_core_imports_without_torch():
    import subprocess

    code = (
        "import sys, biomedica.curate, biomedica.curate.cli, biomedica.select, biomedica.select.cli;"
        "bad = [m for m in ('torch', 'open_clip', 'sklearn', 'timm') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
