"""Offline, a hub model id fails at once with one line (no half minute of retries); unknown names get suggestions."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import biomedica
from biomedica.models import ModelLoadError, load_model

SRC = Path(biomedica.__file__).resolve().parents[1]  # the sources this test runs against


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _offline_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    # the Hub "is" a closed local port: what no network looks like, without waiting for DNS
    return env | {"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}", "HF_HOME": str(tmp_path / "hf"),
                  "PYTHONPATH": str(SRC), "COLUMNS": "300"}


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # timeout: huggingface_hub's own retries took 20-50 s here; one probe takes well under a second
    return subprocess.run([sys.executable, "-m", "biomedica.cli", *args], cwd=tmp_path, env=_offline_env(tmp_path),
                          check=False, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_eval_with_an_uncached_hub_model_offline_is_one_line(tmp_path):
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "x.png").write_bytes(b"")
    (tmp_path / "t.yaml").write_text("name: t\ndomain: x\nkind: classification\nclasses: [a, b]\n"
                                     "dataset: {adapter: imagefolder, root: data}\n")
    done = _cli(tmp_path, "eval", "run", "--model", "hf-hub:some-org/some-model", "--tasks", str(tmp_path / "t.yaml"),
                "--data-dir", str(tmp_path), "--out", str(tmp_path / "r"), "--no-progress")
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr[-2000:]
    assert "not in the Hugging Face cache" in lines[0] and "unreachable" in lines[0]


@pytest.mark.slow
def test_curate_embed_with_an_uncached_hub_model_offline_is_one_line(tmp_path, demo_archive):
    done = _cli(tmp_path, "curate", "embed", str(demo_archive), "--annotations", str(tmp_path / "ann"),
                "--model", "hf-hub:some-org/some-model", "--no-progress")
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "hf-hub:some-org/some-model" in errors[0], done.stderr[-2000:]
    assert "Retrying" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("spec", "suggested"), [
    ("ViT-B-17:openai", "ViT-B-16"),
    ("vit-b-16:random", "ViT-B-16"),
    ("ViT-B-16:laion2b_s34b_b88", "laion2b_s34b_b88k"),
    ("timm:resnet51", "resnet50"),
])
def test_unknown_names_are_one_line_with_the_closest_matches(spec, suggested):
    with pytest.raises(ModelLoadError) as caught:
        load_model(spec, device="cpu")
    message = str(caught.value)
    assert "did you mean" in message and suggested in message and "\n" not in message
