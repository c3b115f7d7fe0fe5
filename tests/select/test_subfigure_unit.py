"""`select --unit subfigure`: panel crops as samples, in the archive's shard format, read by OpenCLIP's loader.

The subfigures table is written by hand here (halves of every landscape image, the left
half with a label and a subcaption, the right without), so crops, keys and texts are
checked against known boxes whatever a detector would find.
"""

from __future__ import annotations

import io
import json
import shutil
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from PIL import Image
from pydantic import ValidationError
from typer.testing import CliRunner

from biomedica.archive.reader import iter_samples, iter_shard, read_shard_index
from biomedica.cli.select import select
from biomedica.curate.run import run_curate
from biomedica.curate.subfigures.boxes import SUBFIGURES_SCHEMA
from biomedica.records import SUBFIGURE_SHARD_SCHEMA
from biomedica.select import SelectConfig, run_select

BROKEN = "PMC9000007_002"  # a PNG figure with two panels (landscape), planted undecodable in one test


def _subfigure_rows(archive) -> list[dict]:
    rows = []
    for sample in read_shard_index(archive, columns=["key", "width", "height"]).to_pylist():
        key, width, height = sample["key"], sample["width"], sample["height"]
        if width < height:
            rows.append({"key": key, "panel": 0, "x0": 0, "y0": 0, "x1": width, "y1": height, "score": 1.0,
                         "label": None, "subcaption": None, "method": "hand"})
            continue
        rows.append({"key": key, "panel": 0, "x0": 0, "y0": 0, "x1": width // 2, "y1": height, "score": 0.75,
                     "label": "a", "subcaption": f"Left half of {key}.", "method": "hand+order"})
        rows.append({"key": key, "panel": 1, "x0": width // 2, "y0": 0, "x1": width, "y1": height, "score": 0.5,
                     "label": None, "subcaption": None, "method": "hand+order"})
    return rows


@pytest.fixture(scope="module")
def annotated(curation_archive, tmp_path_factory):
    """(archive, annotations with panels.parquet and the hand-made subfigures.parquet, subfigure rows)."""
    annotations = tmp_path_factory.mktemp("subfigure-annotations")
    run_curate(curation_archive, annotations, steps=("panels",))
    rows = _subfigure_rows(curation_archive)
    pq.write_table(pa.Table.from_pylist(rows, schema=SUBFIGURES_SCHEMA), annotations / "subfigures.parquet")
    return curation_archive, annotations, rows


def _config(annotated, out, **options) -> SelectConfig:
    archive, annotations, _ = annotated
    return SelectConfig(archive=archive, annotations=annotations, out=out, unit="subfigure", output="shards",
                        held_out_fraction=0, **options)


def _crops(out) -> list[tuple[dict, bytes]]:
    sizes = json.loads((out / "sizes.json").read_text())
    return [sample for name in sizes for sample in iter_shard(out / name)]


def test_crops_equal_the_boxes_with_subcaptions_and_provenance(annotated, tmp_path):
    archive, _, rows = annotated
    result = run_select(_config(annotated, tmp_path / "out", samples_per_shard=20))
    out = tmp_path / "out"
    assert result.selected == result.panels_written == len(rows) and result.figures_selected == 51
    assert (result.figures_failed, result.panels_skipped, result.figures_without_panels) == (0, 0, 0)
    sizes = json.loads((out / "sizes.json").read_text())
    assert sum(sizes.values()) == len(rows) and next(iter(sizes)) == "000000.tar" and max(sizes.values()) == 20
    parents = {record["key"]: (record, image) for record, image in iter_samples(archive)}
    table = {(r["key"], r["panel"]): r for r in rows}
    crops = _crops(out)
    assert sorted(record["key"] for record, _ in crops) == sorted(f"{k}_p{p}" for k, p in table)
    formats = set()
    for record, data in crops:
        meta = record["subfigure"]
        parent, parent_bytes = parents[meta["parent_key"]]
        row = table[(meta["parent_key"], meta["panel"])]
        box = (row["x0"], row["y0"], row["x1"], row["y1"])
        assert record["key"] == f"{parent['key']}_p{row['panel']}" and meta["box"] == list(box)
        assert meta["label"] == row["label"] and meta["method"] == row["method"] and meta["score"] == row["score"]
        assert meta["figure_caption"] == parent["caption"]
        assert record["caption"] == (row["subcaption"] or parent["caption"])  # the json caption is the txt
        with Image.open(io.BytesIO(parent_bytes)) as image:
            expected = np.asarray(image.crop(box))
        with Image.open(io.BytesIO(data)) as crop:
            assert crop.format == {"png": "PNG", "jpg": "JPEG"}[parent["image_format"]]
            got = np.asarray(crop)
        assert (record["width"], record["height"]) == (box[2] - box[0], box[3] - box[1]) == (got.shape[1], got.shape[0])
        assert record["image_format"] == parent["image_format"] and record["pmcid"] == parent["pmcid"]
        if parent["image_format"] == "png":
            assert np.array_equal(got, expected)  # lossless: pixel for pixel
        else:
            assert np.abs(got.astype(int) - expected.astype(int)).mean() < 2.0  # JPEG q95 4:4:4 re-encode
        formats.add(parent["image_format"])
    assert formats == {"png", "jpg"}
    # txt members are the pairing texts, and the shard index carries the provenance columns
    for name in sizes:
        index = pq.read_table(out / name.replace(".tar", ".parquet"))
        assert index.schema.equals(SUBFIGURE_SHARD_SCHEMA, check_metadata=False) and index.num_rows == sizes[name]
    import webdataset as wds

    texts = {s["__key__"]: s["txt"].decode() for s in wds.WebDataset(result.shard_pattern, shardshuffle=False)}
    for (key, panel), row in table.items():
        assert texts[f"{key}_p{panel}"] == (row["subcaption"] or parents[key][0]["caption"])
    summary = json.loads((out / "selection.json").read_text())
    assert summary["unit"] == "subfigure" and summary["subfigures"]["panels_written"] == len(rows)


