"""The `biomedica eval` Typer sub-app, driven through CliRunner."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from biomedica.cli.eval import app

runner = CliRunner()


def test_list_tasks_shows_shipped_tasks_and_data_presence(tmp_path):
    (tmp_path / "OCT2017").mkdir()
    result = runner.invoke(app, ["list-tasks", "--data-dir", str(tmp_path)], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "retinal-oct" in result.output and "chexpert-5x200" in result.output
    oct_line = next(line for line in result.output.splitlines() if "retinal-oct" in line)
    assert "yes" in oct_line


def test_run_with_all_data_missing_skips_each_task_in_one_line(tmp_path):
    result = runner.invoke(
        app, ["run", "--model", "tiny-random", "--tasks", "domain:dermatology", "--data-dir", str(tmp_path),
              "--out", str(tmp_path / "r")], terminal_width=400,
    )
    assert result.exit_code == 0, result.output
    skips = [line for line in result.output.splitlines() if line.startswith("skip ")]
    assert len(skips) == 2 and all("Get it:" in line for line in skips)
    assert "0 task(s) evaluated, 2 skipped" in result.output
    assert "Traceback" not in result.output


def test_run_with_a_bad_task_file_names_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "domain": "x", "kind": "classification",
                                    "dataset": {"adapter": "imagefolder", "root": "x"},
                                    "classes": ["a", "b"], "metric": "f1"}))
    result = runner.invoke(app, ["run", "--model", "tiny-random", "--tasks", str(path)], terminal_width=400)
    assert result.exit_code == 2
    assert "field 'metric'" in result.output and str(path) in result.output


def test_bad_model_spec_is_one_line(tmp_path):
    (tmp_path / "data" / "a").mkdir(parents=True)
    task = {"name": "t", "domain": "x", "kind": "classification", "dataset": {"adapter": "imagefolder", "root": "data"},
            "classes": ["a", "b"]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(task))
    (tmp_path / "data" / "a" / "x.png").write_bytes(b"")
    result = runner.invoke(app, ["run", "--model", "ViT-B-16", "--tasks", str(tmp_path / "t.yaml"),
                                 "--data-dir", str(tmp_path)], terminal_width=400)
    assert result.exit_code == 2
    assert "error:" in result.output and "ARCH:TAG" in result.output


def test_make_offline_benchmark_then_run_and_report(tmp_path):
    out = tmp_path / "offline"
    made = runner.invoke(app, ["make-offline-benchmark", "--out", str(out), "--images-per-class", "3",
                               "--image-size", "64"], terminal_width=400)
    assert made.exit_code == 0, made.output
    assert "wrote 24 images" in made.output
    ran = runner.invoke(app, ["run", "--model", "tiny-random", "--tasks", str(out / "task.yaml"), "--out",
                              str(tmp_path / "results"), "--n-boot", "50", "--no-progress"], terminal_width=400)
    assert ran.exit_code == 0, ran.output
    assert "1 task(s) evaluated" in ran.output
    reported = runner.invoke(app, ["report", str(tmp_path / "results"), "--out", str(tmp_path / "report")])
    assert reported.exit_code == 0, reported.output
    assert "| multimodal | offline-modality | balanced_accuracy |" in reported.output
    assert (tmp_path / "report" / "plots" / "multimodal.png").is_file()
