"""Fixtures of the serve tests: the demo corpus with one marked-up caption, curated, embedded and indexed.

Real components only: ingest, curate (dedup, quality, panels), `curate embed` with the tiny-random
model, `curate cluster`, `biomedica index` (tantivy + faiss); the app runs in FastAPI's TestClient
or a real uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("tantivy")
pytest.importorskip("open_clip")

MARKED_PMCID = "PMC9000002"
UNIQUE_WORD = "wombatserve"  # in one caption only: keyword and hybrid must rank its figure first
SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'
TITLE = '<b onmouseover="window.__xss=1">Retinal</b> study'


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mark_up(corpus: Path) -> None:
    """Put a unique word and markup (as escaped XML text, as a publisher might) at the start of one article's
    first caption (so a result card shows it) and markup in its title."""
    nxml = corpus / MARKED_PMCID / f"{MARKED_PMCID}.nxml"
    text = nxml.read_text(encoding="utf-8")
    start = text.index("<p>", text.index("<caption>")) + len("<p>")
    text = text[:start] + _escaped(f"{UNIQUE_WORD} {SCRIPT} {IMG} ") + text[start:]
    title = re.search(r"<article-title>(.*?)</article-title>", text, re.DOTALL)
    text = text[: title.start(1)] + _escaped(TITLE) + text[title.end(1):]
    nxml.write_text(text, encoding="utf-8")


@pytest.fixture(scope="session")
def search_archive(demo_corpus, tmp_path_factory) -> Path:
    """An archive with annotations (dedup, quality, panels, tiny-random embeddings, clusters) and its index."""
    from biomedica.archive.annotations import AnnotationStore
    from biomedica.curate.cluster import cluster_embeddings
    from biomedica.curate.config import ClusterConfig, EmbedConfig
    from biomedica.curate.embed import embed_archive
    from biomedica.curate.run import run_curate
    from biomedica.index.build import build_index
    from biomedica.index.config import IndexConfig
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest

    root = tmp_path_factory.mktemp("serve")
    corpus = root / "corpus"
    shutil.copytree(demo_corpus, corpus)
    mark_up(corpus)
    archive = root / "archive"
    run_ingest(IngestConfig(input=corpus, output=archive, workers=1, articles_per_unit=4, progress=False))
    run_curate(archive)
    store = AnnotationStore(archive / "annotations")
    embed_archive(archive, store, EmbedConfig(model="tiny-random", device="cpu", batch_size=16, progress=False))
    cluster_embeddings(archive, store, ClusterConfig(embeddings="tiny-random", k=4, pca_dim=8))
    build_index(IndexConfig(archive=archive), None)
    return archive


@pytest.fixture(scope="session")
def engine(search_archive):
    from biomedica.serve.config import ServeConfig
    from biomedica.serve.engine import SearchEngine

    return SearchEngine(ServeConfig(archive=search_archive))


@pytest.fixture(scope="session")
def client(search_archive, engine):
    from fastapi.testclient import TestClient

    from biomedica.serve.app import create_app
    from biomedica.serve.config import ServeConfig

    with TestClient(create_app(ServeConfig(archive=search_archive), engine)) as test_client:
        yield test_client
