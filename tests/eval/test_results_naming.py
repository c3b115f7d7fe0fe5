"""Each result names its exact weights and lives in the folder of its exact spec (never the architecture's name)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from biomedica.eval.identity import sha256_file, weights_record
from biomedica.eval.report import build_table, load_results
from biomedica.eval.runner import EvalConfig, model_slug, run_evaluation, write_result
from biomedica.eval.tasks import load_task_file


@pytest.mark.slow
def test_tiny_checkpoint_and_random_baseline_never_share_a_folder(offline_benchmark, tiny_model, tmp_path):
    torch = pytest.importorskip("torch")
    checkpoint = tmp_path / "ckpt" / "epoch_3.pt"
    checkpoint.parent.mkdir()
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in tiny_model.model.state_dict().items()}
    torch.save(state, checkpoint)
    task = load_task_file(offline_benchmark.task_file)
    config = EvalConfig(out_dir=tmp_path / "results", n_boot=0, max_images=48, device="cpu")
    spec = f"biomedica-tiny:{checkpoint}"
    [trained] = run_evaluation(spec, [task], config, log=lambda line: None)
    [baseline] = run_evaluation("tiny-random", [task], config, log=lambda line: None)
    assert trained.result_path == tmp_path / "results" / model_slug(spec) / "offline-modality.json"
    assert baseline.result_path == tmp_path / "results" / "tiny-random" / "offline-modality.json"
    saved = json.loads(trained.result_path.read_text())
    assert saved["model"]["spec"] == spec and saved["model"]["architecture"] == "biomedica-tiny"
    assert saved["model"]["weights"] == {
        "path": str(checkpoint.resolve()), "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        "bytes": checkpoint.stat().st_size,
    }
    random = json.loads(baseline.result_path.read_text())
    assert random["model"]["weights"] == {"random_seed": 0}
    # the report keeps them apart too
    table = build_table(load_results([tmp_path / "results"]))
    assert sorted(table.models) == sorted([spec, "tiny-random"])


def test_weights_records_by_kind_of_spec(tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"abc")
    assert weights_record(f"ViT-B-16:{weights}")["sha256"] == hashlib.sha256(b"abc").hexdigest()
    assert weights_record("ViT-B-16:laion2b_s34b_b88k") == {"tag": "laion2b_s34b_b88k"}
    assert weights_record("ViT-B-16:random@7") == {"random_seed": 7}
    assert weights_record("tiny-random@3") == {"random_seed": 3}
    assert weights_record("hf-hub:org/not-cached")["hub"] == "org/not-cached"
    assert "unknown" in weights_record("a model object")


def test_sha256_is_cached_by_path_size_and_mtime(tmp_path):
    path = tmp_path / "w.pt"
    path.write_bytes(b"one")
    first = sha256_file(path)
    assert sha256_file(path) == first == hashlib.sha256(b"one").hexdigest()
    path.write_bytes(b"two!")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert sha256_file(path) == hashlib.sha256(b"two!").hexdigest()


def _result(spec: str) -> dict:
    return {"model": {"name": spec, "spec": spec}, "task_name": "t", "kind": "classification", "score": 0.5}


def test_specs_with_the_same_slug_do_not_overwrite_each_other(tmp_path):
    first = write_result(_result("ViT-B-16:/a/b_c.pt"), tmp_path)
    second = write_result(_result("ViT-B-16:/a_b/c.pt"), tmp_path)
    assert first != second and first.parent.name == "ViT-B-16_a_b_c.pt"
    assert second.parent.name.startswith("ViT-B-16_a_b_c.pt-")
    assert json.loads(first.read_text())["model"]["spec"] == "ViT-B-16:/a/b_c.pt"
    assert write_result(_result("ViT-B-16:/a/b_c.pt"), tmp_path) == first  # the same spec reruns in place
