import pyarrow.parquet as pq
import typer
from typer.testing import CliRunner

from biomedica.cli.curate import curate_app


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(curate_app)
    return app


def test_curate_run_prints_summary_and_writes_tables(curation_archive, tmp_path):
    result = CliRunner().invoke(_app(), ["curate", "run", str(curation_archive), "--annotations", str(tmp_path),
                                         "--near-threshold", "4"])
    assert result.exit_code == 0, result.output
    assert "dedup" in " ".join(result.output.split()) and "quality" in " ".join(result.output.split()) and "panels" in " ".join(result.output.split())
    assert pq.read_table(tmp_path / "dedup.parquet").num_rows == 51


def test_curate_errors_are_one_line_with_exit_code_2(tmp_path):
    result = CliRunner().invoke(_app(), ["curate", "dedup", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "biomedica ingest" in " ".join(result.output.split())
    result = CliRunner().invoke(_app(), ["curate", "dedup", str(tmp_path), "--near-threshold", "40"])
    assert result.exit_code == 2 and "near_threshold" in " ".join(result.output.split())


def test_curate_embed_and_cluster_commands(curation_archive, tiny_clip_config, tmp_path):
    runner = CliRunner()
    result = runner.invoke(_app(), ["curate", "embed", str(curation_archive), "--annotations", str(tmp_path),
                                    "--model", tiny_clip_config.stem, "--model-config", str(tiny_clip_config),
                                    "--name", "tiny", "--no-captions", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "embedded 51 samples from 9 shards" in " ".join(result.output.split())
    result = runner.invoke(_app(), ["curate", "cluster", str(curation_archive), "--annotations", str(tmp_path),
                                    "--embeddings", "tiny", "--k", "3", "--pca-dim", "4", "--backend", "sklearn"])
    assert result.exit_code == 0, result.output
    assert "51 samples in 3 clusters (sklearn" in " ".join(result.output.split())
    result = runner.invoke(_app(), ["curate", "cluster", str(curation_archive), "--annotations", str(tmp_path),
                                    "--embeddings", "tiny", "--k", "500"])
    assert result.exit_code == 2 and "lower --k" in " ".join(result.output.split())
