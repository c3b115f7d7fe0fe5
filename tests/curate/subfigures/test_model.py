"""The learned panel detector: tiny CPU training, the weights file round trip, clear errors, the CLI command."""

from __future__ import annotations

import random

import pytest
import torch
import typer
from typer.testing import CliRunner

from biomedica.cli.curate import curate_app
from biomedica.curate.subfigures.evaluate import evaluate_detector, synthetic_figures
from biomedica.curate.subfigures.model import (
    NMS_GRID,
    SCORE_GRID,
    WEIGHTS_FORMAT,
    DetectorConfig,
    ModelDetector,
    build_model,
    calibrate_thresholds,
    train_detector,
)
from biomedica.curate.subfigures.synthetic import SyntheticConfig, draw_plot, generate_figure

FAST = {"input_size": 128, "steps": 15, "batch_size": 2, "warmup_steps": 2, "lr": 3e-3, "figure_max_side": 300}


def _fixed_figures():
    """Two figures drawn once (plots only, no archive needed): training on them must lower the loss."""
    rng = random.Random(0)
    figures = [generate_figure([], rng, SyntheticConfig(single_prob=0.0, max_side=300)) for _ in range(2)]
    return lambda r: figures[r.randrange(2)]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    out = tmp_path_factory.mktemp("detector") / "tiny.pt"
    steps = []
    report = train_detector(_fixed_figures(), DetectorConfig.preset("tiny", **FAST), out, seed=0, device="cpu",
                            progress=lambda step, loss: steps.append((step, loss)))
    return out, report, steps


@pytest.mark.slow
def test_tiny_training_lowers_the_loss_and_saves_the_weights(tiny_weights):
    out, report, steps = tiny_weights
    assert [s for s, _ in steps] == list(range(1, 16)) and report.steps == 15 and report.device == "cpu"
    assert report.final_loss < report.first_loss
    assert sum(report.losses[-5:]) / 5 < sum(report.losses[:5]) / 5
    payload = torch.load(out, map_location="cpu", weights_only=True)
    assert payload["format"] == WEIGHTS_FORMAT and payload["config"]["name"] == "tiny"
    assert payload["train"]["steps"] == 15 and payload["train"]["seed"] == 0
    assert not list(out.parent.glob(".*tmp*"))  # written atomically: no temporary left


@pytest.mark.slow
def test_saved_detector_loads_and_returns_boxes_inside_the_image(tiny_weights):
    out, _, _ = tiny_weights
    detector = ModelDetector(out, device="cpu", score_threshold=0.0, nms_iou=0.5)
    assert detector.name == "model" and detector.config.input_size == 128
    image = draw_plot(random.Random(2), 700, 400).convert("L")  # any mode, any size
    boxes = detector.detect(image)
    assert boxes, "score threshold 0 keeps the best boxes"
    for box in boxes:
        assert 0 <= box.x0 < box.x1 <= image.width and 0 <= box.y0 < box.y1 <= image.height
        assert isinstance(box.x0, int) and 0.0 <= box.score <= 1.0
    strict = ModelDetector(out, device="cpu", score_threshold=1.0)
    assert strict.detect(image) == []
    figures = synthetic_figures([], 3, seed=9, synthetic=SyntheticConfig(max_side=300))
    report = evaluate_detector(detector, figures, "synthetic").report
    assert report.figures == 3 and 0.0 <= report.mean_iou <= 1.0


@pytest.mark.slow
def test_calibration_stores_the_chosen_thresholds(tiny_weights, tmp_path):
    copy = tmp_path / "calibrated.pt"
    copy.write_bytes(tiny_weights[0].read_bytes())
    chosen = calibrate_thresholds(copy, synthetic_figures([], 3, seed=4, synthetic=SyntheticConfig(max_side=300)),
                                  device="cpu")
    assert chosen["score_threshold"] in SCORE_GRID and chosen["nms_iou"] in NMS_GRID and chosen["figures"] == 3
    detector = ModelDetector(copy, device="cpu")
    assert (detector.score_threshold, detector.nms_iou) == (chosen["score_threshold"], chosen["nms_iou"])


def test_bad_weights_files_fail_with_one_clear_message(tmp_path):
    missing = tmp_path / "none.pt"
    with pytest.raises(FileNotFoundError, match="train-subfigure-detector") as info:
        ModelDetector(missing, device="cpu")
    assert str(missing) in str(info.value)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file at all")
    with pytest.raises(ValueError, match="not a readable subfigure detector weights file"):
        ModelDetector(garbage, device="cpu")
    foreign = tmp_path / "clip.pt"
    torch.save({"state_dict": {"visual.proj": torch.zeros(2)}, "epoch": 3}, foreign)
    with pytest.raises(ValueError, match=r"not a subfigure detector .*train-subfigure-detector"):
        ModelDetector(foreign, device="cpu")
    wrong = tmp_path / "wrong.pt"
    config = DetectorConfig.preset("tiny")
    torch.save({"format": WEIGHTS_FORMAT, "config": config.to_json(), "state_dict": {"x": torch.zeros(1)}}, wrong)
    with pytest.raises(ValueError, match="do not fit"):
        ModelDetector(wrong, device="cpu")