def test_openclip_training_loader_reads_the_crops(openclip_first_batch, annotated, tmp_path):
    result = run_select(_config(annotated, tmp_path / "out", samples_per_shard=25))
    images, texts, info = openclip_first_batch(result.shard_pattern)
    assert tuple(images.shape) == (4, 3, 16, 16) and tuple(texts.shape) == (4, 8)
    assert info.dataloader.num_samples >= result.panels_written  # sizes.json read as for any archive shards


def test_filters_apply_to_the_parent_figure(annotated, tmp_path):
    archive, annotations, rows = annotated
    panel_types = {r["key"]: r["panel_type"] for r in pq.read_table(annotations / "panels.parquet").to_pylist()}
    result = run_select(_config(annotated, tmp_path / "out", panel_types=["single"], license_groups=["commercial"]))
    parents = {record["subfigure"]["parent_key"] for record, _ in _crops(tmp_path / "out")}
    assert parents and all(panel_types[k] == "single" for k in parents)
    groups = {r["key"]: r["group"] for r in read_shard_index(archive, columns=["key"]).to_pylist()}
    assert all(groups[k] == "commercial" for k in parents)
    assert result.panels_written == sum(1 for r in rows if r["key"] in parents)
    limited = run_select(_config(annotated, tmp_path / "lim", limit=3))
    assert limited.selected == limited.panels_written == 3  # --limit counts panels


def test_refusals_are_one_line(annotated, tmp_path):
    archive = annotated[0]
    with pytest.raises(ValidationError, match="--output shards"):
        SelectConfig(archive=archive, out=tmp_path / "m", unit="subfigure")
    with pytest.raises(ValueError, match=r"run `biomedica curate subfigures .*` first"):
        run_select(SelectConfig(archive=archive, annotations=tmp_path / "empty", out=tmp_path / "o", unit="subfigure",
                                output="shards"))


def test_an_undecodable_figure_is_recorded_and_its_panels_skipped(annotated, tmp_path):
    archive, annotations, rows = annotated
    broken = sys.modules["biomedica_tests_archive_factory"].copy_with_undecodable_image(
        archive, tmp_path / "archive", BROKEN)
    shutil.rmtree(broken / "annotations", ignore_errors=True)
    out = tmp_path / "out"
    config = SelectConfig(archive=broken, annotations=annotations, out=out, unit="subfigure", output="shards",
                          held_out_fraction=0)
    result = run_select(config)
    lost = sum(1 for r in rows if r["key"] == BROKEN)
    assert lost == 2 and result.figures_failed == 1 and result.panels_skipped == lost
    assert result.panels_written == len(rows) - lost
    assert not any(record["subfigure"]["parent_key"] == BROKEN for record, _ in _crops(out))
    errors = pq.read_table(out / "errors" / "select-000000.parquet").to_pylist()  # the shard that held its panels
    assert [(e["id"], e["stage"], e["kind"]) for e in errors] == [(BROKEN, "select", "image-undecodable")]
    # --overwrite removes what the earlier selection wrote, its error file included
    again = run_select(SelectConfig(**{**config.model_dump(), "archive": archive, "overwrite": True}))
    assert again.figures_failed == 0 and not (out / "errors").exists()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(select)
    app.command("noop")(lambda: None)
    return app


def test_cli_unit_subfigure(annotated, tmp_path):
    archive, annotations, rows = annotated
    runner = CliRunner()
    base = ["select", str(archive), "--out", str(tmp_path / "out"), "--annotations", str(annotations),
            "--unit", "subfigure", "--held-out-fraction", "0"]
    result = runner.invoke(_app(), [*base, "--output", "shards"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.translate({ord(c): " " for c in "│┃┌┐└┘├┤┬┴┼─━"}).split())
    assert f"panels written (crops) {len(rows)}" in text and "figures selected 51 of 51" in text
    assert "figures failed to decode 0" in text
    refused = runner.invoke(_app(), [*base[:3], str(tmp_path / "o2"), *base[4:]])  # manifest is the default output
    assert refused.exit_code == 2 and "--output shards" in refused.output and "Traceback" not in refused.output


def test_cli_exits_1_when_selected_figures_have_no_subfigure_rows(annotated, tmp_path):
    """A figure ingested after `curate subfigures` ran has no panels: the crops of the others are written, the
    summary counts it, and the command says what to run and exits 1 (never 0 with a figure left out)."""
    archive, annotations, rows = annotated
    partial = tmp_path / "ann"
    shutil.copytree(annotations, partial)
    dropped = rows[0]["key"]
    kept = [row for row in rows if row["key"] != dropped]
    pq.write_table(pa.Table.from_pylist(kept, schema=SUBFIGURES_SCHEMA), partial / "subfigures.parquet")
    result = CliRunner().invoke(_app(), ["select", str(archive), "--out", str(tmp_path / "out"), "--annotations",
                                         str(partial), "--unit", "subfigure", "--output", "shards",
                                         "--held-out-fraction", "0"])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.translate({ord(c): " " for c in "│┃┌┐└┘├┤┬┴┼─━"}).split())
    assert f"panels written (crops) {len(kept)}" in text
    assert "1 selected figure(s) have no rows in subfigures.parquet" in text and "curate subfigures" in text
    assert "Traceback" not in result.output
