import typer
from typer.testing import CliRunner

from biomedica.cli.select import select


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(select)
    app.command("noop")(lambda: None)  # two commands keep `select` a named subcommand
    return app


def test_select_command_prints_counts(curated, tmp_path):
    archive, annotations = curated
    result = CliRunner().invoke(_app(), [
        "select", str(archive), "--out", str(tmp_path / "out"), "--annotations", str(annotations),
        "--strategy", "concept-filtered", "--exclude-concept", "plots_and_charts", "--canonical-only",
    ])
    assert result.exit_code == 0, result.output
    assert "selected" in " ".join(result.output.split()) and "concepts dropped" in " ".join(result.output.split())
    assert (tmp_path / "out" / "manifest.parquet").is_file()


def test_select_command_refusals(curated, tmp_path):
    archive, annotations = curated
    result = CliRunner().invoke(_app(), ["select", str(archive), "--out", str(tmp_path / "o"),
                                         "--strategy", "concept-balanced"])
    assert result.exit_code == 2 and "cap_per_concept" in " ".join(result.output.split())
    result = CliRunner().invoke(_app(), ["select", str(archive), "--out", str(tmp_path / "o"), "--output", "zip"])
    assert result.exit_code == 2 and "output" in " ".join(result.output.split())
