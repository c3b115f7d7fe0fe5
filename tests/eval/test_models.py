"""Model specs, the deterministic tiny model, and loading a local open_clip_train-style checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from biomedica.eval.models import ClipModel, ModelLoadError, load_model, parse_model_spec


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
