"""Commands that could not do their job exit non-zero with one `error:` line (issue 10, item 9)."""

from __future__ import annotations

import shutil
import socket

import pytest
from typer.testing import CliRunner

from biomedica.cli import app

runner = CliRunner()


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output and "Errno" not in result.output, result.output
    return errors[0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once it is closed


def test_inspect_of_a_missing_folder_fails(tmp_path):
    result = runner.invoke(app, ["inspect", str(tmp_path / "nonexistent")])
    assert result.exit_code == 2
    assert "does not exist" in _one_error_line(result)


def test_inspect_of_a_folder_that_is_no_archive_fails(tmp_path):
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a biomedica archive" in _one_error_line(result)


def test_an_input_folder_without_jats_files_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no XML here")
    out = tmp_path / "out"
    result = runner.invoke(app, ["ingest", str(tmp_path / "in"), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2
    assert f"no .xml/.nxml files under {tmp_path / 'in'}" in _one_error_line(result)
    assert not (out / "_build_settings.json").exists()  # a later real ingest may choose its own settings


def test_a_package_mirror_listing_nothing_is_refused(tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path), "--source", "pmc-package", "--out", str(tmp_path / "o"),
                                 "--no-progress"])
    assert result.exit_code == 2
    assert "names no article package" in _one_error_line(result)


def test_a_cloud_selection_listing_nothing_is_refused(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("")
    result = runner.invoke(app, ["ingest", "--source", "pmc-cloud", "--ids", str(ids), "--out", str(tmp_path / "o"),
                                 "--endpoint-url", f"http://127.0.0.1:{_closed_port()}", "--no-progress"])
    assert result.exit_code == 2
    assert "lists no article" in _one_error_line(result)


@pytest.mark.parametrize("command", [
    ["ingest", "IN", "--out", "FILE"],
    ["select", "IN", "--out", "FILE"],
    ["curate", "run", "IN", "--annotations", "FILE"],
    ["demo", "--out", "FILE"],
    ["eval", "run", "--model", "tiny-random", "--out", "FILE"],
    ["eval", "report", "IN", "--out", "FILE"],
    ["train", "export", "IN", "--model", "ViT-B-16", "--out", "FILE"],
])
def test_a_file_given_as_output_folder_is_one_line(tmp_path, command):
    file = tmp_path / "taken"
    file.write_text("user data")
    args = [str(file) if a == "FILE" else str(tmp_path) if a == "IN" else a for a in command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    option = command[command.index("FILE") - 1]
    assert f"{option} {file} is a file, not a folder" in _one_error_line(result)
    assert file.read_text() == "user data"


def test_an_output_folder_under_a_file_is_one_line(tmp_path):
    file = tmp_path / "taken"
    file.write_text("x")
    result = runner.invoke(app, ["ingest", str(tmp_path), "--out", str(file / "archive")])
    assert result.exit_code == 2
    assert f"{file} is a file, not a folder" in _one_error_line(result)


def test_train_run_refuses_an_output_dir_that_is_a_file(tmp_path):
    (tmp_path / "runs").write_text("x")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"name: r\noutput_dir: {tmp_path / 'runs'}\nmodel: {{name: biomedica-tiny}}\n"
        f"data: {{sources: [{{name: a, archive: {tmp_path}}}]}}\nschedule: {{total_steps: 1, checkpoint_every_steps: 1}}\n"
    )
    result = runner.invoke(app, ["train", "run", str(config)])
    assert result.exit_code == 2
    assert f"{tmp_path / 'runs'} is a file, not a folder" in _one_error_line(result)


def test_enrich_with_eutils_unreachable_fails_fast_naming_the_host(tmp_path, demo_archive):
    archive = tmp_path / "archive"
    shutil.copytree(demo_archive, archive)
    port = _closed_port()
    result = runner.invoke(app, ["enrich", str(archive), "--base-url", f"http://127.0.0.1:{port}/eutils/",
                                 "--no-progress"])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert f"127.0.0.1:{port}" in line and "cannot reach" in line
    result = runner.invoke(app, ["enrich", str(archive), "--no-progress"],
                           env={"BIOMEDICA_EUTILS_URL": f"http://127.0.0.1:{port}/"})
    assert result.exit_code == 2 and f"127.0.0.1:{port}" in _one_error_line(result)
