"""Clustering at scale: seeded-sample fit and per-part assignment equal the all-in-memory run."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("sklearn")

from biomedica.archive.annotations import AnnotationStore
from biomedica.curate.cluster import (
    CLUSTERS_SCHEMA,
    assign_clusters,
    cluster_archive,
    embedding_parts,
    fit_clusters,
    sample_embeddings,
)
from biomedica.curate.config import ClusterConfig
from biomedica.curate.embed import read_embeddings


def _write_parts(store: AnnotationStore, name: str, n_parts: int = 7, per_part: int = 60, dim: int = 24, seed: int = 0):
    """Embedding parts shaped like curate embed's (float16 rows + keys), keys interleaved across parts, NaN rows."""
    rng = np.random.default_rng(seed)
    folder = store.embeddings_dir(name)
    folder.mkdir(parents=True)
    centres = rng.normal(size=(6, dim)) * 6
    for p in range(n_parts):
        rows = 5 if p == n_parts - 1 else per_part  # a last shard with a few samples
        keys = [f"PMC{1000 + i * n_parts + p}_{p % 3:03d}" for i in range(rows)]  # not sorted across parts
        vectors = (centres[rng.integers(0, 6, rows)] + rng.normal(size=(rows, dim))).astype(np.float16)
        vectors[p % rows] = np.nan  # an undecodable image
        np.save(folder / f"commercial-{p:06d}.image.npy", vectors)
        pq.write_table(pa.table({"key": keys}), folder / f"commercial-{p:06d}.keys.parquet")


def _same(a: pa.Table, b: pa.Table) -> bool:
    """Equal tables, NaN distances (undecodable images) equal to each other; no nulls anywhere."""
    return (a.schema.equals(b.schema) and a.column("key").equals(b.column("key"))
            and a.column("cluster").equals(b.column("cluster"))
            and a.column("distance").null_count == b.column("distance").null_count == 0
            and np.array_equal(a.column("distance").to_numpy(), b.column("distance").to_numpy(), equal_nan=True))


def _in_memory(store, config):
    keys, vectors = read_embeddings(store, config.embeddings, "image")
    model = fit_clusters(vectors, config)
    labels, distances = assign_clusters(model, vectors)
    table = pa.table({"key": keys, "cluster": pa.array(labels, pa.int32()), "distance": pa.array(distances, pa.float32())},
                     schema=CLUSTERS_SCHEMA)
    return model, table


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_streamed_run_equals_the_in_memory_run(tmp_path, workers):
    store = AnnotationStore(tmp_path / "annotations")
    _write_parts(store, "e")
    config = ClusterConfig(embeddings="e", k=6, pca_dim=5, backend="sklearn", workers=workers)
    run = cluster_archive(tmp_path, store, config)
    model, table = _in_memory(store, config)
    assert np.array_equal(run.model.centroids, model.centroids) and np.array_equal(run.model.components, model.components)
    written = store.read("clusters")
    assert _same(written, table)
    assert run.rows == 6 * 60 + 5 and run.parts == 7 and run.model.info["usable_vectors"] == 6 * 59 + 4
    assert sorted(p.name for p in store.table_path("clusters").parent.iterdir()) == ["clusters.parquet", "embeddings",
                                                                                     "models"]


@pytest.mark.slow
def test_assign_only_with_a_fit_sample_model_equals_assigning_all_at_once(tmp_path):
    store = AnnotationStore(tmp_path / "annotations")
    _write_parts(store, "e", n_parts=5, per_part=80)
    config = ClusterConfig(embeddings="e", k=6, pca_dim=5, backend="sklearn", fit_sample=50)
    run = cluster_archive(tmp_path, store, config)
    assert run.model.info["train_vectors"] == 50
    keys, vectors = read_embeddings(store, "e", "image")
    labels, distances = assign_clusters(run.model, vectors)
    written = store.read("clusters")
    assert written.column("key").to_pylist() == keys
    assert np.array_equal(written.column("cluster").to_numpy(), labels)
    assert np.array_equal(written.column("distance").to_numpy(), distances, equal_nan=True)
    again = cluster_archive(tmp_path, store, ClusterConfig(embeddings="e", k=9, seed=3, workers=2), refit=False)
    assert again.model.k == 6 and _same(store.read("clusters"), written)


def test_the_seeded_sample_does_not_depend_on_how_the_rows_are_split(tmp_path):
    one, two = AnnotationStore(tmp_path / "a"), AnnotationStore(tmp_path / "b")
    _write_parts(one, "e", n_parts=6, per_part=40)
    keys, vectors = read_embeddings(one, "e", "image")
    folder = two.embeddings_dir("e")
    folder.mkdir(parents=True)
    for p, rows in enumerate(np.array_split(np.arange(len(keys)), 4)):  # the same rows in 4 key-sorted parts
        np.save(folder / f"x-{p}.image.npy", vectors[rows])
        pq.write_table(pa.table({"key": [keys[i] for i in rows]}), folder / f"x-{p}.keys.parquet")
    a, usable_a = sample_embeddings(embedding_parts(one, "e"), 30, seed=1)
    b, usable_b = sample_embeddings(embedding_parts(two, "e"), 30, seed=1)
    assert usable_a == usable_b == 5 * 39 + 4 and a.shape == (30, 24) and np.array_equal(a, b)
    c, _ = sample_embeddings(embedding_parts(one, "e"), 30, seed=2)
    assert not np.array_equal(a, c)


def test_a_fit_sample_below_k_is_refused(tmp_path):
    store = AnnotationStore(tmp_path / "annotations")
    _write_parts(store, "e", n_parts=2)
    with pytest.raises(ValueError, match="fit-sample 3 is below k=6"):
        cluster_archive(tmp_path, store, ClusterConfig(embeddings="e", k=6, fit_sample=3))


def test_cli_cluster_with_a_fit_sample_prints_the_run(tmp_path):
    import typer
    from typer.testing import CliRunner

    from biomedica.cli.curate import curate_app

    app = typer.Typer()
    app.add_typer(curate_app)

    store = AnnotationStore(tmp_path / "annotations")
    _write_parts(store, "e", n_parts=3, per_part=40)
    result = CliRunner().invoke(app, ["curate", "cluster", str(tmp_path), "--annotations", str(store.root),
                                      "--embeddings", "e", "--k", "4", "--pca-dim", "3", "--backend", "sklearn",
                                      "--fit-sample", "30"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "85 samples in 4 clusters (sklearn" in said and "on 30 vectors); 3 parts assigned by local x 1" in said
    result = CliRunner().invoke(app, ["curate", "cluster", str(tmp_path), "--annotations", str(store.root),
                                      "--embeddings", "e", "--k", "4", "--executor", "slurm"])
    assert result.exit_code != 0 and "Traceback" not in result.output


@pytest.mark.slow
def test_ray_assignment_equals_the_local_run(local_ray, tmp_path):
    store = AnnotationStore(tmp_path / "annotations")
    _write_parts(store, "e")
    config = ClusterConfig(embeddings="e", k=6, pca_dim=5, backend="sklearn", executor="ray", workers=2)
    run = cluster_archive(tmp_path, store, config)
    model, table = _in_memory(store, config)
    assert np.array_equal(run.model.centroids, model.centroids) and _same(store.read("clusters"), table)
