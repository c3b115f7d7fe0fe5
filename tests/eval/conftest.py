"""Shared eval fixtures: the tiny random model and the offline benchmark, each built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
SKIMAGE_FIXTURES = FIXTURES / "images" / "skimage"


@pytest.fixture(scope="session")
def tiny_model():
    pytest.importorskip("open_clip")
    from biomedica.models import load_model

    return load_model("tiny-random", device="cpu")


@pytest.fixture(scope="session")
def offline_benchmark(tmp_path_factory):
    pytest.importorskip("pydicom")
    pytest.importorskip("skimage")
    from biomedica.eval.offline_benchmark import build_offline_benchmark

    return build_offline_benchmark(tmp_path_factory.mktemp("offline") / "offline-modality")


@pytest.fixture(scope="session")
def skimage_fixtures() -> Path:
    if not SKIMAGE_FIXTURES.is_dir():
        pytest.fail(f"real test images not found at {SKIMAGE_FIXTURES}")
    return SKIMAGE_FIXTURES
