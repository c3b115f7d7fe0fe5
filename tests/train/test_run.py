
import pytest
import torch

from biomedica.train.config import parse_config
from biomedica.train.run import TrainingError, list_checkpoints, prepare_resume, run_training

from .conftest import tiny_config, write_shards


def test_prepare_resume_skips_truncated_checkpoints(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save({"epoch": 1}, folder / "epoch_1.pt")
    complete = (folder / "epoch_1.pt").read_bytes()
    (folder / "epoch_2.pt").write_bytes(complete[: len(complete) // 2])  # killed while writing
    assert prepare_resume(tmp_path) == folder / "epoch_1.pt"
    assert (folder / "epoch_latest.pt").samefile(folder / "epoch_1.pt")
    assert prepare_resume(tmp_path) == folder / "epoch_latest.pt"  # already right: left alone
    (folder / "epoch_latest.pt").unlink()
    (folder / "epoch_1.pt").unlink()
    (folder / "epoch_latest.pt").write_bytes(complete[:100])
    assert prepare_resume(tmp_path) is None and not (folder / "epoch_latest.pt").exists()


def test_list_checkpoints_orders_by_epoch_number(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    for name in ("epoch_10.pt", "epoch_9.pt", "epoch_latest.pt", "tmp.pt"):
        (tmp_path / "checkpoints" / name).write_bytes(b"")
    assert [p.name for p in list_checkpoints(tmp_path)] == ["epoch_9.pt", "epoch_10.pt"]


def test_several_cpu_processes_are_refused_before_openclip_starts(tmp_path, monkeypatch):
    write_shards(tmp_path / "d", "A", [4], (1, 1, 1), "x")
    monkeypatch.setenv("WORLD_SIZE", "2")
    config = parse_config(tiny_config(tmp_path / "runs", [{"name": "a", "urls": str(tmp_path / "d" / "000000.tar")}]))
    with pytest.raises(TrainingError, match="several processes on CPU"):
        run_training(config)
    assert not (tmp_path / "runs" / "tiny" / "out.log").exists()


def test_unknown_architecture_is_refused_with_the_fix(tmp_path):
    config = parse_config(tiny_config(tmp_path / "runs", [{"name": "a", "urls": "x.tar"}], model={"name": "ViT-Q-99"}))
    with pytest.raises(TrainingError, match="not an OpenCLIP architecture.*config_file"):
        run_training(config)


def test_eval_tasks_without_an_eval_hook_are_refused_not_ignored(tmp_path):
    """`python -m biomedica.train` builds no eval hook: training on would silently skip the configured eval."""
    import subprocess
    import sys

    import yaml

    write_shards(tmp_path / "d", "A", [4], (1, 1, 1), "x")
    mapping = tiny_config(tmp_path / "runs", [{"name": "a", "urls": str(tmp_path / "d" / "000000.tar")}],
                          eval={"tasks": ["demo-task"]})
    with pytest.raises(TrainingError, match=r"eval.tasks is set \(demo-task\) .*`biomedica train run CONFIG`"):
        run_training(parse_config(mapping))
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(mapping))
    result = subprocess.run([sys.executable, "-m", "biomedica.train", str(tmp_path / "train.yaml")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "python -m biomedica.cli train run CONFIG" in result.stderr
    assert not (tmp_path / "runs" / "tiny").exists()
