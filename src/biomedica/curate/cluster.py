"""PCA + K-means over stored image embeddings; the model is saved so new data can be assigned.

As in BIOMEDICA (PCA, then K-means with k = 2,000), but the fitted model is kept as plain
arrays (`models/<name>.npz`: PCA mean and components, centroids; `<name>.json`: settings
and provenance), not a pickle, so any later run, any machine and any library version can
assign new samples with `assign_clusters` (numpy only).

Backends: faiss (`faiss.PCAMatrix` + `faiss.Kmeans`) when installed, else scikit-learn
(`PCA` + `KMeans`). Both train on a random sample of at most k x max_points_per_centroid
vectors (faiss's own rule) and then assign every vector to its nearest centroid in blocks.

At archive scale (`cluster_archive`) the sample is drawn part by part with a seeded hash of the
key (`--fit-sample`), and assignment runs one embedding part per unit on `exec.run_units`.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.archive.annotations import AnnotationStore, EmbeddingPart, annotations_lock
from biomedica.curate.config import ClusterConfig
from biomedica.io.atomic import write_bytes_atomic, write_json_atomic, write_parquet_atomic
from biomedica.io.duckdb_sql import copy_to_parquet, sql_list

CLUSTERS_SCHEMA = pa.schema([("key", pa.string()), ("cluster", pa.int32()), ("distance", pa.float32())])
ASSIGN_BLOCK = 65_536
KMEANS_PLUS_PLUS_MAX_K = 256  # scikit-learn: k-means++ seeding below this k, random seeding above
SORT_MEMORY = "1GB"  # DuckDB's limit while it merges the assigned parts in key order (it spills beyond)


@dataclass
class ClusterModel:
    """A fitted PCA + K-means model as arrays: project with (x - mean) @ components.T."""

    mean: np.ndarray  # [d]
    components: np.ndarray  # [pca_dim, d]
    centroids: np.ndarray  # [k, pca_dim]
    info: dict

    @property
    def k(self) -> int:
        return len(self.centroids)

    def project(self, vectors: np.ndarray) -> np.ndarray:
        return (np.asarray(vectors, dtype=np.float32) - self.mean) @ self.components.T

    def save(self, directory: Path, name: str) -> Path:
        import io

        buffer = io.BytesIO()
        np.savez(buffer, mean=self.mean, components=self.components, centroids=self.centroids)
        path = Path(directory) / f"{name}.npz"
        write_bytes_atomic(path, buffer.getvalue())
        write_json_atomic(Path(directory) / f"{name}.json", self.info)
        return path

    @classmethod
    def load(cls, directory: Path, name: str) -> ClusterModel:
        path = Path(directory) / f"{name}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no saved cluster model; run `biomedica curate cluster` first")
        arrays = np.load(path, allow_pickle=False)
        info_path = path.with_suffix(".json")
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        return cls(arrays["mean"], arrays["components"], arrays["centroids"], info)


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _clean(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 copy and a mask of rows without NaN (failed images are NaN rows)."""
    data = np.asarray(vectors, dtype=np.float32)
    finite = np.isfinite(data).all(axis=1)
    return data, finite


def fit_clusters(vectors: np.ndarray, config: ClusterConfig) -> ClusterModel:
    """Fit PCA + K-means on (a sample of) `vectors` [n, d]."""
    data, finite = _clean(vectors)
    data = data[finite]
    n, dim = data.shape
    if n < config.k:
        raise ValueError(f"{n} usable vectors cannot make k={config.k} clusters; lower --k (at most {n})")
    pca_dim = min(config.pca_dim, dim, n)
    rng = np.random.default_rng(config.seed)
    limit = config.k * config.max_points_per_centroid
    train = data[rng.choice(n, size=limit, replace=False)] if n > limit else data
    backend = config.backend
    if backend == "auto":
        backend = "faiss" if faiss_available() else "sklearn"
    start = time.perf_counter()
    if backend == "faiss":
        mean, components, centroids = _fit_faiss(train, pca_dim, config)
    else:
        mean, components, centroids = _fit_sklearn(train, pca_dim, config)
    info = {
        "backend": backend, "k": config.k, "pca_dim": pca_dim, "input_dim": dim, "train_vectors": len(train),
        "iterations": config.iterations, "restarts": config.restarts, "seed": config.seed, "embeddings": config.embeddings,
        "fit_seconds": round(time.perf_counter() - start, 3),
    }
    return ClusterModel(mean.astype(np.float32), components.astype(np.float32), centroids.astype(np.float32), info)


