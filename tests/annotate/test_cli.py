import typer
from typer.testing import CliRunner

from biomedica.annotate.store import ClusterLabel, LabelStore
from biomedica.cli.annotate import annotate


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(annotate)
    app.command("noop")(lambda: None)
    return app


def test_annotate_export_without_server(clustered):
    archive, annotations = clustered
    store = LabelStore(annotations / "labels.sqlite")
    store.add(ClusterLabel("a", 1, "labelled", "single", ["clinical_imaging"], ["ultrasound"]))
    store.add(ClusterLabel("b", 1, "labelled", "single", ["clinical_imaging"], ["ultrasound"]))
    result = CliRunner().invoke(_app(), ["annotate", str(archive), "--annotations", str(annotations), "--export"])
    assert result.exit_code == 0, result.output
    assert "exported 1 clusters" in " ".join(result.output.split()) and "2 annotators" in " ".join(result.output.split())
    assert (annotations / "labels.parquet").is_file()


def test_annotate_export_without_labels_is_refused(clustered, tmp_path):
    archive, _ = clustered
    result = CliRunner().invoke(_app(), ["annotate", str(archive), "--annotations", str(tmp_path), "--export"])
    assert result.exit_code == 2 and "no labels yet" in " ".join(result.output.split())
