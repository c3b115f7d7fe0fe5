"""Fixtures for training tests: small synthetic shards, a demo archive, a tiny config (the HTTP server is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from biomedica.testing.shards import write_shards  # noqa: F401 - tests import it from here

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def train_demo_archive(tmp_path_factory) -> Path:
    """A 40-article demo corpus ingested into an archive with one shard per license group.

    Few, larger shards keep the tests quick: OpenCLIP fills a 1,000-sample shuffle buffer
    at the start of every epoch, and each shard opened over HTTP costs a helper process.
    """
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest
    from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus

    base = tmp_path_factory.mktemp("train-demo")
    write_demo_corpus(base / "corpus", DemoCorpusConfig(n_articles=40, seed=0))
    run_ingest(IngestConfig(input=base / "corpus", output=base / "archive", workers=1, articles_per_unit=40, progress=False))
    return base / "archive"


def tiny_config(run_root: Path, sources: list[dict], **overrides) -> dict:
    """A config mapping for the tiny CPU model; `overrides` replace top-level sections."""
    config = {
        "name": "tiny",
        "output_dir": str(run_root),
        "device": "cpu",
        "cpu_threads": 1,
        "model": {"name": "biomedica-tiny", "precision": "fp32"},
        "data": {"sources": sources, "workers": 1, "seed": 0},
        "optim": {"lr": 1e-3, "warmup": 2, "batch_size": 16, "weight_decay": 0.1},
        "schedule": {"total_steps": 4, "checkpoint_every_steps": 2},
        "logging": {"report_to": [], "log_every_steps": 1},
    }
    config.update(overrides)
    return config
