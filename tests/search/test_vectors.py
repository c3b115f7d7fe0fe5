"""The dense vector index: exact search equals brute force, IVF recall, incremental adds, crash safety."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from biomedica.search import vectors as vec_module
from biomedica.search.vectors import VectorIndex, VectorIndexError, VectorIndexMissing, normalise, update_vectors

pytest.importorskip("faiss")  # the index extra


def clustered(n: int, dim: int = 32, clusters: int = 40, noise: float = 0.6, seed: int = 0) -> np.ndarray:
    """Vectors around `clusters` random centres (like embeddings: neighbours exist, but not trivially)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1234).standard_normal((clusters, dim))
    return (centres[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, dim))).astype(np.float32)


def brute_force(stored: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int, allowed=None):
    """numpy reference: top-k inner product of normalised vectors among the allowed ids, -1 padded."""
    scores = normalise(queries) @ normalise(stored).T
    if allowed is not None:
        scores[:, ~allowed[ids]] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top_scores = np.take_along_axis(scores, order, axis=1)
    top_ids = np.where(np.isfinite(top_scores), ids[order], -1)
    if top_ids.shape[1] < k:
        pad = k - top_ids.shape[1]
        top_ids = np.pad(top_ids, ((0, 0), (0, pad)), constant_values=-1)
    return top_ids


def test_exact_search_equals_brute_force(tmp_path):
    x = clustered(3000)
    ids = np.arange(3000, dtype=np.int64) * 3  # sparse doc ids (superseded docs leave holes)
    folder = tmp_path / "vec"
    for start in range(0, 3000, 1000):  # three segments
        result = update_vectors(folder, ids[start:start + 1000], x[start:start + 1000].astype(np.float16))
        assert result.mode == "exact" and result.added == 1000
    index = VectorIndex.open(folder)
    assert (index.count, index.dim, index.mode, index.recall_at_10) == (3000, 32, "exact", None)
    assert np.array_equal(index.doc_ids, ids)
    stored = x.astype(np.float16).astype(np.float32)
    queries = clustered(20, seed=7)

    got, scores = index.search(queries, 10)
    assert np.array_equal(got, brute_force(stored, ids, queries, 10))
    assert scores.dtype == np.float32 and np.all(np.diff(scores, axis=1) <= 0)

    allowed = np.zeros(ids.max() + 1, dtype=bool)
    allowed[ids[np.random.default_rng(3).random(3000) < 0.3]] = True
    got, _ = index.search(queries, 10, allowed)
    assert np.array_equal(got, brute_force(stored, ids, queries, 10, allowed))
    assert allowed[got].all()

    few = np.zeros(ids.max() + 1, dtype=bool)
    few[ids[[5, 500, 2500]]] = True
    got, scores = index.search(queries, 10, few)
    assert np.array_equal(got, brute_force(stored, ids, queries, 10, few))
    assert (got[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()
    assert set(got[0, :3]) == set(ids[[5, 500, 2500]])

    short = np.ones(10, dtype=bool)  # shorter than the doc ids: the rest counts as not allowed
    got, _ = index.search(queries[:1], 5, short)
    assert set(got[0]) <= {0, 3, 6, 9, -1}

    assert np.allclose(index.vector(int(ids[42])), normalise(stored[42])[0], atol=1e-6)
    assert index.vector(1) is None and index.vector(10**9) is None


def test_ivf_recall_recorded_and_filters(tmp_path):
    x = clustered(20_000, dim=48, clusters=60, noise=0.7)
    ids = np.arange(20_000, dtype=np.int64)
    folder = tmp_path / "vec"
    update_vectors(folder, ids[:4000], x[:4000], exact_max=5000)
    result = update_vectors(folder, ids[4000:], x[4000:], exact_max=5000)
    assert result.mode == "ivf" and result.total == 20_000
    assert result.recall_at_10 is not None and result.recall_at_10 >= 0.9
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["recall_at_10"] == result.recall_at_10 and manifest["recall_queries"] == 200
    assert manifest["segments"] == [] and len(manifest["parts"]) == 1  # each vector stored once
    assert not list(folder.glob("seg-*"))

    index = VectorIndex.open(folder)
    assert (index.mode, index.count, index.recall_at_10, index.nprobe) == ("ivf", 20_000, result.recall_at_10, 32)
    assert index.nlist == manifest["nlist"] > 32
    queries = clustered(30, dim=48, clusters=60, noise=0.7, seed=9)
    truth, _ = index.exact_search(queries, 10)
    assert np.array_equal(truth, brute_force(x, ids, queries, 10))
    got, _ = index.search(queries, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth)])
    assert overlap >= 0.85

    selective = np.zeros(20_000, dtype=bool)  # 1%: searched exactly over the allowed subset
    selective[np.random.default_rng(5).choice(20_000, 200, replace=False)] = True
    got, _ = index.search(queries, 10, selective)
    assert np.array_equal(got, brute_force(x, ids, queries, 10, selective))

    broad = np.random.default_rng(6).random(20_000) < 0.3
    got, _ = index.search(queries, 10, broad)
    assert broad[got[got >= 0]].all() and (got >= 0).all()

    assert np.allclose(index.vector(123), normalise(x[123])[0], atol=1e-6)


