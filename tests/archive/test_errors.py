"""Errors of every stage in errors/<stage>-<part>.parquet, and `inspect` showing them per stage."""

import io
from pathlib import Path

import pytest
from rich.console import Console

from biomedica.archive import ErrorSink, UnitWriter, finalize_archive, inspect_archive, read_errors
from biomedica.cli.inspect import render_report
from biomedica.records import ErrorRecord

from .conftest import FIGURES, make_figure


def _render(report) -> str:
    buffer = io.StringIO()
    render_report(report, Console(file=buffer, width=140, color_system=None))
    return buffer.getvalue()


def test_error_sink_replaces_its_part_and_read_errors_sees_every_stage(two_unit_archive):
    sink = ErrorSink(two_unit_archive, "curate")
    first = ErrorRecord(id="PMC1_000", stage="curate", kind="image-undecodable", message="bad")
    path = sink.write("panels", [first, first])
    assert path == two_unit_archive / "errors" / "curate-panels.parquet"
    sink.write("panels", [first])  # a re-run replaces its own part, never duplicates rows
    stages = read_errors(two_unit_archive).column("stage").to_pylist()
    assert sorted(stages) == ["curate", "ingest"]
    assert sink.write("panels", []) is None and not path.exists()
    with pytest.raises(ValueError, match="bad stage name"):
        ErrorSink(two_unit_archive, "Curate")


def test_stage_names_cannot_collide_and_read_errors_reads_only_the_columns_asked(two_unit_archive):
    # ("curate", "embed-x") and ("curate-embed", "x") would both be errors/curate-embed-x.parquet
    assert ErrorSink(two_unit_archive, "curate").path("embed-x").name == "curate-embed-x.parquet"
    for stage in ("curate-embed", "curate.embed", "part"):
        with pytest.raises(ValueError, match="bad stage name"):
            ErrorSink(two_unit_archive, stage)
    ErrorSink(two_unit_archive, "curate_embed").write("x", [ErrorRecord(id="k", stage="curate_embed", kind="k", message="m")])
    table = read_errors(two_unit_archive, columns=["stage", "kind"])
    assert table.column_names == ["stage", "kind"] and sorted(table.column("stage").to_pylist()) == [
        "curate_embed", "ingest"]
    assert read_errors(two_unit_archive / "nowhere", columns=["kind"]).column_names == ["kind"]


def test_curate_errors_go_to_the_archive_and_inspect_shows_them_with_ingest(two_unit_archive, tmp_path):
    from biomedica.curate.run import run_curate

    shard = two_unit_archive / "commercial" / "000001.tar"
    intact = shard.read_bytes()
    shard.write_bytes(intact[:1000])  # a damaged shard: panels cannot read its images
    results = run_curate(two_unit_archive, steps=("panels",))  # default annotations: errors in the archive
    assert results[0].counts["errors"] == 1
    assert (two_unit_archive / "errors" / "curate-panels.parquet").is_file()
    assert not list((two_unit_archive / "annotations").glob("errors-*"))  # no second place for errors

    report = inspect_archive(two_unit_archive)
    assert report.errors_by_kind == {"image-missing": 1}  # ingest's, as before
    assert report.errors_by_stage == {"ingest": {"image-missing": 1}, "curate": {"shard-unreadable": 1}}
    text = _render(report)
    assert "Errors by kind" in text and "Errors by stage" in text
    assert "shard-unreadable" in text and "curate" in text
    by_stage = text[text.index("Errors by stage"):text.index("Example sample")]
    assert "curate" in by_stage and "ingest" not in by_stage and "image-missing" not in by_stage  # shown once

    shard.write_bytes(intact)  # repaired: the next run drops its old errors
    run_curate(two_unit_archive, steps=("panels",))
    assert inspect_archive(two_unit_archive).errors_by_stage == {"ingest": {"image-missing": 1}}
    assert "Errors by stage" not in _render(inspect_archive(two_unit_archive))


def test_curate_embed_records_each_undecodable_image(tmp_path):
    pytest.importorskip("open_clip")
    from biomedica.archive.annotations import AnnotationStore
    from biomedica.curate.config import EmbedConfig
    from biomedica.curate.embed import embed_archive

    root = tmp_path / "archive"
    with UnitWriter(root, 0) as writer:
        writer.add_sample(make_figure("PMC1_000"), (FIGURES / "PMC10118017" / "fpls-14-1154535-g001.jpg").read_bytes(),
                          "jpg")
        writer.add_sample(make_figure("PMC1_001"), b"not an image at all", "jpg")
        writer.commit()
    finalize_archive(root, {}, {})
    import biomedica.models

    tiny = Path(biomedica.models.__file__).parent / "configs" / "biomedica-tiny.json"
    config = EmbedConfig(model="biomedica-tiny", model_config_json=tiny, device="cpu", batch_size=4, progress=False)
    result = embed_archive(root, AnnotationStore(root / "annotations"), config)
    assert result.failed == 1
    errors = read_errors(root).to_pylist()
    assert [(e["id"], e["stage"], e["kind"]) for e in errors] == [("PMC1_001", "curate", "image-undecodable")]
    assert (root / "errors" / "curate-embed-commercial-000000.parquet").is_file()  # per shard, whatever the model
    embed_archive(root, AnnotationStore(root / "annotations"), EmbedConfig(model="tiny-random", device="cpu", progress=False))
    assert sorted(p.name for p in (root / "errors").glob("curate-*")) == ["curate-embed-commercial-000000.parquet"]
    assert inspect_archive(root).errors_by_stage == {"curate": {"image-undecodable": 1}}