def _fit_sklearn(train: np.ndarray, pca_dim: int, config: ClusterConfig):
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    pca = PCA(n_components=pca_dim, random_state=config.seed, svd_solver="auto").fit(train)
    projected = pca.transform(train).astype(np.float32)
    # k-means++ seeding is sequential over k and dominated the fit for large k (333 s vs 7 s for
    # k=2,000 on 100k vectors, 2 cores); random seeding is what faiss does too
    init = "k-means++" if config.k < KMEANS_PLUS_PLUS_MAX_K else "random"
    kmeans = KMeans(n_clusters=config.k, n_init=config.restarts, max_iter=config.iterations, random_state=config.seed,
                    tol=0.0, init=init)
    kmeans.fit(projected)
    return pca.mean_, pca.components_, kmeans.cluster_centers_


def _fit_faiss(train: np.ndarray, pca_dim: int, config: ClusterConfig):
    import faiss

    dim = train.shape[1]
    pca = faiss.PCAMatrix(dim, pca_dim)
    pca.train(np.ascontiguousarray(train))
    mean = faiss.vector_to_array(pca.mean).astype(np.float32)
    components = faiss.vector_to_array(pca.A).reshape(dim, dim)[:pca_dim] if pca.A.size() == dim * dim else (
        faiss.vector_to_array(pca.A).reshape(pca_dim, dim)
    )
    projected = np.ascontiguousarray((train - mean) @ components.T, dtype=np.float32)
    kmeans = faiss.Kmeans(pca_dim, config.k, niter=config.iterations, seed=config.seed, nredo=config.restarts,
                          max_points_per_centroid=config.max_points_per_centroid, verbose=False)
    kmeans.train(projected)
    return mean, components, kmeans.centroids


