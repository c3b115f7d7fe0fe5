"""Fixtures of the model tests: the tiny random model, built once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model():
    pytest.importorskip("open_clip")
    from biomedica.models import load_model

    return load_model("tiny-random", device="cpu")
