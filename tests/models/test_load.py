"""Loading every kind of spec: the deterministic tiny model, local checkpoints, timm, registered JSONs, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import biomedica.models
from biomedica.models import ClipModel, ModelFileNotFound, ModelLoadError, load_model, parse_model_spec

pytest.importorskip("open_clip")


def test_parse_model_spec_forms():
    assert parse_model_spec("tiny-random@7").seed == 7
    assert parse_model_spec("ViT-B-16:laion2b_s34b_b88k").pretrained == "laion2b_s34b_b88k"
    hub = parse_model_spec("hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224")
    assert hub.is_hub and hub.pretrained is None
    assert parse_model_spec("ViT-B-16:/ckpt/epoch_3.pt").is_path
    with pytest.raises(ModelLoadError, match="ARCH:TAG"):
        parse_model_spec("ViT-B-16")


def test_tiny_model_is_deterministic_and_fits_the_interface(tiny_model):
    import torch

    assert isinstance(tiny_model, ClipModel)
    again = load_model("tiny-random", device="cpu")
    other = load_model("tiny-random@1", device="cpu")
    tokens = tiny_model.tokenizer(["a CT scan", "a fundus photograph"])
    first = tiny_model.encode_text(tokens)
    assert first.shape == (2, 32)
    assert torch.equal(first, again.encode_text(tokens))
    assert not torch.allclose(first, other.encode_text(tokens))
    assert tiny_model.fingerprint == again.fingerprint != other.fingerprint


def test_local_checkpoint_in_open_clip_train_format(tmp_path, tiny_model):
    import torch

    state = {f"module.{k}": v for k, v in tiny_model.model.state_dict().items()}
    path = tmp_path / "epoch_1.pt"
    torch.save({"epoch": 1, "name": "run", "state_dict": state}, path)
    loaded = load_model(f"biomedica-tiny:{path}", device="cpu")
    tokens = tiny_model.tokenizer(["an MRI scan"])
    assert np.allclose(loaded.encode_text(tokens).numpy(), tiny_model.encode_text(tokens).numpy(), atol=1e-6)
    assert loaded.fingerprint != tiny_model.fingerprint


def test_unusable_specs_give_one_line_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(f"biomedica-tiny:{tmp_path / 'absent.pt'}")
    with pytest.raises(ModelLoadError, match="unknown OpenCLIP architecture"):
        load_model("NoSuchNet:random")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError) as caught:
        load_model(f"biomedica-tiny:{tmp_path / 'bad.pt'}")
    assert "\n" not in str(caught.value) and "ARCH:/path" in str(caught.value)


def test_random_weights_come_from_the_seed_and_leave_the_callers_rng_alone():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = load_model("biomedica-tiny:random@5", device="cpu")
    assert torch.equal(torch.rand(3), expected)  # loading did not consume the caller's random numbers
    second = load_model("tiny-random@5", device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()))
    assert first.name == "biomedica-tiny:random@5" and second.name == "tiny-random@5"
    assert first.fingerprint == second.fingerprint  # same architecture, weights and decode


def test_batch_helpers_give_unit_vectors(tiny_model):
    from PIL import Image

    assert (tiny_model.kind, tiny_model.image_size, tiny_model.precision) == ("open_clip", 64, "fp32")
    images = tiny_model.image_vectors([Image.new("RGB", (80, 50), (200, 30, 30)), Image.new("RGB", (64, 64))])
    texts = tiny_model.text_vectors(["a CT scan", "a chest X-ray", "a histology slide"])
    assert images.dtype == texts.dtype == np.float32 and images.shape == (2, 32) and texts.shape == (3, 32)
    assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_a_registered_architecture_json(tmp_path):
    import json

    from biomedica.models import TINY_ARCH, register_model_config

    config = json.loads((Path(biomedica.models.__file__).parent / "configs" / f"{TINY_ARCH}.json").read_text())
    config["embed_dim"] = 16
    path = tmp_path / "tiny-16.json"
    path.write_text(json.dumps(config))
    model = load_model("tiny-16:random", device="cpu", config_file=path)
    assert model.text_vectors(["x"]).shape == (1, 16)
    assert register_model_config(path) == "tiny-16"
    with pytest.raises(ModelFileNotFound, match="absent.json: no such model config file"):
        load_model("tiny-16:random", device="cpu", config_file=tmp_path / "absent.json")
    with pytest.raises(ModelLoadError, match="tiny-16.json: an OpenCLIP architecture JSON does not apply to timm model"):
        load_model("timm:test_vit:random", device="cpu", config_file=path)  # was ignored


def test_timm_random_weights_are_seeded_and_image_only(tmp_path):
    timm = pytest.importorskip("timm")
    import torch
    from PIL import Image

    first = load_model("timm:test_vit:random", device="cpu")
    again = load_model("timm:test_vit:random", device="cpu")
    image = [Image.new("RGB", (40, 40), (10, 120, 200))]
    assert first.kind == "timm" and first.tokenizer is None and first.image_size == 160
    assert np.array_equal(first.image_vectors(image), again.image_vectors(image))
    assert not np.array_equal(first.image_vectors(image), load_model("timm:test_vit:random@1", device="cpu").image_vectors(image))
    with pytest.raises(ValueError, match="no text tower"):
        first.text_vectors(["a caption"])
    weights = tmp_path / "test_vit.safetensors"
    from safetensors.torch import save_file

    save_file(first.model.state_dict(), str(weights))
    local = load_model(f"timm:test_vit:{weights}", device="cpu")
    assert np.array_equal(local.image_vectors(image), first.image_vectors(image))
    assert local.fingerprint != first.fingerprint
    wrong = tmp_path / "wrong.pt"
    torch.save({"other.weight": torch.zeros(2)}, wrong)
    with pytest.raises(ModelLoadError, match="weights do not fit timm model 'test_vit'"):
        load_model(f"timm:test_vit:{wrong}", device="cpu")
    with pytest.raises(ModelFileNotFound, match="never downloaded"):
        load_model(f"timm:test_vit:{tmp_path / 'absent.safetensors'}", device="cpu")
    del timm


def test_bad_device_and_missing_extra_are_one_line_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="device 'gpu': use auto, cpu, cuda, cuda:N or mps"):
        load_model("tiny-random", device="gpu")
    # a Python without open_clip: the one line names the extra to install, no traceback
    script = (
        "import sys; sys.modules['open_clip'] = None\n"
        "from biomedica.models import ModelLoadError, load_model\n"
        "try:\n    load_model('tiny-random', device='cpu')\nexcept ModelLoadError as exc:\n    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == ["models need torch and open-clip-torch: pip install 'biomedica[clip]'"]
