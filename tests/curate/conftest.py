"""Fixtures of the curation tests: the shared archive with known duplicates, tiny OpenCLIP config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_clip_config(tmp_path_factory) -> Path:
    """A random-weight OpenCLIP architecture small enough for CPU tests (no download)."""
    path = tmp_path_factory.mktemp("models") / "biomedica-tiny-clip.json"
    path.write_text(json.dumps(TINY_CLIP))
    return path
