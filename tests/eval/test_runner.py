"""End to end: the offline benchmark with the tiny model, the embedding cache, skips and failures."""

from __future__ import annotations

import json

from biomedica.eval.runner import EvalConfig, run_evaluation
from biomedica.eval.tasks import load_task_file, parse_task


def test_offline_benchmark_end_to_end_with_cache_and_linear_probe(offline_benchmark, tiny_model, tmp_path):
    task = load_task_file(offline_benchmark.task_file)
    config = EvalConfig(out_dir=tmp_path / "results", n_boot=200, linear_probe=True)
    lines: list[str] = []
    [outcome] = run_evaluation(tiny_model, [task], config, log=lines.append)
    assert outcome.status == "ok"
    result = json.loads(outcome.result_path.read_text())
    assert outcome.result_path == tmp_path / "results" / "tiny-random" / "offline-modality.json"
    assert result["n_images"] == 320 and result["n_unmapped_labels"] == 0
    assert {c["support"] for c in result["per_class"].values()} == {40}
    assert result["score"] == result["metrics"]["balanced_accuracy"]
    low, high = result["score_ci95"]
    assert 0.0 <= low <= result["score"] <= high <= 1.0
    assert len(result["bootstrap"]) == 200
    assert sum(map(sum, result["confusion_matrix"])) == 320
    # random weights still give features a linear probe can use: well above chance (1/8)
    assert result["linear_probe"]["accuracy"] > 0.3
    assert result["config"]["task"]["name"] == "offline-modality"
    assert result["config"]["eval"]["n_boot"] == 200
    assert result["timings"]["images_from_cache"] is False
    assert lines[-1].startswith("done offline-modality: balanced_accuracy")
    [again] = run_evaluation(tiny_model, [task], config, log=lines.append)
    rerun = json.loads(again.result_path.read_text())
    assert rerun["timings"]["images_from_cache"] is True
    assert rerun["score"] == result["score"] and rerun["bootstrap"] == result["bootstrap"]


def _task(root, **changes):
    data = {
        "name": "tiny", "domain": "test", "kind": "classification",
        "dataset": {"adapter": "imagefolder", "root": str(root)},
        "classes": ["ct", "mr"], "templates": ["a {c} image."],
        "data": {"source": "https://example.org/tiny", "layout": "tiny/<class>/*.png"},
    }
    data.update(changes)
    return parse_task(data)


def test_missing_data_is_one_skip_line_and_no_model_load(tmp_path):
    lines: list[str] = []
    outcomes = run_evaluation("NoSuchNet:random", [_task(tmp_path / "absent")], EvalConfig(out_dir=tmp_path), lines.append)
    assert [o.status for o in outcomes] == ["skipped"]
    assert lines == [f"skip tiny: data not found at {tmp_path / 'absent'}. Get it: https://example.org/tiny"]


def test_wrong_class_labels_fail_the_task_not_the_run(offline_benchmark, tiny_model, tmp_path):
    wrong = _task(offline_benchmark.root, classes=["CT", "MRI"])
    right = _task(offline_benchmark.root, name="tiny-right")
    lines: list[str] = []
    outcomes = run_evaluation(tiny_model, [wrong, right], EvalConfig(out_dir=tmp_path, n_boot=10), lines.append)
    assert [o.status for o in outcomes] == ["failed", "ok"]
    assert "Fix `classes:`" in outcomes[0].message and "'ct'" in outcomes[0].message
    result = outcomes[1].result
    assert result["n_images"] == 80 and result["n_unmapped_labels"] == 240
    # the images left out are said in the run's own line, not only in the JSON
    assert any(line.startswith("done tiny-right:") and "240 image(s) whose label is not a task class left out" in line
               for line in lines)
    assert result["metrics"]["auroc"] is not None


def test_retrieval_task_on_a_caption_table(tiny_model, tmp_path, skimage_fixtures):
    names = ["cell.png", "ihc.png", "retina.jpg", "microaneurysms.png"]
    lines = ["name,caption"] + [f"{skimage_fixtures / n},Figure {i}: {n.split('.')[0]}." for i, n in enumerate(names)]
    lines.append(f"{skimage_fixtures / 'cell.png'},Second caption of the cell.")
    (tmp_path / "captions.csv").write_text("\n".join(lines) + "\n")
    task = parse_task({
        "name": "tiny-retrieval", "domain": "retrieval", "kind": "retrieval",
        "dataset": {"adapter": "table", "root": str(tmp_path),
                    "options": {"file": "captions.csv", "image_column": "name", "label_column": None, "caption_column": "caption"}},
    })
    [outcome] = run_evaluation(tiny_model, [task], EvalConfig(out_dir=tmp_path / "r", n_boot=20), log=lambda _: None)
    metrics = outcome.result["metrics"]
    assert outcome.result["n_captions"] == 5 and outcome.result["n_images"] == 4
    assert metrics["image_to_text_r5"] == 1.0 and metrics["text_to_image_r5"] == 1.0  # 4 images: top 5 holds all
    assert 0.0 <= metrics["image_to_text_r1"] <= 1.0


def test_max_images_subsample_is_seeded(offline_benchmark, tiny_model, tmp_path):
    task = load_task_file(offline_benchmark.task_file)
    config = EvalConfig(out_dir=tmp_path, n_boot=0, max_images=50, use_cache=False)
    [first] = run_evaluation(tiny_model, [task], config, log=lambda _: None)
    [second] = run_evaluation(tiny_model, [task], config, log=lambda _: None)
    assert first.result["n_images"] == 50
    assert first.result["score"] == second.result["score"]
    assert first.result["score_ci95"] == [None, None]


def test_an_image_only_model_is_refused_before_any_image_is_embedded(offline_benchmark, tmp_path):
    import pytest

    pytest.importorskip("timm")
    from biomedica.models import ModelLoadError

    config = EvalConfig(out_dir=tmp_path / "results", n_boot=10)
    with pytest.raises(ModelLoadError, match="^eval needs a model with a text tower; 'timm:test_vit:random'"):
        run_evaluation("timm:test_vit:random", [_task(offline_benchmark.root)], config, log=lambda line: None)
    assert not (tmp_path / "results").exists()  # no cached image embeddings, no result
