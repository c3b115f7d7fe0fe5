import json
import re

import pytest
import torch
import yaml
from typer.testing import CliRunner

from biomedica.cli.train import app

from .conftest import tiny_config, write_shards

runner = CliRunner()


def _write_config(tmp_path, **overrides):
    write_shards(tmp_path / "data", "A", [12, 12], (10, 200, 10), "a green square")
    config = tiny_config(tmp_path / "runs", [{"name": "green", "urls": str(tmp_path / "data" / "{000000..000001}.tar")}],
                         **overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_plan_prints_sources_counts_and_steps(tmp_path):
    path = _write_config(tmp_path)
    result = runner.invoke(app, ["plan", str(path), "--world-size", "2", "--argv"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["sources"] == [{"name": "green", "shards": 2, "samples": 24, "share": 1.0, "counts_from": "sizes.json"}]
    assert (summary["global_batch"], summary["steps_per_checkpoint"], summary["checkpoints"]) == (32, 2, 2)
    assert "--dataset-resampled" in summary["openclip_argv"]


def test_steps_shorter_than_the_checkpoint_interval_cut_the_interval(tmp_path):
    # the shipped recipes checkpoint every 20-1000 steps; `--steps 1` used to fail validation instead
    path = _write_config(tmp_path)
    result = runner.invoke(app, ["plan", str(path), "--steps", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["steps_per_checkpoint"], summary["checkpoints"], summary["total_steps"]) == (1, 1, 1)
    # `run --steps 1` gets past the config to the sources (here: no sizes.json, so it stops there, untrained)
    (tmp_path / "data" / "sizes.json").unlink()
    result = runner.invoke(app, ["run", str(path), "--steps", "1"])
    assert result.exit_code == 2 and "set num_samples" in result.output, result.output


def test_bad_config_exits_2_with_the_field(tmp_path):
    path = _write_config(tmp_path, optim={"lr": 0})
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "optim.lr: Input should be greater than 0" in result.output


def test_missing_sizes_exits_2_with_the_fix(tmp_path):
    path = _write_config(tmp_path)
    (tmp_path / "data" / "sizes.json").unlink()
    result = runner.invoke(app, ["plan", str(path)])
    assert result.exit_code == 2 and "set num_samples" in result.output


@pytest.mark.slow
def test_run_trains_and_export_loads(tmp_path):
    import open_clip

    path = _write_config(tmp_path)
    result = runner.invoke(app, ["run", str(path), "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert re.search(r"steps done\W+2\b", result.output) and "loss (last step)" in result.output
    assert re.search(r"checkpoints\W+1\b", result.output)  # --steps 2, a checkpoint every 2 steps
    checkpoint = tmp_path / "runs" / "tiny" / "checkpoints" / "epoch_1.pt"
    exported = runner.invoke(app, ["export", str(checkpoint), "--model", "biomedica-tiny", "--out", str(tmp_path / "model")])
    assert exported.exit_code == 0, exported.output
    model, _, _ = open_clip.create_model_and_transforms(
        "biomedica-tiny", pretrained=str(tmp_path / "model" / "open_clip_pytorch_model.bin"))
    trained = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert torch.equal(model.state_dict()["logit_scale"], trained["logit_scale"])


def test_wise_ft_command(tmp_path):
    torch.save({"w": torch.zeros(3)}, tmp_path / "a.pt")
    torch.save({"epoch": 4, "state_dict": {"module.w": torch.ones(3)}}, tmp_path / "b.pt")
    result = runner.invoke(app, ["wise-ft", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--alpha", "0.25",
                                 "--out", str(tmp_path / "c.safetensors")])
    assert result.exit_code == 0, result.output
    from safetensors.torch import load_file

    assert torch.allclose(load_file(str(tmp_path / "c.safetensors"))["w"], torch.full((3,), 0.25))
    missing = runner.invoke(app, ["wise-ft", str(tmp_path / "none.pt"), str(tmp_path / "b.pt"), "--out", str(tmp_path / "d.pt")])
    assert missing.exit_code == 2 and "none.pt: no such checkpoint file" in missing.output
