"""The index's vector glue: curate embed parts -> doc ids -> search.vectors, incremental and crash-safe."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("open_clip")

from biomedica.archive.annotations import AnnotationStore
from biomedica.curate.config import EmbedConfig
from biomedica.curate.embed import embed_archive, read_embeddings
from biomedica.index.build import build_index
from biomedica.index.config import IndexConfig
from biomedica.search.filters import SearchFilters
from biomedica.search.reader import SearchIndex


@pytest.mark.slow
def test_embeddings_become_vector_indexes_keyed_by_doc(curation_archive, tmp_path):
    store = AnnotationStore(tmp_path / "ann")
    config = EmbedConfig(model="tiny-random", batch_size=16, device="cpu", progress=False)
    embed_archive(curation_archive, store, config)
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
