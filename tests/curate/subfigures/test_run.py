"""`curate subfigures`: the table contract, resume by shard, settings, per-sample errors, panels.parquet agreement.

The detectors here are small classes of the tests' own that implement the PanelDetector
protocol with known answers (landscape images split into halves, portrait ones single), so
the step is checked independently of how well the gutter or model detector finds panels.
"""

from __future__ import annotations

import sys

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from biomedica.archive.annotations import AnnotationStore
from biomedica.archive.errors import read_errors
from biomedica.archive.reader import read_shard_index, shard_paths
from biomedica.curate.run import run_curate
from biomedica.curate.subfigures.boxes import SUBFIGURES_SCHEMA, Box
from biomedica.curate.subfigures.run import SubfigureConfig, make_detector, run_subfigures
from biomedica.io.settings import SettingsMismatch

# OCR of panel letters is tested in test_letters/test_ocr; here it would only slow the known-answer detectors
NO_OCR = SubfigureConfig(ocr="off")
BROKEN = "PMC9000007_002"  # a PNG of the curation archive, planted undecodable below


class Halves:
    """Landscape (or square) images: two panels, left and right halves; portrait images: single (no box)."""

    name = "halves"

    def detect(self, image, expected_panels=None):
        width, height = image.size
        if width < height:
            return []
        return [Box(width // 2, 0, width, height, 0.8), Box(0, 0, width // 2, height, 0.9)]  # any order


class Thirds(Halves):
    name = "thirds"


class Exploding:
    name = "exploding"

    def detect(self, image, expected_panels=None):
        raise RuntimeError("detector fell over")


def expected_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    if width < height:
        return [(0, 0, width, height)]
    return [(0, 0, width // 2, height), (width // 2, 0, width, height)]


def plant_undecodable(archive, target):
    """tests/curate/archive_factory.py, as the session's curation_archive fixture loaded it."""
    return sys.modules["biomedica_tests_archive_factory"].copy_with_undecodable_image(archive, target, BROKEN)


@pytest.fixture
def store(tmp_path) -> AnnotationStore:
    return AnnotationStore(tmp_path / "ann")


def test_table_follows_the_contract_one_row_per_panel(curation_archive, store):
    result = run_subfigures(curation_archive, store, NO_OCR, detector=Halves())
    table = pq.read_table(result.path)
    assert table.schema.equals(SUBFIGURES_SCHEMA, check_metadata=False)
    index = read_shard_index(curation_archive, columns=["key", "width", "height"]).to_pylist()
    rows = table.to_pylist()
    assert [(r["key"], r["panel"]) for r in rows] == sorted((r["key"], r["panel"]) for r in rows)
    by_key: dict[str, list[dict]] = {}
    for row in rows:
        by_key.setdefault(row["key"], []).append(row)
    assert set(by_key) == {r["key"] for r in index}
    for sample in index:
        got = [(r["x0"], r["y0"], r["x1"], r["y1"]) for r in by_key[sample["key"]]]
        assert got == expected_boxes(sample["width"], sample["height"]), sample  # reading order: left, right
        assert [r["panel"] for r in by_key[sample["key"]]] == list(range(len(got)))
    portrait = [s for s in index if s["width"] < s["height"]]
    assert portrait, "the archive has single (portrait) figures"
    for sample in portrait:  # a figure judged single: exactly one row covering the whole image
        (row,) = by_key[sample["key"]]
        assert (row["x0"], row["y0"], row["x1"], row["y1"]) == (0, 0, sample["width"], sample["height"])
        assert row["label"] is None and row["subcaption"] is None and row["method"].startswith("halves")
    assert result.figures == 51 and result.failed == 0 and result.single == len(portrait)
    assert result.multiple == 51 - len(portrait) and result.panels == table.num_rows == result.table_rows
    assert result.shards_done == len(shard_paths(curation_archive)) and result.shards_skipped == 0
    assert result.panels_updated is None  # no panels.parquet in this folder


def test_resume_skips_done_shards_and_redoes_only_a_missing_part(curation_archive, store):
    first = run_subfigures(curation_archive, store, NO_OCR, detector=Halves())
    table = pq.read_table(first.path)
    shards = len(shard_paths(curation_archive))
    again = run_subfigures(curation_archive, store, NO_OCR, detector=Halves())
    assert (again.shards_done, again.shards_skipped, again.figures) == (0, shards, 0)
    assert pq.read_table(again.path).equals(table)
    parts = sorted((store.root / "subfigures").glob("*.parquet"))
    assert len(parts) == shards and (store.root / "subfigures" / "meta.json").is_file()
    killed = parts[1]  # a run killed before this shard's part was published
    rows_in_part = pq.read_metadata(killed).num_rows
    killed.unlink()
    resumed = run_subfigures(curation_archive, store, NO_OCR, detector=Halves())
    assert (resumed.shards_done, resumed.shards_skipped) == (1, shards - 1)
    assert resumed.panels == rows_in_part and killed.is_file()
    assert pq.read_table(resumed.path).equals(table)


def test_a_resume_with_other_settings_is_refused(curation_archive, store):
    run_subfigures(curation_archive, store, NO_OCR, detector=Halves())
    with pytest.raises(SettingsMismatch, match="detector: 'halves' -> 'thirds'"):
        run_subfigures(curation_archive, store, NO_OCR, detector=Thirds())
    with pytest.raises(SettingsMismatch, match="score_threshold: None -> 0.5"):
        run_subfigures(curation_archive, store, SubfigureConfig(score_threshold=0.5, ocr="off"), detector=Halves())


def test_an_undecodable_image_is_one_error_and_no_rows(curation_archive, tmp_path):
    archive = plant_undecodable(curation_archive, tmp_path / "archive")
    store = AnnotationStore(archive / "annotations")  # the default folder: errors go to the archive's errors/
    result = run_subfigures(archive, store, NO_OCR, detector=Halves())
    keys = set(pq.read_table(result.path, columns=["key"]).column("key").to_pylist())
    assert BROKEN not in keys and len(keys) == 50 and result.failed == 1 and result.figures == 50
    errors = [e for e in read_errors(archive).to_pylist() if e["stage"] == "curate"]
    assert [(e["id"], e["kind"]) for e in errors] == [(BROKEN, "image-undecodable")]
    assert "no subfigure rows" in errors[0]["message"]
    assert list((archive / "errors").glob("curate-subfigures-*.parquet"))


def test_a_failing_detector_is_recorded_per_sample(curation_archive, tmp_path):
    store = AnnotationStore(tmp_path / "ann")
    result = run_subfigures(curation_archive, store, NO_OCR, detector=Exploding())
    assert result.failed == 51 and result.panels == 0 and pq.read_table(result.path).num_rows == 0
    errors = read_errors(tmp_path / "ann").to_pylist()  # a folder of one's own records its errors itself
    assert len(errors) == 51 and {e["kind"] for e in errors} == {"detector-failed"}
    assert "detector fell over" in errors[0]["message"]


def test_panels_table_agrees_with_the_detector(curation_archive, store):
    run_curate(curation_archive, store.root, steps=("panels",))
    heuristic = {r["key"]: r for r in pq.read_table(store.table_path("panels")).to_pylist()}
    result = run_subfigures(curation_archive, store, NO_OCR, detector=Halves())
    assert result.panels_updated == 51
    counts: dict[str, int] = {}
    for key in pq.read_table(result.path, columns=["key"]).column("key").to_pylist():
        counts[key] = counts.get(key, 0) + 1
    agreed = {r["key"]: r for r in pq.read_table(store.table_path("panels")).to_pylist()}
    for key, n in counts.items():
        assert agreed[key]["panel_type"] == ("multiple" if n >= 2 else "single")
        assert agreed[key]["evidence"] == f"detector halves found {n} panel{'s' if n > 1 else ''}"
        assert agreed[key]["caption_letters"] == heuristic[key]["caption_letters"]  # the caption fields are kept
    # `curate panels` run again prefers the detector's counts to its layout heuristic: the same table
    run_curate(curation_archive, store.root, steps=("panels",))
    assert {r["key"]: r for r in pq.read_table(store.table_path("panels")).to_pylist()} == agreed


def test_make_detector_refusals(tmp_path):
    with pytest.raises(ValueError, match="--weights"):
        make_detector("model", None)
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        make_detector("model", tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="--detector model only"):
        make_detector("gutter", tmp_path / "w.pt")
    with pytest.raises(ValueError, match="extra"):
        SubfigureConfig(detector="gutter", colour="red")


def _app():
    import typer

    from biomedica.cli.curate import curate_app

    app = typer.Typer()
    app.add_typer(curate_app)
    return app


def _plain(output: str) -> str:
    """The summary table's text without its frame, one space between words."""
    return " ".join(output.translate({ord(c): " " for c in "│┃┌┐└┘├┤┬┴┼─━"}).split())


def test_cli_refuses_in_one_line(curation_archive, tmp_path):
    runner = CliRunner()
    result = runner.invoke(_app(), ["curate", "subfigures", str(curation_archive), "--annotations", str(tmp_path / "a"),
                                    "--detector", "model", "--no-progress"])
    assert result.exit_code == 2 and "--weights" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(_app(), ["curate", "subfigures", str(tmp_path / "nope"), "--no-progress"])
    assert result.exit_code == 2 and "biomedica ingest" in " ".join(result.output.split())
    result = runner.invoke(_app(), ["curate", "subfigures", str(curation_archive), "--detector", "magic"])
    assert result.exit_code == 2 and "detector" in result.output



def test_cli_runs_the_gutter_detector_and_resumes(curation_archive, tmp_path):
    runner = CliRunner()
    args = ["curate", "subfigures", str(curation_archive), "--annotations", str(tmp_path / "a"), "--no-progress"]
    result = runner.invoke(_app(), args)  # auto without --weights: the gutter detector
    assert result.exit_code == 0, result.output
    text = _plain(result.output)
    assert "detector gutter" in text and "figures in 51" in text and "failed" in text and "figures/s" in text
    table = pq.read_table(tmp_path / "a" / "subfigures.parquet")
    assert table.schema.equals(SUBFIGURES_SCHEMA, check_metadata=False)
    assert len(set(table.column("key").to_pylist())) == 51 and set(table.column("method").to_pylist()) <= {
        "gutter", "gutter+glyph", "gutter+order", "gutter+"}
    again = runner.invoke(_app(), args)
    shards = len(shard_paths(curation_archive))
    assert again.exit_code == 0 and f"0 / {shards}" in _plain(again.output)
    assert pq.read_table(tmp_path / "a" / "subfigures.parquet").equals(table)
    other = runner.invoke(_app(), [*args, "--detector", "model", "--weights", str(tmp_path / "w.pt")])
    assert other.exit_code == 2 and "w.pt" in other.output


@pytest.mark.slow
def test_cli_runs_a_trained_model_detector(curation_archive, tmp_path):
    import json
    import random

    from biomedica.curate.subfigures.model import DetectorConfig, train_detector
    from biomedica.curate.subfigures.run import weights_sha256
    from biomedica.curate.subfigures.synthetic import SyntheticConfig, generate_figure

    rng = random.Random(0)
    figures = [generate_figure([], rng, SyntheticConfig(single_prob=0.0, max_side=300)) for _ in range(2)]
    weights = tmp_path / "tiny.pt"
    train_detector(lambda r: figures[r.randrange(2)], DetectorConfig.preset(
        "tiny", input_size=128, steps=3, batch_size=2, warmup_steps=1, figure_max_side=300), weights, seed=0, device="cpu")
    runner = CliRunner()
    args = ["curate", "subfigures", str(curation_archive), "--annotations", str(tmp_path / "a"), "--no-progress",
            "--weights", str(weights), "--device", "cpu", "--ocr", "off"]
    result = runner.invoke(_app(), args)  # auto with --weights: the model
    assert result.exit_code == 0, result.output
    assert "detector model" in _plain(result.output)
    table = pq.read_table(tmp_path / "a" / "subfigures.parquet")
    assert len(set(table.column("key").to_pylist())) == 51
    assert {m.partition("+")[0] for m in table.column("method").to_pylist()} == {"model"}
    meta = json.loads((tmp_path / "a" / "subfigures" / "meta.json").read_text())
    assert meta["detector"] == "model" and meta["weights_sha256"] == weights_sha256(weights)
    refused = runner.invoke(_app(), [*args, "--score-threshold", "0.9"])
    assert refused.exit_code == 2 and "score_threshold: None -> 0.9" in refused.output


@pytest.mark.slow
def test_model_detector_without_torch_is_one_line(curation_archive, tmp_path):
    import os
    import subprocess

    import biomedica

    (tmp_path / "w.pt").write_bytes(b"weights")
    code = ("import sys\nsys.modules['torch'] = None\nsys.modules['torchvision'] = None\n"
            "sys.argv = ['biomedica', *sys.argv[1:]]\nfrom biomedica.cli import app\napp()\n")
    env = os.environ | {"PYTHONPATH": str(__import__("pathlib").Path(biomedica.__file__).resolve().parents[1]),
                        "COLUMNS": "300"}
    done = subprocess.run([sys.executable, "-c", code, "curate", "subfigures", str(curation_archive), "--annotations",
                           str(tmp_path / "a"), "--weights", str(tmp_path / "w.pt"), "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "pip install 'biomedica[clip]'" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a" / "subfigures" / "meta.json").exists()  # nothing recorded by a run that could not start


def test_cli_exits_1_naming_the_figures_it_could_not_read(curation_archive, tmp_path):
    archive = plant_undecodable(curation_archive, tmp_path / "archive")
    result = CliRunner().invoke(_app(), ["curate", "subfigures", str(archive), "--no-progress", "--ocr", "off"])
    assert result.exit_code == 1, result.output
    assert "1 figure(s) could not be read" in _plain(result.output) and "Traceback" not in result.output
    assert pq.read_table(archive / "annotations" / "subfigures.parquet").num_rows > 0  # the others are written


def test_a_damaged_shard_is_recorded_and_the_others_are_done(curation_archive, tmp_path):
    """A truncated tar: one `shard-unreadable` error, no part for it (a rerun retries it), the rest written, exit 1."""
    import shutil

    archive = tmp_path / "archive"
    shutil.copytree(curation_archive, archive)
    shutil.rmtree(archive / "annotations", ignore_errors=True)
    damaged = min(archive.glob("*/*.tar"))
    with open(damaged, "r+b") as handle:
        handle.truncate(damaged.stat().st_size // 2)
    result = CliRunner().invoke(_app(), ["curate", "subfigures", str(archive), "--no-progress", "--ocr", "off"])
    assert result.exit_code == 1, result.output
    assert "1 shard(s) could not be read" in _plain(result.output) and "Traceback" not in result.output
    errors = [e for e in read_errors(archive).to_pylist() if e["kind"] == "shard-unreadable"]
    assert [e["id"] for e in errors] == [damaged.name] and "rerun `curate subfigures`" in errors[0]["message"]
    parts = {p.name for p in (archive / "annotations" / "subfigures").glob("*.parquet")}
    assert f"{damaged.parent.name}-{damaged.stem}.parquet" not in parts and parts
    assert pq.read_table(archive / "annotations" / "subfigures.parquet").num_rows > 0
