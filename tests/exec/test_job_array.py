"""Executor array: job-array tasks write disjoint units; a final plain run finalizes an identical archive."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from biomedica.archive import verify_archive
from biomedica.archive.reader import iter_samples
from biomedica.exec.job_array import ArrayTask, ArrayTaskError, array_task_from_env
from biomedica.images import ImageConfig
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.pipeline import WorkUnit, plan_units
from biomedica.ingest.run import run_ingest
from biomedica.ingest.sources.directory import DirectorySource
from biomedica.io.lock import LOCK_NAME
from biomedica.testing.processes import cli_waiting_for, release_when_ready


def test_task_position_from_slurm_or_biomedica_variables():
    assert array_task_from_env({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}) == ArrayTask(3, 4)
    slurm_from_one = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "2"}
    assert array_task_from_env(slurm_from_one) == ArrayTask(0, 2)
    assert array_task_from_env({"BIOMEDICA_TASK_INDEX": "0", "BIOMEDICA_TASK_COUNT": "1"}) == ArrayTask(0, 1)
    with pytest.raises(ArrayTaskError, match="sbatch --array"):
        array_task_from_env({})
    with pytest.raises(ArrayTaskError, match="out of range"):
        array_task_from_env({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "2"})
    with pytest.raises(ArrayTaskError, match="integers"):
        array_task_from_env({"BIOMEDICA_TASK_INDEX": "a", "BIOMEDICA_TASK_COUNT": "2"})
    owned = [u.unit_id for u in (WorkUnit(i, ()) for i in range(7)) if ArrayTask(1, 3).owns(u)]
    assert owned == [1, 4]


def test_array_tasks_then_final_run_equal_one_local_build(demo_corpus, demo_archive, tmp_path, monkeypatch):
    out = tmp_path / "archive"
    config = IngestConfig(input=demo_corpus, output=out, workers=1, articles_per_unit=4, progress=False)
    runs = []
    for index in (1, 0):  # tasks finish in any order
        monkeypatch.setenv("BIOMEDICA_TASK_INDEX", str(index))
        monkeypatch.setenv("BIOMEDICA_TASK_COUNT", "2")
        runs.append(run_ingest(config.model_copy(update={"executor": "array"})))
    assert runs[0].units_run + runs[1].units_run == runs[0].units_total > 2
    assert runs[1].units_skipped == runs[0].units_run  # task 0 sees task 1's units as done
    final = run_ingest(config)
    assert final.units_run == 0 and final.units_skipped == final.units_total
    expected = sorted(p.relative_to(demo_archive) for p in demo_archive.glob("*/*.tar"))
    assert sorted(p.relative_to(out) for p in out.glob("*/*.tar")) == expected
    for rel in expected:
        assert (out / rel).read_bytes() == (demo_archive / rel).read_bytes()
    for group in ("commercial", "noncommercial", "other"):
        if (demo_archive / group / "sizes.json").exists():
            assert (out / group / "sizes.json").read_text() == (demo_archive / group / "sizes.json").read_text()




@pytest.mark.slow
def test_concurrent_array_tasks_then_final_run_equal_one_local_build(demo_corpus, demo_archive, tmp_path):
    out, go = tmp_path / "archive", tmp_path / "go"
    cli = [*cli_waiting_for(go), "ingest", str(demo_corpus), "--out", str(out),
           "--articles-per-unit", "4", "--workers", "1", "--executor", "array", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "BIOMEDICA_TASK_COUNT": "2"}
    tasks = [subprocess.Popen(cli, env=env | {"BIOMEDICA_TASK_INDEX": str(i)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    release_when_ready(go, tasks)
    outputs = [t.communicate(timeout=300) for t in tasks]
    assert [t.returncode for t in tasks] == [0, 0], outputs
    assert not (out / "manifest.json").exists()  # tasks leave the manifest and sizes.json to the final run
    assert not list(out.glob("*/sizes.json"))
    assert not list(out.glob(f"{LOCK_NAME}*"))

    final = run_ingest(IngestConfig(input=demo_corpus, output=out, workers=1, articles_per_unit=4, progress=False))
    assert final.units_run == 0 and final.units_skipped == final.units_total == 3
    assert verify_archive(out) == []
    expected = sorted(p.relative_to(demo_archive) for p in demo_archive.glob("*/*.tar"))
    assert sorted(p.relative_to(out) for p in out.glob("*/*.tar")) == expected
    for rel in expected:
        assert (out / rel).read_bytes() == (demo_archive / rel).read_bytes()
    for sizes in demo_archive.glob("*/sizes.json"):
        assert (out / sizes.relative_to(demo_archive)).read_text() == sizes.read_text()
    assert list(iter_samples(out)) == list(iter_samples(demo_archive))  # sample for sample, images included


def test_old_ingest_path_keeps_run_array_task_and_its_signature(demo_corpus, tmp_path, monkeypatch):
    from biomedica.ingest import executors_array as old

    assert (old.ArrayTask, old.ArrayTaskError, old.array_task_from_env) == (ArrayTask, ArrayTaskError, array_task_from_env)
    monkeypatch.setenv("BIOMEDICA_TASK_INDEX", "1")
    monkeypatch.setenv("BIOMEDICA_TASK_COUNT", "2")
    source = DirectorySource(demo_corpus)
    todo = plan_units(source.list_items(), 4)
    done = list(old.run_array_task(todo, source, tmp_path, ImageConfig(), 1))
    assert [unit.unit_id for unit, _ in done] == [1] and len(todo) == 3
    assert [stats.unit_id for _, stats in done] == [1] and done[0][1].total_samples > 0
