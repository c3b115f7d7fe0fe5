"""Shared test fixtures: the real files in ../shared/fixtures and a generated demo corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"real test data not found at {FIXTURES}: check out ../shared beside the repository")
    return FIXTURES


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    """The demo generator's corpus (real pydicom / scikit-image images), written once per session."""
    from biomedica.demo.corpus import DemoCorpusConfig, write_demo_corpus

    out = tmp_path_factory.mktemp("demo") / "corpus"
    write_demo_corpus(out, DemoCorpusConfig(n_articles=12, seed=0))
    return out


@pytest.fixture(scope="session")
def demo_archive(demo_corpus, tmp_path_factory) -> Path:
    """The demo corpus ingested once with 2 workers and small units (several shards per group)."""
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest

    out = tmp_path_factory.mktemp("demo-archive") / "archive"
    run_ingest(IngestConfig(input=demo_corpus, output=out, workers=2, articles_per_unit=4, progress=False))
    return out
