"""The `biomedica` command line: demo end to end, ingest + inspect, and bad options."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from biomedica.cli import app

runner = CliRunner()


def test_demo_runs_end_to_end_and_reports_the_archive(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--articles", "6", "--workers", "1"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "archive" / "manifest.json").read_text())
    assert manifest["totals"]["samples"] > 0
    assert "done: archive at" in result.output
    assert "By license group" in result.output


def test_ingest_then_inspect(tmp_path, demo_corpus):
    out = tmp_path / "a"
    result = runner.invoke(app, ["ingest", str(demo_corpus), "--out", str(out), "--no-progress", "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert "samples total" in result.output
    result = runner.invoke(app, ["inspect", str(out), "--verify"])
    assert result.exit_code == 0, result.output
    assert "status: complete" in " ".join(result.output.split())


def test_unknown_option_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path), "--out", str(tmp_path / "o"), "--wrkers", "2"])
    assert result.exit_code == 2
    assert "No such option" in result.output and "--wrkers" in result.output


def test_missing_input_folder_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())


def test_inspect_of_a_folder_that_is_not_an_archive(tmp_path):
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert "not" in result.output.lower()
