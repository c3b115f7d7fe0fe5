import json

import pytest
import torch

from biomedica.models import register_builtin_configs
from biomedica.train.checkpoints import (
    CheckpointError,
    export_model,
    load_state_dict,
    save_state_dict,
    wise_ft,
    wise_ft_files,
)


def _states():
    torch.manual_seed(0)
    base = {"w": torch.randn(4, 3), "h": torch.randn(5).to(torch.bfloat16), "ids": torch.arange(4)}
    tuned = {"w": torch.randn(4, 3), "h": torch.randn(5).to(torch.bfloat16), "ids": torch.arange(4)}
    return base, tuned


def test_wise_ft_alpha_0_and_1_reproduce_the_inputs_exactly():
    base, tuned = _states()
    tuned["w"][0, 0] = float("inf")  # 0 * inf would be nan: the endpoints must not multiply
    at_0, at_1 = wise_ft(base, tuned, 0.0), wise_ft(base, tuned, 1.0)
    for name in base:
        assert torch.equal(at_0[name], base[name]) and at_0[name].dtype == base[name].dtype
        assert torch.equal(at_1[name], tuned[name])


def test_wise_ft_half_is_the_mean_in_the_original_dtype():
    base, tuned = _states()
    half = wise_ft(base, tuned, 0.5)
    assert torch.allclose(half["w"], (base["w"] + tuned["w"]) / 2)
    assert half["h"].dtype == torch.bfloat16
    assert torch.equal(half["h"], ((base["h"].float() + tuned["h"].float()) / 2).to(torch.bfloat16))
    assert torch.equal(half["ids"], base["ids"])


def test_wise_ft_refuses_mismatched_checkpoints():
    base, tuned = _states()
    with pytest.raises(CheckpointError, match="only in the first: \\['w'\\]"):
        wise_ft(base, {k: v for k, v in tuned.items() if k != "w"}, 0.5)
    with pytest.raises(CheckpointError, match="shapes differ"):
        wise_ft(base, {**tuned, "w": torch.zeros(3, 4)}, 0.5)
    with pytest.raises(CheckpointError, match="within \\[0, 1\\]"):
        wise_ft(base, tuned, 1.5)
    with pytest.raises(CheckpointError, match="non-float buffer ids"):
        wise_ft(base, {**tuned, "ids": torch.arange(1, 5)}, 0.5)


def test_checkpoint_formats_load_the_same_weights(tmp_path):
    base, _ = _states()
    torch.save({"epoch": 3, "name": "run", "state_dict": {f"module.{k}": v for k, v in base.items()},
                "optimizer": {"state": {}, "param_groups": []}}, tmp_path / "epoch_3.pt")
    save_state_dict(base, tmp_path / "plain.bin")
    save_state_dict(base, tmp_path / "weights.safetensors")
    for name in ("epoch_3.pt", "plain.bin", "weights.safetensors"):
        loaded = load_state_dict(tmp_path / name)
        assert sorted(loaded) == sorted(base) and all(torch.equal(loaded[k], base[k]) for k in base)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable PyTorch checkpoint"):
        load_state_dict(tmp_path / "junk.pt")


def test_wise_ft_files_writes_a_plain_state_dict(tmp_path):
    base, tuned = _states()
    torch.save({"epoch": 1, "state_dict": base}, tmp_path / "a.pt")
    save_state_dict(tuned, tmp_path / "b.safetensors")
    out = wise_ft_files(tmp_path / "a.pt", tmp_path / "b.safetensors", 1.0, tmp_path / "c.pt")
    merged = torch.load(out, weights_only=True)
    assert "epoch" not in merged and torch.equal(merged["w"], tuned["w"])


def test_export_loads_with_create_model_and_transforms(tmp_path):
    import open_clip

    register_builtin_configs()
    torch.manual_seed(1)
    model = open_clip.create_model("biomedica-tiny", pretrained=None)
    torch.save({"epoch": 2, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "epoch_2.pt")
    exported = export_model(tmp_path / "epoch_2.pt", "biomedica-tiny", tmp_path / "export")
    loaded, _, preprocess = open_clip.create_model_and_transforms("biomedica-tiny", pretrained=str(exported.weights))
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    config = json.loads(exported.config.read_text())
    assert config["model_cfg"]["embed_dim"] == 32 and list(config["preprocess_cfg"]["size"]) == [64, 64]
    from_dir, _, _ = open_clip.create_model_and_transforms(f"local-dir:{exported.folder}")
    assert torch.equal(from_dir.state_dict()["logit_scale"], model.state_dict()["logit_scale"])


def test_export_rejects_weights_of_another_architecture(tmp_path):
    save_state_dict({"w": torch.zeros(2)}, tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match="do not fit biomedica-tiny"):
        export_model(tmp_path / "w.pt", "biomedica-tiny", tmp_path / "out")
    with pytest.raises(CheckpointError, match="unknown OpenCLIP architecture"):
        export_model(tmp_path / "w.pt", "no-such-arch", tmp_path / "out")
