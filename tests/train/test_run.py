
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


def test_plan_json_records_the_config_and_a_changed_config_gets_its_own_file(tmp_path):
    import json

    from biomedica.train.openclip_args import build_plan
    from biomedica.train.run import _write_plan

    write_shards(tmp_path / "d", "A", [4], (1, 1, 1), "x")
    sources = [{"name": "a", "urls": str(tmp_path / "d" / "000000.tar")}]
    config = parse_config(tiny_config(tmp_path / "runs", sources))
    _write_plan(config, build_plan(config))
    first = (config.run_dir / "plan.json").read_text()
    assert json.loads(first)["config"] == json.loads(config.model_dump_json())
    changed = parse_config(tiny_config(tmp_path / "runs", sources, optim={"lr": 1e-4}))
    plan = build_plan(changed)
    _write_plan(changed, plan)
    assert (config.run_dir / "plan.json").read_text() == first  # the run's first plan is kept
    assert json.loads((config.run_dir / "plan-1.json").read_text())["config"]["optim"]["lr"] == 1e-4
    assert any("differs from the one this run started with" in n for n in plan.notes)
    assert sorted(p.name for p in config.run_dir.iterdir()) == ["plan-1.json", "plan.json"]  # no temporary file left
