"""`select --output shards` as one planned, parallel, resumable step; training-ready copies (`--image-size`).

Checked on the real curation archive (demo corpus figures, 84-245 px on the shorter side, JPEG and
PNG), so a target of 128 px resizes some images and leaves the smaller ones at their own size.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer
from PIL import Image
from pydantic import ValidationError
from typer.testing import CliRunner

from biomedica.archive.reader import iter_samples, read_shard_index
from biomedica.archive.split import DEFAULT_HELD_OUT_FRACTION, DEFAULT_SPLIT_SALT, is_held_out
from biomedica.cli.select import select
from biomedica.records import SHARD_SCHEMA, TRAINING_SHARD_SCHEMA
from biomedica.select import SelectConfig, SelectionExists, run_select
from biomedica.select.shards import PLAN_NAME

SIZE = 128
HELD_OUT_PMCID = "PMC9000215"  # held out by the default split (fraction 0.05, salt biomedica-eval-v1)


def _config(curated, out: Path, **options) -> SelectConfig:
    archive, annotations = curated
    settings = {"output": "shards", "samples_per_shard": 10, "workers": 1, **options}
    return SelectConfig(archive=archive, annotations=annotations, out=out, **settings)


def _shard(path: Path) -> list[tuple[dict, bytes]]:
    """(json record, image bytes) of each sample, read with webdataset (webp is no archive format, so not iter_shard)."""
    import webdataset as wds

    samples = []
    for sample in wds.WebDataset(str(path), shardshuffle=False):
        [image] = [sample[ext] for ext in ("jpg", "png", "webp") if ext in sample]
        samples.append((json.loads(sample["json"]), image))
    return samples


def _samples(out: Path) -> list[tuple[dict, bytes]]:
    sizes = json.loads((out / "sizes.json").read_text())
    return [sample for name in sizes for sample in _shard(out / name)]


def _fingerprint(out: Path) -> dict[str, str]:
    """sha256 of every shard, index, error part, sizes.json and the plan: equal = byte-identical outputs."""
    files = [*out.glob("*.tar"), *out.glob("*.parquet"), *out.glob("errors/*.parquet"), out / "sizes.json",
             out / PLAN_NAME]
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)}


@pytest.fixture(scope="module")
def originals(curated) -> dict[str, tuple[dict, bytes]]:
    """key -> (json record + the archive shard "<group>/<tar>" as `where`, stored bytes)."""
    where = {r["key"]: f"{r['group']}/{r['shard']}" for r in read_shard_index(curated[0], columns=["key", "shard"]).to_pylist()}
    return {record["key"]: ({**record, "where": where[record["key"]]}, image) for record, image in iter_samples(curated[0])}


def test_training_copies_equal_the_selection_resized(curated, originals, tmp_path):
    manifest = run_select(SelectConfig(archive=curated[0], annotations=curated[1], out=tmp_path / "m",
                                       license_groups=["commercial", "other"]))
    result = run_select(_config(curated, tmp_path / "out", license_groups=["commercial", "other"], image_size=SIZE))
    out = tmp_path / "out"
    keys = pq.read_table(tmp_path / "m" / "manifest.parquet").column("key").to_pylist()
    samples = _samples(out)
    assert result.samples_written == manifest.selected == len(samples) == len(keys)
    sizes = json.loads((out / "sizes.json").read_text())
    for i, name in enumerate(sizes):  # shard i holds rows 10i..10i+9 of the selection (each tar sorted by key)
        assert [r["key"] for r, _ in _shard(out / name)] == sorted(keys[10 * i: 10 * i + 10])
    resized = kept = 0
    for record, data in samples:
        original, stored = originals[record["key"]]
        assert record["caption"] == original["caption"] and record["pmcid"] == original["pmcid"]
        assert record["phash"] == original["phash"]  # a content hash: the original's
        assert record["original"] == {"image_format": original["image_format"], "width": original["width"],
                                      "height": original["height"], "sha256": hashlib.sha256(stored).hexdigest(),
                                      "shard": original["where"]}
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and record["image_format"] == "jpg" and image.mode in ("RGB", "L")
            assert image.size == (record["width"], record["height"])
            assert record["sha256"] == hashlib.sha256(data).hexdigest()
        short, w, h = min(original["width"], original["height"]), original["width"], original["height"]
        if short > SIZE:
            resized += 1
            assert min(image.size) == SIZE
            # aspect kept within a pixel: the long side is the rounded scaled one
            assert abs(max(image.size) - max(w, h) * SIZE / short) <= 1
        else:
            kept += 1
            assert image.size == (w, h)  # never upscaled
    assert resized and kept
    assert list(sizes) == [f"{i:06d}.tar" for i in range(len(sizes))] and sum(sizes.values()) == len(keys)
    for name, count in sizes.items():
        index = pq.read_table(out / name.replace(".tar", ".parquet"))
        assert index.schema.equals(TRAINING_SHARD_SCHEMA, check_metadata=False) and index.num_rows == count
    summary = json.loads((out / "selection.json").read_text())
    assert summary["image"] == {"size": SIZE, "mode": "shorter-side", "format": "jpeg", "quality": 85}
    assert summary["bytes"]["out"] == result.bytes_out < summary["bytes"]["in"] == result.bytes_in
    assert summary["failed"] == 0 and summary["resumed_shards"] == 0 and result.shards_written == len(sizes)
    plan = json.loads((out / PLAN_NAME).read_text())
    assert plan["shards"] == len(sizes) and plan["samples"] == len(keys) and len(plan["shard_keys_sha256"]) == len(sizes)
    assert plan["keys_sha256"] == hashlib.sha256("\n".join(keys).encode()).hexdigest()


def test_center_crop_is_square_and_webp_works(curated, originals, tmp_path):
    run_select(_config(curated, tmp_path / "out", image_size=96, resize_mode="center-crop", image_format="webp",
                       quality=80, limit=12))
    samples = _samples(tmp_path / "out")
    assert len(samples) == 12
    for record, data in samples:
        original = originals[record["key"]][0]
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "WEBP" and record["image_format"] == "webp"
            side = min(96, original["width"], original["height"])
            assert image.size == (side, side) == (record["width"], record["height"])
    import webdataset as wds

    sizes = json.loads((tmp_path / "out" / "sizes.json").read_text())
    urls = [str(tmp_path / "out" / name) for name in sizes]
    decoded = list(wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("webp", "txt"))
    assert len(decoded) == 12 and all(image.size[0] == image.size[1] for image, _ in decoded)


def test_openclip_loader_reads_training_shards(openclip_first_batch, curated, tmp_path):
    result = run_select(_config(curated, tmp_path / "out", image_size=64, samples_per_shard=8))
    images, texts, info = openclip_first_batch(result.shard_pattern)
    assert tuple(images.shape) == (4, 3, 16, 16) and tuple(texts.shape) == (4, 8)
    assert info.dataloader.num_samples >= result.samples_written == 51  # sizes.json read as for archive shards


@pytest.mark.slow
def test_workers_do_not_change_the_bytes_and_copies_stay_copies(curated, originals, tmp_path):
    one = run_select(_config(curated, tmp_path / "one", image_size=SIZE, samples_per_shard=7))
    two = run_select(_config(curated, tmp_path / "two", image_size=SIZE, samples_per_shard=7, workers=2))
    assert _fingerprint(tmp_path / "one") == _fingerprint(tmp_path / "two")
    assert one.sizes == two.sizes and len(one.sizes) == 8
    copies = run_select(_config(curated, tmp_path / "copies", samples_per_shard=7, workers=2))
    for record, data in _samples(tmp_path / "copies"):
        assert data == originals[record["key"]][1]  # byte copies: never decoded, never re-encoded
    index = pq.read_table(tmp_path / "copies" / "000000.parquet")
    assert index.schema.equals(SHARD_SCHEMA, check_metadata=False)
    assert copies.bytes_in == copies.bytes_out == sum(len(image) for _, image in originals.values())


def test_an_interrupted_selection_resumes_and_other_settings_are_refused(curated, tmp_path):
    reference = tmp_path / "reference"
    run_select(_config(curated, reference, image_size=SIZE))
    out = tmp_path / "out"
    run_select(_config(curated, out, image_size=SIZE))
    # as a run that died after three shards: no selection.json, no sizes.json, later shards missing or half written
    for name in ["selection.json", "sizes.json", "000003.tar", "000003.parquet", "000004.parquet", "000005.tar",
                 "000005.parquet"]:
        (out / name).unlink()
    (out / ".000005.tar.tmp-999999999-0-abcd").write_bytes(b"half a tar")  # from a writer that is gone
    with pytest.raises(SelectionExists, match=r"image_size: 128 -> 96.*--overwrite"):
        run_select(_config(curated, out, image_size=96))
    with pytest.raises(SelectionExists, match=r"selected samples differ.*--overwrite"):
        run_select(_config(curated, out, image_size=SIZE, limit=40))
    with pytest.raises(SelectionExists, match="unfinished shard selection"):
        run_select(SelectConfig(archive=curated[0], annotations=curated[1], out=out))
    result = run_select(_config(curated, out, image_size=SIZE, workers=2))  # workers may change
    assert result.shards_resumed == 3 and result.shards_written == 3 and result.samples_written == 51
    assert _fingerprint(out) == _fingerprint(reference)
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    summary = json.loads((out / "selection.json").read_text())
    assert summary["resumed_shards"] == 3 and summary["bytes"] == json.loads(
        (reference / "selection.json").read_text())["bytes"]


def test_overwrite_of_an_unfinished_selection_deletes_only_its_files(curated, tmp_path):
    out = tmp_path / "out"
    run_select(_config(curated, out, image_size=SIZE))
    (out / "selection.json").unlink()
    (out / "notes.txt").write_text("mine")
    (out / "000099.tar").write_bytes(b"mine too")
    run_select(_config(curated, out, overwrite=True, samples_per_shard=50))
    assert sorted(p.name for p in out.iterdir()) == ["000000.parquet", "000000.tar", "000001.parquet", "000001.tar",
                                                     "000099.tar", "notes.txt", PLAN_NAME, "selection.json",
                                                     "sizes.json"]


@pytest.mark.slow
def test_kill_then_rerun_equals_an_uninterrupted_run(curated, tmp_path):
    archive, annotations = curated
    cli = [sys.executable, "-m", "biomedica.cli", "select", str(archive), "--annotations", str(annotations),
           "--output", "shards", "--samples-per-shard", "1", "--image-size", str(SIZE), "--workers", "1",
           "--no-progress", "--out"]
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    subprocess.run([*cli, str(reference)], check=True, capture_output=True)
    proc = subprocess.Popen([*cli, str(resumed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (resumed / "000000.parquet").exists():
        time.sleep(0.002)
    assert proc.poll() is None, "the run finished before it could be killed; the test needs a slower input"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (resumed / "selection.json").exists() and (resumed / PLAN_NAME).is_file()
    done = len(list(resumed.glob("*.parquet")))
    assert 1 <= done < 51
    rerun = subprocess.run([*cli, str(resumed)], capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert _fingerprint(resumed) == _fingerprint(reference)
    assert not [p for p in resumed.rglob("*") if ".tmp" in p.name]
    assert json.loads((resumed / "selection.json").read_text())["resumed_shards"] == done


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(select)
    app.command("noop")(lambda: None)
    return app


def _text(output: str) -> str:
    return " ".join(output.translate({ord(c): " " for c in "│┃┌┐└┘├┤┬┴┼─━"}).split())


BROKEN = "PMC9000007_002"


def test_a_corrupt_image_is_an_error_row_and_exit_1(curated, tmp_path):
    archive, annotations = curated
    broken = sys.modules["biomedica_tests_archive_factory"].copy_with_undecodable_image(
        archive, tmp_path / "archive", BROKEN)
    out = tmp_path / "out"
    result = CliRunner().invoke(_app(), ["select", str(broken), "--annotations", str(annotations), "--out", str(out),
                                         "--output", "shards", "--image-size", str(SIZE), "--samples-per-shard", "10",
                                         "--workers", "1", "--no-progress"])
    assert result.exit_code == 1, result.output
    text = _text(result.output)
    assert "1 selected image(s) did not decode" in text and "samples written 50" in text and "Traceback" not in text
    assert "samples failed 1" in text and "bytes in" in text and "samples/s" in text
    keys = [record["key"] for record, _ in _samples(out)]
    assert len(keys) == 50 and BROKEN not in keys
    [part] = list((out / "errors").glob("*.parquet"))
    errors = pq.read_table(part).to_pylist()
    assert [(e["id"], e["stage"]) for e in errors] == [(BROKEN, "select")] and errors[0]["kind"].startswith("image-")
    summary = json.loads((out / "selection.json").read_text())
    assert summary["failed"] == 1 and sum(summary["sizes"].values()) == 50


def test_select_quality_default_is_the_measured_one():
    """select's config cannot import Pillow (CLI start-up), so it repeats images.training's measured default."""
    from biomedica.images.training import DEFAULT_QUALITY

    assert SelectConfig.model_fields["quality"].default == DEFAULT_QUALITY


def test_cli_refusals_are_one_line(curated, tmp_path):
    archive = curated[0]
    runner = CliRunner()
    for options, message in [(["--image-size", "128"], "--image-size writes new shards; add --output shards"),
                             (["--output", "shards", "--quality", "80"], "add --image-size"),
                             # the default value given explicitly is refused too: an option is never ignored
                             (["--output", "shards", "--quality", "85"], "add --image-size"),
                             (["--output", "shards", "--resize-mode", "shorter-side"], "add --image-size"),
                             (["--output", "shards", "--image-size", "8"], "--image-size 288"),
                             (["--include-held-out", "--held-out-fraction", "0.2"], "drop one of them")]:
        result = runner.invoke(_app(), ["select", str(archive), "--out", str(tmp_path / "o"), *options])
        assert result.exit_code == 2 and message in _text(result.output) and "Traceback" not in result.output
    with pytest.raises(ValidationError, match="add --output shards"):
        SelectConfig(archive=archive, out=tmp_path, image_size=256)


@pytest.fixture(scope="module")
def with_held_out(tmp_path_factory) -> Path:
    """A small real archive with one article the default eval split holds out (a demo article under its PMCID)."""
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest
    from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus

    assert is_held_out(HELD_OUT_PMCID, DEFAULT_HELD_OUT_FRACTION, DEFAULT_SPLIT_SALT)
    root = tmp_path_factory.mktemp("held-out")
    write_demo_corpus(root / "corpus", DemoCorpusConfig(n_articles=3, seed=1))
    sys.modules["biomedica_tests_archive_factory"]._clone_article(root / "corpus", "9000001", HELD_OUT_PMCID[3:])
    run_ingest(IngestConfig(input=root / "corpus", output=root / "archive", workers=1, progress=False))
    return root / "archive"


def test_held_out_articles_are_left_out_unless_included(with_held_out, tmp_path):
    default = run_select(SelectConfig(archive=with_held_out, out=tmp_path / "a", output="shards", image_size=64,
                                      workers=1))
    pmcids = {record["pmcid"] for record, _ in _samples(tmp_path / "a")}
    assert HELD_OUT_PMCID not in pmcids and default.held_out_excluded > 0
    assert not any(is_held_out(p, DEFAULT_HELD_OUT_FRACTION, DEFAULT_SPLIT_SALT) for p in pmcids)
    included = run_select(SelectConfig(archive=with_held_out, out=tmp_path / "b", output="shards", image_size=64,
                                       workers=1, exclude_held_out=False))
    assert HELD_OUT_PMCID in {record["pmcid"] for record, _ in _samples(tmp_path / "b")}
    assert included.samples_written == default.samples_written + default.held_out_excluded == included.total
    assert json.loads((tmp_path / "b" / "selection.json").read_text())["held_out"]["fraction"] == 0


def test_subfigure_crops_are_resized_with_the_box_in_the_parent_pixels(curation_archive, tmp_path):
    from biomedica.curate.subfigures.boxes import SUBFIGURES_SCHEMA

    annotations = tmp_path / "annotations"
    annotations.mkdir()
    import pyarrow as pa

    rows = []
    for sample in read_shard_index(curation_archive, columns=["key", "width", "height"]).to_pylist():
        w, h = sample["width"], sample["height"]
        rows.append({"key": sample["key"], "panel": 0, "x0": 0, "y0": 0, "x1": w, "y1": h // 2, "score": 1.0,
                     "label": None, "subcaption": None, "method": "hand"})
    pq.write_table(pa.Table.from_pylist(rows, schema=SUBFIGURES_SCHEMA), annotations / "subfigures.parquet")
    result = run_select(SelectConfig(archive=curation_archive, annotations=annotations, out=tmp_path / "out",
                                     unit="subfigure", output="shards", image_size=48, held_out_fraction=0, workers=1,
                                     samples_per_shard=20))
    assert result.panels_written == len(rows) and result.failed == 0
    boxes = {r["key"]: r for r in rows}
    for record, data in _samples(tmp_path / "out"):
        meta = record["subfigure"]
        box = boxes[meta["parent_key"]]
        assert meta["box"] == [0, 0, box["x1"], box["y1"]]  # in the parent's stored pixels
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and image.size == (record["width"], record["height"])
            assert min(image.size) == min(48, box["x1"], box["y1"])
