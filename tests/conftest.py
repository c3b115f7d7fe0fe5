"""Shared test fixtures: the real files in ../shared/fixtures and a generated demo corpus."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from biomedica.testing.servers import RunningServer, serve_folder

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
    from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus

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


@pytest.fixture(scope="session")
def curation_archive(tmp_path_factory) -> Path:
    """The curate/select/annotate archive with known duplicates (tests/curate/archive_factory.py), built once."""
    spec = importlib.util.spec_from_file_location("_archive_factory_loader", REPO / "tests" / "curate" / "archive_factory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_factory().build(tmp_path_factory)


@pytest.fixture
def serve():
    """Start HTTP servers on 127.0.0.1 serving a folder: `serve(root, token=...)` -> RunningServer."""
    servers = []

    def start(root: Path, **kwargs) -> RunningServer:
        server, running = serve_folder(root, **kwargs)
        servers.append(server)
        return running

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs (as this machine) for the tests of one module; skipped without the ray extra."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