def test_incremental_add_keeps_earlier_results_without_retraining(tmp_path):
    x = clustered(6000)
    folder = tmp_path / "vec"
    update_vectors(folder, np.arange(6000), x, exact_max=2000)
    first = folder / json.loads((folder / "manifest.json").read_text())["parts"][0]["file"]
    first_bytes = first.read_bytes()
    queries = clustered(10, seed=11)
    before_ids, before_scores = VectorIndex.open(folder).search(queries, 10)

    far = -10 * np.abs(clustered(500, seed=12))  # far from every earlier vector and query
    result = update_vectors(folder, np.arange(6000, 6500), far, exact_max=2000)
    assert (result.added, result.total, result.mode) == (500, 6500, "ivf") and result.recall_at_10 is not None
    index = VectorIndex.open(folder)
    assert first.read_bytes() == first_bytes  # the trained part is neither retrained nor rewritten
    after_ids, after_scores = index.search(queries, 10)
    assert np.array_equal(after_ids, before_ids) and np.allclose(after_scores, before_scores)
    got, _ = index.search(far[:5], 1)
    assert list(got[:, 0]) == list(range(6000, 6005))
    assert np.array_equal(index.doc_ids, np.arange(6500))

    for i in range(vec_module.MAX_PARTS + 1):  # many small updates: parts are compacted, nothing lost
        update_vectors(folder, np.arange(7000 + 10 * i, 7010 + 10 * i), -10 * np.abs(clustered(10, seed=100 + i)))
    index = VectorIndex.open(folder)
    assert len(index.manifest["parts"]) <= vec_module.MAX_PARTS and index.count == 6500 + 10 * (vec_module.MAX_PARTS + 1)
    assert first.read_bytes() == first_bytes
    assert np.array_equal(index.search(queries, 10)[0], before_ids)
    assert len(list(folder.glob("ivf-*.faiss"))) == len(index.manifest["parts"])


@pytest.mark.parametrize("crossing", [False, True], ids=["segment", "ivf-conversion"])
def test_crash_before_manifest_leaves_previous_state(tmp_path, monkeypatch, crossing):
    x = clustered(3000)
    folder = tmp_path / "vec"
    update_vectors(folder, np.arange(1000), x[:1000], exact_max=1500)
    before = VectorIndex.open(folder).search(x[:5], 10)

    def crash(path, obj):
        raise OSError("disk died")

    with monkeypatch.context() as patch:
        patch.setattr(vec_module, "write_json_atomic", crash)
        end = 3000 if crossing else 1200
        with pytest.raises(OSError):
            update_vectors(folder, np.arange(1000, end), x[1000:end], exact_max=1500)
    assert len(list(folder.glob("seg-*" if not crossing else "ivf-*"))) >= 1  # the orphan the crash left
    index = VectorIndex.open(folder)
    assert (index.count, index.mode) == (1000, "exact")
    after = index.search(x[:5], 10)
    assert np.array_equal(after[0], before[0])

    result = update_vectors(folder, np.arange(1000, 3000), x[1000:3000], exact_max=1500)  # the rerun
    assert (result.total, result.mode) == (3000, "ivf")
    manifest = json.loads((folder / "manifest.json").read_text())
    on_disk = sorted(p.name for p in folder.iterdir())
    assert on_disk == sorted(["manifest.json", *(p["file"] for p in manifest["parts"])])


def test_same_inputs_give_the_same_index(tmp_path):
    x = clustered(5000)
    for name in ("a", "b"):
        update_vectors(tmp_path / name, np.arange(5000), x, exact_max=1000, seed=3, threads=1)
    manifest = (tmp_path / "a" / "manifest.json").read_text()
    assert manifest == (tmp_path / "b" / "manifest.json").read_text()
    part = json.loads(manifest)["parts"][0]["file"]
    assert (tmp_path / "a" / part).read_bytes() == (tmp_path / "b" / part).read_bytes()


def test_ivf_parts_are_memory_mapped(tmp_path):
    folder = tmp_path / "vec"
    update_vectors(folder, np.arange(3000), clustered(3000), exact_max=1000)
    index = VectorIndex.open(folder)
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("no /proc/self/maps on this system")
    mapped = maps.read_text()
    assert str(folder / index.manifest["parts"][0]["file"]) in mapped


