import numpy as np
import pytest

pytest.importorskip("sklearn")

from biomedica.archive.annotations import AnnotationStore  # noqa: E402
from biomedica.curate.cluster import ClusterModel, assign_clusters, faiss_available, fit_clusters  # noqa: E402
from biomedica.curate.config import ClusterConfig  # noqa: E402


def _blobs(n_per=200, k=5, dim=48, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 10
    data = np.concatenate([centres[i] + rng.normal(size=(n_per, dim)) for i in range(k)])
    truth = np.repeat(np.arange(k), n_per)
    return data.astype(np.float16), truth


BACKENDS = ["sklearn"] + (["faiss"] if faiss_available() else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_kmeans_recovers_blobs_and_saved_model_assigns_new_data(backend, tmp_path):
    data, truth = _blobs()
    # faiss seeds K-means at random points (sklearn uses k-means++): a few restarts find all five blobs
    config = ClusterConfig(embeddings="x", k=5, pca_dim=8, iterations=20, restarts=5, backend=backend)
    model = fit_clusters(data, config)
    labels, distances = assign_clusters(model, data)
    # each true blob maps to exactly one cluster
    assert all(len(set(labels[truth == i].tolist())) == 1 for i in range(5))
    assert len(set(labels.tolist())) == 5 and np.all(distances >= 0)
    assert model.components.shape == (8, 48) and model.info["backend"] == backend
    model.save(tmp_path, "m")
    loaded = ClusterModel.load(tmp_path, "m")
    new_data, new_truth = _blobs(n_per=10, seed=0)
    assert np.array_equal(assign_clusters(loaded, new_data)[0], assign_clusters(model, new_data)[0])


def test_nan_rows_are_skipped_and_marked():
    data, _ = _blobs(n_per=50)
    data[3] = np.nan
    model = fit_clusters(data, ClusterConfig(embeddings="x", k=5, pca_dim=4, backend="sklearn"))
    labels, distances = assign_clusters(model, data)
    assert labels[3] == -1 and np.isnan(distances[3]) and (labels[np.arange(len(data)) != 3] >= 0).all()


def test_training_sample_is_capped_and_errors_are_clear(tmp_path):
    data, _ = _blobs(n_per=200)
    model = fit_clusters(data, ClusterConfig(embeddings="x", k=5, pca_dim=4, max_points_per_centroid=20, backend="sklearn"))
    assert model.info["train_vectors"] == 100
    with pytest.raises(ValueError, match="lower --k"):
        fit_clusters(data[:3], ClusterConfig(embeddings="x", k=5))
    with pytest.raises(FileNotFoundError, match="curate cluster"):
        ClusterModel.load(tmp_path, "missing")


def test_cluster_embeddings_writes_table(curation_archive, tiny_clip_config, tmp_path):
    pytest.importorskip("open_clip")
    from biomedica.curate.cluster import cluster_embeddings
    from biomedica.curate.config import EmbedConfig
    from biomedica.curate.embed import embed_archive

    store = AnnotationStore(tmp_path)
    embed_archive(curation_archive, store, EmbedConfig(model=tiny_clip_config.stem, model_config_json=tiny_clip_config,
                                                       name="tiny", captions=False, device="cpu"))
    table, model = cluster_embeddings(curation_archive, store, ClusterConfig(embeddings="tiny", k=4, pca_dim=8, backend="sklearn"))
    rows = {r["key"]: r["cluster"] for r in table.to_pylist()}
    assert len(rows) == 51 and set(rows.values()) <= {0, 1, 2, 3}
    assert rows["PMC9000004_000"] == rows["PMC9000100_000"]  # identical images, identical cluster
    assert (store.models_dir() / "clusters-tiny.npz").is_file() and store.read("clusters").num_rows == 51
    # assign-only keeps the saved model: same ids, even with another seed and k in the config
    again, reused = cluster_embeddings(curation_archive, store, ClusterConfig(embeddings="tiny", k=9, seed=5), refit=False)
    assert reused.k == 4 and again.column("cluster").to_pylist() == table.column("cluster").to_pylist()


@pytest.mark.skipif(not faiss_available(), reason="faiss not installed: the numpy assignment is the only one")
def test_faiss_and_numpy_assignment_agree():
    data, _ = _blobs(n_per=100)
    model = fit_clusters(data, ClusterConfig(embeddings="x", k=5, pca_dim=6, backend="sklearn"))
    faiss_labels, faiss_distances = assign_clusters(model, data, use_faiss=True)
    numpy_labels, numpy_distances = assign_clusters(model, data, use_faiss=False)
    assert np.array_equal(faiss_labels, numpy_labels)
    assert np.allclose(faiss_distances, numpy_distances, rtol=1e-3, atol=1e-2)
