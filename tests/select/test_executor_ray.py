"""`select --output shards` on a local 2-CPU Ray writes the same files, byte for byte, as the local executor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from biomedica.select.config import SelectConfig
from biomedica.select.run import run_select

pytestmark = pytest.mark.slow


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def _summary(data: bytes, out: Path) -> dict:
    """selection.json without what differs by design: where it was written, when and how it ran."""
    summary = json.loads(data.decode().replace(str(out), "OUT"))
    for key in ("executor", "workers"):
        summary["config"].pop(key)
    for key in ("created", "seconds", "samples_per_second", "resumed_shards"):
        summary.pop(key, None)
    return summary


@pytest.mark.parametrize("options", [{}, {"image_size": 48}, {"unit": "subfigure"}], ids=["copies", "training", "crops"])
def test_select_shards_on_ray_equal_local_byte_for_byte(local_ray, curated, tmp_path, options):
    archive, annotations = curated
    if options.get("unit") == "subfigure":
        from biomedica.archive.annotations import AnnotationStore
        from biomedica.curate.subfigures.run import SubfigureConfig, run_subfigures

        annotations = tmp_path / "annotations"  # a copy with subfigures; the shared fixture stays untouched
        annotations.mkdir()
        for table in curated[1].glob("*.parquet"):
            (annotations / table.name).write_bytes(table.read_bytes())
        run_subfigures(archive, AnnotationStore(annotations), SubfigureConfig(detector="gutter", ocr="off",
                                                                              progress=False))
    settings = dict(archive=archive, annotations=annotations, output="shards", samples_per_shard=7, **options)
    local = run_select(SelectConfig(out=tmp_path / "local", workers=2, **settings))
    remote = run_select(SelectConfig(out=tmp_path / "ray", workers=2, executor="ray", **settings))
    assert (remote.shards_written, remote.samples_written, remote.failed) == (
        local.shards_written, local.samples_written, local.failed)
    assert local.shards_written >= 3 and local.samples_written > 0
    a, b = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert sorted(a) == sorted(b)
    assert _summary(a.pop("selection.json"), tmp_path / "local") == _summary(b.pop("selection.json"), tmp_path / "ray")
    assert a == b and any(name.endswith(".tar") for name in a)


def test_a_ray_selection_resumes_locally(local_ray, curated, tmp_path):
    archive, annotations = curated
    settings = {"archive": archive, "annotations": annotations, "output": "shards", "samples_per_shard": 7, "workers": 2}
    first = run_select(SelectConfig(out=tmp_path / "ray", executor="ray", **settings))
    out = tmp_path / "ray"
    written = _files(out)
    (out / "selection.json").unlink()  # interrupted before the end: the last shard's index never published
    (out / f"{first.shards_written - 1:06d}.parquet").unlink()
    again = run_select(SelectConfig(out=out, **settings))  # the executor is not a setting a resume must match
    assert (again.shards_resumed, again.shards_written) == (first.shards_written - 1, 1)
    rewritten = _files(out)
    assert _summary(rewritten.pop("selection.json"), out) == _summary(written.pop("selection.json"), out)
    assert rewritten == written
