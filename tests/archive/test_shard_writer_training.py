"""ShardWriter for training-ready copies: webp members (select outputs only) and the TrainingCopyRecord index."""

import hashlib
import json
import tarfile
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import webdataset as wds

from biomedica.archive.layout import IMAGE_EXTENSIONS
from biomedica.archive.shard_writer import SELECT_IMAGE_EXTENSIONS, ShardWriter
from biomedica.images.training import TrainingImageSpec, make_training_image
from biomedica.records import TRAINING_SHARD_SCHEMA, TrainingCopyRecord

RETINA = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "images" / "skimage" / "retina.jpg"


def _training_record(make_figure, key: str, copy, original: bytes) -> TrainingCopyRecord:
    figure = make_figure(key, image_format=copy.extension, width=copy.width, height=copy.height,
                         sha256=hashlib.sha256(copy.data).hexdigest())
    return TrainingCopyRecord(
        **asdict(figure), original_image_format="jpg", original_width=1411, original_height=1411,
        original_sha256=hashlib.sha256(original).hexdigest(), original_shard="commercial/000000.tar",
    )


def test_the_archive_default_still_refuses_webp(tmp_path, make_figure):
    assert IMAGE_EXTENSIONS == ("jpg", "png") and SELECT_IMAGE_EXTENSIONS == ("jpg", "png", "webp")
    writer = ShardWriter(tmp_path / "000000.tar", tmp_path / "000000.parquet")
    with pytest.raises(ValueError, match="image_ext must be one of"):
        writer.add(make_figure("PMC1_000", image_format="webp"), b"RIFF", "webp")
    writer.discard()


@pytest.mark.parametrize("image_format", ["webp", "jpeg"])
def test_training_copies_with_their_original_are_written_and_read_by_webdataset(tmp_path, make_figure, image_format):
    original = RETINA.read_bytes()
    copy = make_training_image(original, TrainingImageSpec(64, format=image_format), "retina.jpg")
    writer = ShardWriter(tmp_path / "000000.tar", tmp_path / "000000.parquet", schema=TRAINING_SHARD_SCHEMA,
                         image_extensions=SELECT_IMAGE_EXTENSIONS)
    for key in ("PMC1_001", "PMC1_000"):  # out of order: rewritten in key order
        writer.add(_training_record(make_figure, key, copy, original), copy.data, copy.extension)
    for temporary, final in writer.finish().renames:
        temporary.rename(final)

    with tarfile.open(tmp_path / "000000.tar") as tar:
        assert tar.getnames()[:3] == [f"PMC1_000.{copy.extension}", "PMC1_000.txt", "PMC1_000.json"]
        record = json.loads(tar.extractfile("PMC1_000.json").read())
    assert record["original"] == {
        "image_format": "jpg", "width": 1411, "height": 1411,
        "sha256": hashlib.sha256(original).hexdigest(), "shard": "commercial/000000.tar",
    }
    assert (record["image_format"], record["width"], record["height"]) == (copy.extension, 64, 64)
    assert not any(name.startswith("original_") for name in record)

    index = pq.read_table(tmp_path / "000000.parquet")
    assert index.schema.equals(TRAINING_SHARD_SCHEMA)
    rows = index.to_pylist()
    assert [r["key"] for r in rows] == ["PMC1_000", "PMC1_001"]
    assert {(r["original_width"], r["original_shard"], r["image_size"]) for r in rows} == {
        (1411, "commercial/000000.tar", len(copy.data))
    }

    dataset = wds.WebDataset(str(tmp_path / "000000.tar"), shardshuffle=False).decode("pil").to_tuple(
        "jpg;png;jpeg;webp", "txt"  # OpenCLIP's image/text keys
    )
    samples = list(dataset)
    assert [image.size for image, _ in samples] == [(64, 64), (64, 64)]
    assert samples[0][1] == "Caption of PMC1_000."
