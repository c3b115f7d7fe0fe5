"""The index's vector glue: curate embed parts -> doc ids -> search.vectors, incremental and crash-safe."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

pytest.importorskip("open_clip")

from biomedica.archive.annotations import AnnotationStore
from biomedica.curate.config import EmbedConfig
from biomedica.curate.embed import embed_archive, read_embeddings
from biomedica.index.build import build_index
from biomedica.index.config import IndexConfig
from biomedica.search.filters import SearchFilters
from biomedica.search.reader import SearchIndex


@pytest.fixture(scope="module")
def embedded(curation_archive, tmp_path_factory):
    """The curation archive's tiny-random embeddings (computed once; tests copy the folder before changing it)."""
    store = AnnotationStore(tmp_path_factory.mktemp("embedded") / "ann")
    config = EmbedConfig(model="tiny-random", batch_size=16, device="cpu", progress=False)
    embed_archive(curation_archive, store, config)
    return store.root, config


@pytest.mark.slow
def test_embeddings_become_vector_indexes_keyed_by_doc(curation_archive, embedded, tmp_path):
    shutil.copytree(embedded[0], tmp_path / "ann")
    store, config = AnnotationStore(tmp_path / "ann"), embedded[1]
    name = config.folder_name()
    folder = store.embeddings_dir(name)
    parts = sorted(folder.glob("*.keys.parquet"))
    held_back = parts[-2:]  # parts embedded "later": hidden from the first index run
    for part in held_back:
        part.rename(part.with_name("." + part.name))

    index_dir = tmp_path / "index"
    cfg = IndexConfig(archive=curation_archive, annotations=store.root, index_dir=index_dir, exact_max=30)
    first = build_index(cfg)
    assert {(v.name, v.kind) for v in first.vectors} == {(name, "image"), (name, "text")}
    assert not first.notes

    for part in held_back:
        part.with_name("." + part.name).rename(part)
    second = build_index(cfg)
    keys, images = read_embeddings(store, name, "image")
    by_kind = {v.kind: v for v in second.vectors}
    assert by_kind["image"].total == len(keys) and by_kind["image"].added > 0
    assert by_kind["image"].mode == "ivf" and by_kind["image"].recall_at_10 is not None  # crossed exact_max=30
    again = build_index(cfg)
    assert all(v.added == 0 for v in again.vectors)

    index = SearchIndex.open(index_dir, curation_archive)
    assert index.embedding_names() == [name] and index.embedding_meta(name)["dim"] == images.shape[1]
    vectors = index.vectors(None, "image")
    assert vectors.count == len(keys)
    for key, vector in list(zip(keys, images))[::7]:
        doc = index.doc_of(key)
        stored = vectors.vector(doc)
        expected = vector.astype(np.float32) / np.linalg.norm(vector.astype(np.float32))
        assert np.allclose(stored, expected, atol=1e-2), key
    allowed = index.mask(SearchFilters(license_group=["commercial"]))
    found, _ = vectors.search(images[:3].astype(np.float32), 5, allowed=allowed)
    assert all(allowed[d] for d in found[found >= 0])


@pytest.mark.slow
def test_first_ivf_trains_on_every_new_part_and_a_grown_index_retrains(curation_archive, embedded, tmp_path,
                                                                        monkeypatch):
    from biomedica.cli import app
    from biomedica.search import vectors as vec_module

    shutil.copytree(embedded[0], tmp_path / "ann")
    store, name = AnnotationStore(tmp_path / "ann"), embedded[1].folder_name()
    folder = store.embeddings_dir(name)
    parts = sorted(folder.glob("*.keys.parquet"), key=lambda p: (pq.read_metadata(p).num_rows, p.name))
    sizes = np.cumsum([pq.read_metadata(p).num_rows for p in parts])
    shown = int(np.searchsorted(sizes, 3)) + 1  # the first run sees the smallest parts, >= 3 vectors (> exact_max)
    assert shown < len(parts)
    for part in parts[shown:]:
        part.rename(part.with_name("." + part.name))
    index_dir = tmp_path / "index"
    cfg = IndexConfig(archive=curation_archive, annotations=store.root, index_dir=index_dir, exact_max=2)
    first = {v.kind: v for v in build_index(cfg).vectors}["image"]
    manifest = json.loads((index_dir / "vectors" / name / "image" / "manifest.json").read_text())
    assert first.mode == "ivf" and manifest["trained_count"] == first.total > 2 and not first.retrained

    monkeypatch.setattr(vec_module, "RETRAIN_GROWTH", 1.5)  # every other part arrives at once: > 1.5x the count
    for part in parts[shown:]:
        part.with_name("." + part.name).rename(part)
    result = CliRunner().invoke(app, ["index", str(curation_archive), "--index", str(index_dir), "--annotations",
                                      str(store.root), "--exact-max", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    keys, _ = read_embeddings(store, name, "image")
    manifest = json.loads((index_dir / "vectors" / name / "image" / "manifest.json").read_text())
    assert manifest["trained_count"] == manifest["count"] == len(keys) > 1.5 * first.total
    assert manifest["nlist"] == vec_module.auto_nlist(len(keys)) and len(manifest["parts"]) == 1
    line = next(line for line in result.output.splitlines() if f"vectors {name} image" in line)
    assert "retrained" in line, result.output
