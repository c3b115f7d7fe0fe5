"""Linear-probe protocol: synthetic features with known answers, group-aware splits, the offline benchmark."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from biomedica.eval import probe
from biomedica.eval.adapters import load_dataset
from biomedica.eval.runner import EvalConfig, evaluate_task, run_evaluation
from biomedica.eval.tasks import load_task_file, parse_task

pytest.importorskip("sklearn")


def _clusters(n_per_class: int, n_classes: int, noise: float, seed: int, dim: int = 16):
    rng = np.random.default_rng(seed)
    centres = np.eye(n_classes, dim) * 3
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + rng.normal(0, noise, (len(y), dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True), y


def _data(noise: float, seed: int = 0, n: int = 40) -> probe.ProbeData:
    tx, ty = _clusters(n, 3, noise, seed)
    vx, vy = _clusters(n // 2, 3, noise, seed + 1)
    sx, sy = _clusters(n, 3, noise, seed + 2)
    return probe.ProbeData(tx, ty, vx, vy, sx, sy, "official train split", "official validation split")


def test_separable_clusters_reach_accuracy_one_at_every_k():
    result = probe.run_probe(_data(noise=0.05), ["a", "b", "c"], "accuracy", shots=[1, 4, "full"], n_draws=3,
                             n_boot=50)
    for k in ("1", "4", "full"):
        assert result["shots"][k]["metrics"]["accuracy"] == 1.0
    assert result["shots"]["4"]["n_draws"] == 3 and len(result["shots"]["full"]["draws"]) == 1
    assert [d["n_train"] for d in result["shots"]["4"]["draws"]] == [12, 12, 12]
    assert result["shots"]["full"]["draws"][0]["n_train"] == 120 + 60  # refit on train + validation
    assert result["shots"]["full"]["ci_method"] == "bootstrap over test images"
    assert result["accuracy"] == 1.0 and result["regularization"] == result["shots"]["full"]["draws"][0]["C"]


def test_chosen_regularisation_is_a_grid_value_found_by_the_binary_search_and_varies_with_noise():
    chosen = {}
    for noise in (0.05, 3.0):
        data = _data(noise, n=30)
        c, tried = probe.choose_regularization(data.train_x, data.train_y, data.val_x, data.val_y)
        assert c in probe.C_GRID and c in tried
        assert len(tried) <= 7 + 4 * 2  # 7 starting points, then at most two new ones per halving
        assert {float(probe.C_GRID[i]) for i in probe.C_START} <= set(tried)
        chosen[noise] = c
    assert chosen[0.05] != chosen[3.0]


def test_k_shot_draws_are_seeded_and_a_too_large_k_is_skipped_with_the_reason():
    labels = np.array([0] * 5 + [1] * 3)
    a = probe.draw_shots(labels, 2, 2, np.random.default_rng(0))
    assert np.array_equal(a, probe.draw_shots(labels, 2, 2, np.random.default_rng(0)))
    assert np.bincount(labels[a]).tolist() == [2, 2]
    data = _data(noise=0.1, n=6)
    result = probe.run_probe(data, ["a", "b", "c"], "accuracy", shots=[2, 8, "full"], n_draws=2, n_boot=0)
    assert "6 training image(s), fewer than 8" in result["shots"]["8"]["skipped"]
    assert result["shots"]["2"]["ci_method"] == "t-interval over 2 draws"
    assert "8:n/a" in probe.summary_line("t", result)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_aware_splits_never_put_one_group_in_two_splits(seed):
    rng = np.random.default_rng(seed)
    groups = [f"patient{g}" for g in rng.integers(0, 30, size=200)]
    labels = np.array([int(g[7:]) % 3 for g in groups])  # label is a property of the patient
    train, val, test = probe.split_test_train_validation(labels, groups, seed)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(200))
    owners = [{groups[i] for i in part} for part in (train, val, test)]
    assert not owners[0] & owners[1] and not owners[0] & owners[2] and not owners[1] & owners[2]
    assert all(len(set(labels[part])) == 3 for part in (train, test))


def test_too_few_groups_is_a_clear_error():
    with pytest.raises(ValueError, match="1 group"):
        probe.group_folds(np.array([0, 1, 0]), ["p", "p", "p"], 2, 0)


def _provenance_groups(benchmark, dataset) -> list[str]:
    with open(benchmark.root.parent / "provenance.csv", newline="", encoding="utf-8") as handle:
        frame_of = {row["image"].split("/")[-1]: f"{row['source']}#{row['frame']}" for row in csv.DictReader(handle)}
    return [frame_of[image.path.name] for image in dataset.images]


@pytest.mark.slow
def test_offline_benchmark_without_train_split_splits_by_source_image(offline_benchmark, tiny_model, tmp_path):
    task = load_task_file(offline_benchmark.task_file)
    dataset = load_dataset(task.dataset.adapter, offline_benchmark.root, task.dataset.options)
    dataset.groups = _provenance_groups(offline_benchmark, dataset)  # crops of one source frame = one group
    config = EvalConfig(out_dir=tmp_path, n_boot=20, linear_probe=True, probe_shots=[1, 4, "full"], probe_seeds=2)
    result = evaluate_task(tiny_model, task, config, dataset)["linear_probe"]
    assert result["train_source"].startswith("NO TRAIN SPLIT") and "EvalDataset.groups" in result["train_source"]
    test = set(result["test_indices"])
    assert len(test) == result["n_test"] and result["n_train"] + result["n_validation"] + result["n_test"] == 320
    test_groups = {dataset.groups[i] for i in test}
    train_groups = {dataset.groups[i] for i in range(320) if i not in test}
    assert not test_groups & train_groups  # no crop of a test picture was trained on
    assert set(result["shots"]) == {"1", "4", "full"}
    for entry in result["shots"].values():
        assert "skipped" in entry or 0.0 <= entry["metrics"]["balanced_accuracy"] <= 1.0
    json.dumps(result, allow_nan=False)


@pytest.mark.slow
def test_offline_benchmark_with_official_train_and_validation_splits(offline_benchmark, tiny_model, tmp_path):
    # the same ImageFolder serves as all three splits: only the wiring and the record are under test here
    spec = {"adapter": "imagefolder", "root": str(offline_benchmark.root)}
    base = json.loads(json.dumps(load_task_file(offline_benchmark.task_file).model_dump(mode="json")))
    task = parse_task({**base, "train": spec, "validation": spec})
    config = EvalConfig(out_dir=tmp_path, n_boot=20, linear_probe=True, probe_shots=[2, "full"], probe_seeds=2,
                        ties="clip_benchmark")
    lines: list[str] = []
    [outcome] = run_evaluation(tiny_model, [task], config, log=lines.append)
    result = json.loads(outcome.result_path.read_text())["linear_probe"]
    assert result["train_source"] == "official train split"
    assert result["validation_source"] == "official validation split"
    assert result["n_train"] == result["n_validation"] == result["n_test"] == 320
    assert result["shots"]["full"]["draws"][0]["n_train"] == 640 and result["ties"] == "clip_benchmark"
    assert "test_indices" not in result
    assert lines[-2].startswith("probe offline-modality: balanced_accuracy by shots 2:")
    assert "train = official train split" in lines[-2] and lines[-1].startswith("done offline-modality")


@pytest.mark.slow
def test_cli_probe_options_reach_the_config_and_bad_values_are_one_line(offline_benchmark, tmp_path):
    from typer.testing import CliRunner

    from biomedica.cli.eval import app

    base = ["run", "--model", "tiny-random", "--tasks", str(offline_benchmark.task_file), "--out", str(tmp_path / "r"),
            "--no-progress", "--n-boot", "0", "--max-images", "80", "--linear-probe"]
    bad = CliRunner().invoke(app, [*base, "--shots", "1,two"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output and "probe_shots" in bad.output
    bad_ties = CliRunner().invoke(app, [*base, "--ties", "random"])
    assert bad_ties.exit_code != 0 and "ties" in bad_ties.output
    ok = CliRunner().invoke(app, [*base, "--shots", "2,full", "--probe-seeds", "2", "--ties", "clip_benchmark"])
    assert ok.exit_code == 0, ok.output
    [path] = (tmp_path / "r").rglob("offline-modality.json")
    result = json.loads(path.read_text())
    assert result["config"]["eval"]["probe_shots"] == [2, "full"] and result["config"]["eval"]["ties"] == "clip_benchmark"
    assert set(result["linear_probe"]["shots"]) == {"2", "full"}
