"""Prompt presets: published class names and templates, recorded in results, with a logged fallback."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from biomedica.eval.prompts import PRESETS, has_preset, resolve_prompts
from biomedica.eval.runner import EvalConfig, run_evaluation
from biomedica.eval.tasks import load_task_file, resolve_tasks


def _shipped(name: str):
    [task] = resolve_tasks(name, [])
    return task


def test_clip_benchmark_preset_is_its_published_text():
    pytest.importorskip("clip_benchmark", reason="pip install --no-deps clip-benchmark==1.6.2")
    folder = resources.files("clip_benchmark") / "datasets"
    classnames = json.loads((folder / "en_classnames.json").read_text(encoding="utf-8"))
    templates = json.loads((folder / "en_zeroshot_classification_templates.json").read_text(encoding="utf-8"))
    for task_name, dataset in (("pcam", "pcam"), ("retinamnist", "diabetic_retinopathy")):
        prompts = resolve_prompts(_shipped(task_name), "clip_benchmark")
        assert [names[0] for names in prompts.class_names] == classnames[dataset]
        assert prompts.templates == templates[dataset]
        assert "CLIP_benchmark 1.6.2" in prompts.source


def test_biomedclip_preset_uses_its_released_template_on_first_names():
    task = _shipped("pcam")
    prompts = resolve_prompts(task, "biomedclip")
    assert prompts.templates == ["this is a photo of {c}"]
    assert prompts.class_names == [[c.names[0]] for c in task.classes]
    assert "BiomedCLIP" in prompts.source


def test_own_prompts_and_fallback(offline_benchmark):
    task = load_task_file(offline_benchmark.task_file)
    own = resolve_prompts(task, "biomedica")
    assert own.templates == task.templates and own.class_names == [c.names for c in task.classes]
    assert not has_preset(task, "clip_benchmark")
    fallback = resolve_prompts(task, "clip_benchmark")
    assert fallback[:2] == own[:2] and "no clip_benchmark prompts" in fallback.source
    with pytest.raises(ValueError, match="unknown prompt preset"):
        resolve_prompts(task, "openai")
    assert PRESETS == ("biomedica", "clip_benchmark", "biomedclip")


@pytest.mark.slow
def test_result_records_the_preset_and_logs_the_fallback(offline_benchmark, tiny_model, tmp_path):
    task = load_task_file(offline_benchmark.task_file)
    lines: list[str] = []
    config = EvalConfig(out_dir=tmp_path / "r", n_boot=0, max_images=40, prompts="clip_benchmark")
    [outcome] = run_evaluation(tiny_model, [task], config, log=lines.append)
    assert any("no clip_benchmark prompts for this task" in line for line in lines)
    assert outcome.result["prompts"]["preset"] == "clip_benchmark"
    config = EvalConfig(out_dir=tmp_path / "r", n_boot=0, max_images=40, prompts="biomedclip")
    [outcome] = run_evaluation(tiny_model, [task], config, log=lines.append)
    recorded = json.loads(outcome.result_path.read_text())["prompts"]
    assert recorded["templates"] == ["this is a photo of {c}"] and recorded["class_names"][0] == ["CT scan"]


@pytest.mark.slow
def test_cli_runs_with_presets_and_clip_benchmark_format(offline_benchmark, tmp_path):
    from typer.testing import CliRunner

    from biomedica.cli.eval import app

    runner = CliRunner()
    base = ["run", "--model", "tiny-random", "--tasks", str(offline_benchmark.task_file), "--out", str(tmp_path / "r"),
            "--n-boot", "0", "--max-images", "24", "--no-progress"]
    bad = runner.invoke(app, [*base, "--prompts", "openai"], terminal_width=400)
    assert bad.exit_code != 0 and "Traceback" not in bad.output and "prompts" in bad.output
    good = runner.invoke(app, [*base, "--prompts", "biomedclip", "--format", "clip_benchmark"], terminal_width=400)
    assert good.exit_code == 0, good.output
    [written] = (tmp_path / "r" / "tiny-random" / "clip_benchmark").glob("*.json")
    assert set(json.loads(written.read_text())["metrics"]) == {"acc1", "acc5", "mean_per_class_recall"}