def test_open_missing_folder_says_what_to_run(tmp_path):
    with pytest.raises(VectorIndexMissing) as excinfo:
        VectorIndex.open(tmp_path / "nowhere")
    message = str(excinfo.value)
    assert str(tmp_path / "nowhere") in message and "biomedica index" in message and "\n" not in message


def test_bad_updates_are_refused_in_one_line(tmp_path):
    folder = tmp_path / "vec"
    update_vectors(folder, np.arange(10), clustered(10))
    cases = [
        (np.arange(10, 20), clustered(10, dim=16), "dimensions"),
        (np.arange(5, 15), clustered(10), "already"),
        (np.array([20, 20]), clustered(2), "distinct"),
        (np.arange(20, 22), np.full((2, 32), np.nan, dtype=np.float32), "NaN"),
    ]
    for ids, vectors, words in cases:
        with pytest.raises(VectorIndexError, match=words) as excinfo:
            update_vectors(folder, ids, vectors)
        assert str(folder) in str(excinfo.value) and "\n" not in str(excinfo.value)
    assert VectorIndex.open(folder).count == 10
    nothing = update_vectors(folder, np.empty(0, np.int64), np.empty((0, 32), np.float32))
    assert (nothing.added, nothing.total) == (0, 10)


def test_first_crossing_trains_on_every_vector_stored_and_added(tmp_path):
    """A VectorSource (memory-mapped pieces, row selections) is read in blocks; the IVF is trained on all of it."""
    x = clustered(10_000)
    np.save(tmp_path / "a.npy", x[:6000])
    np.save(tmp_path / "b.npy", x[6000:])
    a, b = np.load(tmp_path / "a.npy", mmap_mode="r"), np.load(tmp_path / "b.npy", mmap_mode="r")
    folder = tmp_path / "vec"
    update_vectors(folder, np.arange(500), x[:500], exact_max=1000)
    rows_a = np.arange(500, 6000)
    source = vec_module.VectorSource([(a, rows_a), (b, None)])
    ids = np.concatenate([rows_a, np.arange(6000, 10_000)])
    result = update_vectors(folder, ids, source, exact_max=1000)
    assert (result.mode, result.total, result.retrained) == ("ivf", 10_000, False)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["trained_count"] == 10_000 and manifest["nlist"] == vec_module.auto_nlist(10_000)
    index = VectorIndex.open(folder)
    assert np.array_equal(index.doc_ids, np.arange(10_000))
    for doc in (3, 700, 6500, 9999):
        assert np.allclose(index.vector(doc), normalise(x[doc])[0], atol=1e-6)
    assert result.recall_at_10 >= 0.9


def test_retrain_when_the_count_passes_8x_the_trained_count(tmp_path, monkeypatch):
    x = clustered(18_000)
    folder = tmp_path / "vec"
    first = update_vectors(folder, np.arange(2000), x[:2000], exact_max=1000)
    assert first.mode == "ivf" and not first.retrained
    trained = json.loads((folder / "manifest.json").read_text())
    assert (trained["trained_count"], trained["nlist"]) == (2000, vec_module.auto_nlist(2000))

    grown = update_vectors(folder, np.arange(2000, 14_000), x[2000:14_000], exact_max=1000)  # 7x: same centroids
    manifest = json.loads((folder / "manifest.json").read_text())
    assert not grown.retrained and manifest["nlist"] == trained["nlist"] and len(manifest["parts"]) == 2
    before = (folder / "manifest.json").read_text()

    def crash(path, obj):
        raise OSError("disk died")

    with monkeypatch.context() as patch:  # a crash while retraining leaves the previous index
        patch.setattr(vec_module, "write_json_atomic", crash)
        with pytest.raises(OSError):
            update_vectors(folder, np.arange(14_000, 18_000), x[14_000:], exact_max=1000)
    assert (folder / "manifest.json").read_text() == before and VectorIndex.open(folder).count == 14_000

    result = update_vectors(folder, np.arange(14_000, 18_000), x[14_000:], exact_max=1000)  # 9x: retrained
    assert result.retrained and (result.total, result.mode) == (18_000, "ivf")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["trained_count"] == 18_000 and manifest["nlist"] == vec_module.auto_nlist(18_000) > trained["nlist"]
    assert len(manifest["parts"]) == 1  # every vector in one new part; the old parts are gone
    assert sorted(p.name for p in folder.iterdir()) == sorted(["manifest.json", manifest["parts"][0]["file"]])
    index = VectorIndex.open(folder)
    assert np.array_equal(index.doc_ids, np.arange(18_000)) and index.nlist == manifest["nlist"]
    assert np.allclose(index.vector(123), normalise(x[123])[0], atol=1e-6)
    assert result.recall_at_10 >= 0.9 and index.recall_at_10 == result.recall_at_10
    queries = clustered(20, seed=21)
    truth = brute_force(x, np.arange(18_000), queries, 10)
    got, _ = index.search(queries, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth)]) >= 0.85
