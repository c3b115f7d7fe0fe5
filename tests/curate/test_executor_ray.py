"""Curate embed / zeroshot / subfigures on a local 2-CPU Ray write the same bytes as the local executor."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("open_clip")

from biomedica.archive.annotations import AnnotationStore
from biomedica.curate.concepts import zero_shot_labels
from biomedica.curate.config import EmbedConfig, ZeroShotConfig
from biomedica.curate.embed import embed_archive
from biomedica.curate.subfigures.run import SubfigureConfig, run_subfigures
from biomedica.exec import ExecutorError

pytestmark = pytest.mark.slow


def _config(tiny_clip_config: Path, **overrides) -> EmbedConfig:
    values = {"model": tiny_clip_config.stem, "model_config_json": tiny_clip_config, "batch_size": 8, "device": "cpu",
              "progress": False}
    return EmbedConfig(**(values | overrides))


def _digests(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` (meta.json without its creation time), by relative path."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        data = path.read_bytes()
        if path.name == "meta.json":
            meta = json.loads(data)
            meta.pop("created", None)
            data = json.dumps(meta, sort_keys=True).encode()
        out[path.relative_to(root).as_posix()] = hashlib.sha256(data).hexdigest()
    return out


def test_embed_on_ray_equals_local_byte_for_byte_and_resumes_across_executors(
    local_ray, curation_archive, tiny_clip_config, tmp_path
):
    local, remote = AnnotationStore(tmp_path / "local"), AnnotationStore(tmp_path / "ray")
    here = embed_archive(curation_archive, local, _config(tiny_clip_config))
    there = embed_archive(curation_archive, remote, _config(tiny_clip_config, executor="ray", shard_workers=2))
    assert (there.shards_done, there.samples, there.failed, there.dim) == (here.shards_done, here.samples,
                                                                            here.failed, here.dim) == (9, 51, 0, 32)
    assert there.executor == "ray" and there.samples_per_second > 0
    a, b = _digests(local.root), _digests(remote.root)
    assert a == b and sum(name.endswith(".image.npy") for name in a) == 9 and any(".text.npy" in n for n in a)

    # a part lost its completion file: the local executor redoes only that shard, with the same bytes
    folder = remote.embeddings_dir(_config(tiny_clip_config).folder_name())
    next(iter(sorted(folder.glob("*.keys.parquet")))).unlink()
    again = embed_archive(curation_archive, remote, _config(tiny_clip_config))
    assert (again.shards_done, again.shards_skipped) == (1, 8)
    assert _digests(remote.root) == a


def test_embed_local_process_pool_equals_inline(curation_archive, tiny_clip_config, tmp_path):
    inline, pool = AnnotationStore(tmp_path / "inline"), AnnotationStore(tmp_path / "pool")
    embed_archive(curation_archive, inline, _config(tiny_clip_config, captions=False))
    seen = []
    result = embed_archive(curation_archive, pool, _config(tiny_clip_config, captions=False, shard_workers=2),
                           progress=seen.append)
    assert sum(seen) == result.samples == 51  # progress counts samples as their shards complete
    assert _digests(inline.root) == _digests(pool.root)
    name = _config(tiny_clip_config).folder_name()
    a = np.load(inline.embeddings_dir(name) / "commercial-000000.image.npy")
    b = np.load(pool.embeddings_dir(name) / "commercial-000000.image.npy")
    assert a.dtype == np.float16 and np.array_equal(a, b)


def test_zeroshot_on_ray_equals_local(local_ray, curation_archive, tiny_clip_config, tmp_path):
    local, remote = AnnotationStore(tmp_path / "local"), AnnotationStore(tmp_path / "ray")
    table = zero_shot_labels(curation_archive, local, ZeroShotConfig(embed=_config(tiny_clip_config, captions=False)))
    ray_config = ZeroShotConfig(embed=_config(tiny_clip_config, captions=False, executor="ray", shard_workers=2))
    assert zero_shot_labels(curation_archive, remote, ray_config).equals(table)
    assert table.num_rows == 51 and table.column("key").to_pylist() == sorted(table.column("key").to_pylist())
    assert (local.root / "concepts.parquet").read_bytes() == (remote.root / "concepts.parquet").read_bytes()
    assert _digests(local.root) == _digests(remote.root)


def test_subfigures_on_ray_equal_local(local_ray, curation_archive, tmp_path):
    local, remote = AnnotationStore(tmp_path / "local"), AnnotationStore(tmp_path / "ray")
    here = run_subfigures(curation_archive, local, SubfigureConfig(detector="gutter", ocr="off", progress=False))
    there = run_subfigures(curation_archive, remote, SubfigureConfig(detector="gutter", ocr="off", progress=False,
                                                                     executor="ray", shard_workers=2))
    assert (there.figures, there.panels, there.failed, there.shards_done) == (here.figures, here.panels, here.failed,
                                                                              here.shards_done)
    assert here.shards_done == 9 and here.panels >= here.figures > 0
    assert _digests(local.root) == _digests(remote.root)


def test_gpu_share_on_a_cluster_without_gpus_is_refused_at_once(local_ray, curation_archive, tiny_clip_config, tmp_path):
    config = _config(tiny_clip_config, executor="ray", gpus_per_worker=0.25)
    with pytest.raises(ExecutorError, match="the Ray cluster has 0 GPUs; drop --gpus-per-worker"):
        embed_archive(curation_archive, AnnotationStore(tmp_path), config)
    with pytest.raises(ValueError, match="applies to --executor ray only"):
        _config(tiny_clip_config, gpus_per_worker=0.5)


def test_cli_options_and_summary(local_ray, curation_archive, tiny_clip_config, tmp_path):
    import typer
    from typer.testing import CliRunner

    from biomedica.cli.curate import curate_app

    app = typer.Typer()
    app.add_typer(curate_app)
    base = ["curate", "embed", str(curation_archive), "--annotations", str(tmp_path), "--model", tiny_clip_config.stem,
            "--model-config", str(tiny_clip_config), "--device", "cpu", "--no-progress", "--no-captions"]
    result = CliRunner().invoke(app, [*base, "--executor", "ray", "--shard-workers", "2"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "embedded 51 samples from 9 shards" in text and "executor ray (2 shard workers)" in text and "samples/s" in text
    refused = CliRunner().invoke(app, [*base, "--gpus-per-worker", "0.5"])
    assert refused.exit_code == 2 and "applies to --executor ray only" in " ".join(refused.output.split())
    assert "Traceback" not in refused.output
    unknown = CliRunner().invoke(app, [*base, "--executor", "slurm"])
    assert unknown.exit_code == 2 and "executor" in unknown.output