def test_presets_and_their_models():
    tiny, gpu = DetectorConfig.preset("tiny"), DetectorConfig.preset("gpu", steps=5)
    assert tiny.backbone == "tiny" and gpu.backbone == "resnet50" and gpu.steps == 5 and gpu.input_size >= 480
    assert DetectorConfig(**gpu.to_json()) == gpu
    with pytest.raises(ValueError, match="tiny"):
        DetectorConfig.preset("huge")
    model = build_model(DetectorConfig.preset("tiny", input_size=96)).eval()
    with torch.inference_mode():
        out = model([torch.rand(3, 80, 96)])
    assert set(out[0]) == {"boxes", "scores", "labels"}


def test_backbone_weights_must_be_a_local_matching_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="backbone weights"):
        build_model(DetectorConfig.preset("tiny", backbone_weights=tmp_path / "none.pt"))
    other = tmp_path / "other.pt"
    torch.save({"unrelated.weight": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="no tensor"):
        build_model(DetectorConfig.preset("tiny", backbone_weights=other))
    body = build_model(DetectorConfig.preset("tiny")).backbone.body
    own = tmp_path / "own.pt"
    torch.save(body.state_dict(), own)
    model = build_model(DetectorConfig.preset("tiny", backbone_weights=own))
    assert torch.equal(model.backbone.body.state_dict()["s1.0.weight"], body.state_dict()["s1.0.weight"])


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(curate_app)
    return app


@pytest.mark.slow
def test_train_command_on_the_curation_archive(curation_archive, tmp_path):
    out = tmp_path / "detector.pt"
    result = CliRunner().invoke(_app(), ["curate", "train-subfigure-detector", str(curation_archive), "--out", str(out),
                                         "--steps", "3", "--batch-size", "2", "--eval-figures", "4", "--device", "cpu",
                                         "--calibrate-figures", "2",
                                         "--no-progress"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for what in ("train pool", "3 x 2 figures", "thresholds", "figures/s", "eval mAP@0.5", "eval mean IoU", "eval figure accuracy"):
        assert what in text
    assert ModelDetector(out, device="cpu").config.steps == 3
    # the weights now exist (a subfigures table may be recorded against them): a second run refuses, leaves them alone
    before = out.read_bytes()
    args = ["curate", "train-subfigure-detector", str(curation_archive), "--out", str(out), "--steps", "2",
            "--batch-size", "2", "--eval-figures", "0", "--calibrate-figures", "0", "--device", "cpu", "--no-progress"]
    refused = CliRunner().invoke(_app(), args)
    assert refused.exit_code == 2 and "--overwrite" in refused.output and "Traceback" not in refused.output
    assert out.read_bytes() == before
    replaced = CliRunner().invoke(_app(), [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert ModelDetector(out, device="cpu").config.steps == 2


def test_train_command_refuses_bad_options_in_one_line(curation_archive, tmp_path):
    runner = CliRunner()
    result = runner.invoke(_app(), ["curate", "train-subfigure-detector", str(curation_archive), "--out",
                                    str(tmp_path / "x.pt"), "--config", "huge"])
    assert result.exit_code == 2 and "use one of tiny" in " ".join(result.output.split())
    result = runner.invoke(_app(), ["curate", "train-subfigure-detector", str(tmp_path / "missing"), "--out",
                                    str(tmp_path / "x.pt")])
    assert result.exit_code == 2 and "biomedica ingest" in " ".join(result.output.split())


def test_a_caption_count_hint_picks_among_the_boxes_the_model_scored(tiny_weights):
    """Hint K: the best K of the boxes scoring at least half the threshold, when they reach K; else as without it."""
    from biomedica.curate.subfigures.model import HINT_SCORE_FLOOR

    out, _, _ = tiny_weights
    image = draw_plot(random.Random(3), 600, 400)
    loose = ModelDetector(out, device="cpu", score_threshold=0.0, nms_iou=0.5)
    scored = loose.detect(image)
    assert len(scored) >= 3
    threshold = (scored[1].score + scored[2].score) / 2  # two boxes pass; the third just misses
    detector = ModelDetector(out, device="cpu", score_threshold=threshold, nms_iou=0.5)
    plain = detector.detect(image)
    assert len(plain) == 2
    floor = threshold * HINT_SCORE_FLOOR
    reachable = sum(box.score >= floor for box in scored)
    hinted = detector.detect(image, expected_panels=3)
    assert hinted == (scored[:3] if reachable >= 3 else plain)
    assert detector.detect(image, expected_panels=1) == plain  # 1 is no count to pick by
    assert detector.detect(image, expected_panels=len(scored) + 50) == plain  # never more boxes than it scored
    assert detector.detect(image, expected_panels=2) == plain[:2]