def assign_clusters(model: ClusterModel, vectors: np.ndarray, use_faiss: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(cluster id, squared distance) of each vector; NaN rows get cluster -1.

    Uses a faiss flat index when faiss is installed (same result, several times faster),
    else numpy; `use_faiss` forces one or the other.
    """
    data, finite = _clean(vectors)
    labels = np.full(len(data), -1, dtype=np.int32)
    distances = np.full(len(data), np.nan, dtype=np.float32)
    centroids = np.ascontiguousarray(model.centroids, dtype=np.float32)
    centroid_norms = (centroids**2).sum(axis=1)
    rows = np.nonzero(finite)[0]
    index = None
    if use_faiss or (use_faiss is None and faiss_available()):
        import faiss

        index = faiss.IndexFlatL2(centroids.shape[1])
        index.add(centroids)
    for start in range(0, len(rows), ASSIGN_BLOCK):
        block = rows[start : start + ASSIGN_BLOCK]
        projected = model.project(data[block])
        if index is not None:
            found_distances, found = index.search(np.ascontiguousarray(projected, dtype=np.float32), 1)
            labels[block] = found[:, 0]
            distances[block] = np.maximum(0.0, found_distances[:, 0])
            continue
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2 ; argmin does not need |x|^2
        scores = centroid_norms[None, :] - 2.0 * projected @ centroids.T
        best = scores.argmin(axis=1)
        labels[block] = best
        distances[block] = np.maximum(0.0, scores[np.arange(len(block)), best] + (projected**2).sum(axis=1))
    return labels, distances


def embedding_parts(store: AnnotationStore, name: str, kind: str = "image") -> list[EmbeddingPart]:
    """The finished parts of embedding folder `name` (AnnotationStore.embedding_parts)."""
    return store.embedding_parts(name, kind)


def _part_keys(part: EmbeddingPart) -> pa.Array:
    return pq.read_table(part.keys, columns=["key"]).column("key").combine_chunks()


def _sample_rank(seed: int, key: str) -> bytes:
    """A seeded pseudo-random rank of a key: the fit sample is the same whatever the parts or workers."""
    return hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()


@dataclass(frozen=True)
class _SampleJob:
    limit: int
    seed: int


def _sample_part(part: EmbeddingPart, job: _SampleJob) -> tuple[int, list[tuple[bytes, str, int]]]:
    """(usable rows of the part, its `limit` lowest-ranked usable rows as (rank, key, row))."""
    keys = _part_keys(part).to_pylist()
    finite = _clean(np.load(part.vectors, mmap_mode="r", allow_pickle=False))[1]
    ranked = ((_sample_rank(job.seed, key), key, row) for row, key in enumerate(keys) if finite[row])
    return int(finite.sum()), heapq.nsmallest(job.limit, ranked)


def sample_embeddings(
    parts: list[EmbeddingPart], limit: int, seed: int, executor: str = "local", workers: int = 1
) -> tuple[np.ndarray, int]:
    """(float32 [m, d] sample sorted by key, usable rows in all parts): the `limit` lowest seeded ranks.

    Every usable row when there are at most `limit` (then equal to the key-sorted finite rows that
    an in-memory fit trains on). Memory: `limit` rows, never the whole folder.
    """
    from biomedica.exec import run_units

    usable = 0
    chosen: list[tuple[bytes, str, int, int]] = []
    index = {part.stem: i for i, part in enumerate(parts)}
    for part, (count, lowest) in run_units(_sample_part, parts, executor=executor, workers=workers,
                                           context=_SampleJob(limit, seed)):
        usable += count
        chosen = heapq.nsmallest(limit, chosen + [(rank, key, index[part.stem], row) for rank, key, row in lowest])
    chosen.sort(key=lambda c: c[1])
    dim = np.load(parts[0].vectors, mmap_mode="r", allow_pickle=False).shape[1]
    sample = np.empty((len(chosen), dim), dtype=np.float32)
    by_part: dict[int, list[tuple[int, int]]] = {}
    for position, (_, _, part_index, row) in enumerate(chosen):
        by_part.setdefault(part_index, []).append((position, row))
    for part_index, rows in by_part.items():
        vectors = np.load(parts[part_index].vectors, mmap_mode="r", allow_pickle=False)
        positions, picked = zip(*rows)
        sample[list(positions)] = np.asarray(vectors[list(picked)], dtype=np.float32)
    return sample, usable


@dataclass(frozen=True)
class _AssignJob:
    model: ClusterModel
    folder: Path


def _assign_part(part: EmbeddingPart, job: _AssignJob) -> int:
    """Assign one part's vectors and write its (key, cluster, distance) rows to the run folder."""
    labels, distances = assign_clusters(job.model, np.load(part.vectors, mmap_mode="r", allow_pickle=False))
    table = pa.table({"key": _part_keys(part), "cluster": pa.array(labels, pa.int32()),
                      "distance": pa.array(distances, pa.float32())}, schema=CLUSTERS_SCHEMA)
    write_parquet_atomic(job.folder / f"{part.stem}.parquet", table)
    return table.num_rows


@dataclass
class ClusterRun:
    """What `cluster_archive` did: rows written, parts assigned, the model used."""

    rows: int
    parts: int
    model: ClusterModel
    path: Path
    seconds: float


def cluster_archive(archive: Path, store: AnnotationStore, config: ClusterConfig, refit: bool = True) -> ClusterRun:
    """Fit on a seeded sample, assign every embedding part as a unit, write clusters.parquet sorted by key.

    Memory is the fit sample plus one part per worker, not the embedding folder: parts are
    assigned by `exec.run_units` (local processes or Ray) into a run folder beside the table,
    and DuckDB merges them in key order under `SORT_MEMORY`. The result equals assigning all
    vectors at once with the same model. Holds the annotations' write lock.
    """
    started = time.perf_counter()
    with annotations_lock(archive, store, "biomedica curate cluster"):
        parts = embedding_parts(store, config.embeddings, "image")
        name = f"clusters-{config.embeddings}"
        if refit:
            limit = config.k * config.max_points_per_centroid
            if config.fit_sample is not None:
                if config.fit_sample < config.k:
                    raise ValueError(f"--fit-sample {config.fit_sample} is below k={config.k}; fit on at least k vectors")
                limit = min(limit, config.fit_sample)
            sample, usable = sample_embeddings(parts, limit, config.seed, config.executor, config.workers)
            model = fit_clusters(sample, config)  # at most `limit` rows: it trains on all of them
            model.info["usable_vectors"] = usable
            model.save(store.models_dir(), name)
        else:
            model = ClusterModel.load(store.models_dir(), name)
        rows = _assign_and_merge(store, parts, model, config)
    return ClusterRun(rows, len(parts), model, store.table_path("clusters"), time.perf_counter() - started)


def _assign_and_merge(store: AnnotationStore, parts: list[EmbeddingPart], model: ClusterModel, config: ClusterConfig) -> int:
    from biomedica.exec import run_units

    target = store.table_path("clusters")
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".clusters-run-", dir=target.parent))  # this run's, removed below
    try:
        job = _AssignJob(model, folder)
        for _ in run_units(_assign_part, parts, executor=config.executor, workers=config.workers, context=job):
            pass
        files = sql_list(folder / f"{p.stem}.parquet" for p in parts)
        copy_to_parquet(f"SELECT key, cluster, distance FROM read_parquet({files}) ORDER BY key", target,
                        memory=SORT_MEMORY, spill=folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return pq.ParquetFile(target).metadata.num_rows


def cluster_embeddings(
    archive: Path, store: AnnotationStore, config: ClusterConfig, refit: bool = True,
) -> tuple[pa.Table, ClusterModel]:
    """`cluster_archive`, returning the written table (small archives and tests; it reads the whole table).

    With `refit=False` the saved model is loaded and only assigns (new shards embedded since
    keep the cluster ids, and therefore the expert labels, of the first fit).
    """
    run = cluster_archive(archive, store, config, refit=refit)
    return store.read("clusters"), run.model
