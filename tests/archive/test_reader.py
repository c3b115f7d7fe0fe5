import io
import json
import tarfile

import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image

from biomedica.archive import iter_samples, read_member, read_shard_index, shard_paths


def test_plain_webdataset_reads_every_sample(two_unit_archive, all_samples):
    url = str(two_unit_archive / "commercial" / "{000000..000001}.tar")
    samples = list(wds.WebDataset(url, shardshuffle=False))
    assert [s["__key__"] for s in samples] == [
        "PMC10118017_000", "PMC10118017_001", "PMC10118017_002", "PMC1175969_000", "PMC1175969_001",
    ]
    for sample in samples:
        expected = all_samples[sample["__key__"]]
        assert sample["jpg"] == expected.image  # original bytes, not re-encoded
        assert sample["txt"].decode("utf-8") == expected.record.caption
        assert json.loads(sample["json"]) == expected.record.to_dict()


def test_webdataset_decodes_to_image_caption_pairs(two_unit_archive, all_samples):
    urls = [str(two_unit_archive / group / "000001.tar") for group in ("commercial", "noncommercial")]
    pairs = list(wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("__key__", "jpg;png", "txt"))
    assert [key for key, _, _ in pairs] == ["PMC1175969_000", "PMC1175969_001", "PMC2000001_000"]
    for key, image, caption in pairs:
        original = Image.open(all_samples[key].image_path)
        assert image.size == original.size
        assert caption == all_samples[key].record.caption
    assert pairs[2][2] == "Fluorescent cells."


def test_iter_samples_matches_tarfile_and_inputs(two_unit_archive, all_samples):
    seen = list(iter_samples(two_unit_archive))
    assert sorted(record["key"] for record, _ in seen) == sorted(all_samples)
    assert [r["license_group"] for r, _ in seen] == ["commercial"] * 5 + ["noncommercial"] + ["other"] * 2
    for record, image in seen:
        assert image == all_samples[record["key"]].image
    only_other = [r["key"] for r, _ in iter_samples(two_unit_archive, group="other")]
    assert only_other == ["PMC1064083_000", "PMC1064083_001"]
    with tarfile.open(two_unit_archive / "other" / "000000.tar") as tar:
        assert tar.extractfile("PMC1064083_001.txt").read() == b""  # empty caption kept as empty member


def test_index_offsets_point_at_the_member_bytes(two_unit_archive, all_samples):
    index = read_shard_index(two_unit_archive)
    assert index.num_rows == 8
    assert index.column_names[-1] == "group"
    for row in index.to_pylist():
        path = two_unit_archive / row["group"] / row["shard"]
        with open(path, "rb") as handle:
            handle.seek(row["image_offset"])
            assert handle.read(row["image_size"]) == all_samples[row["key"]].image
        txt = read_member(two_unit_archive, row["group"], row["shard"], row["txt_offset"], row["txt_size"])
        assert txt.decode("utf-8") == row["caption"]
        js = read_member(two_unit_archive, row["group"], row["shard"], row["json_offset"], row["json_size"])
        assert json.loads(js)["key"] == row["key"]


def test_shard_parquet_is_zstd_and_in_tar_order(two_unit_archive):
    path = two_unit_archive / "commercial" / "000000.parquet"
    meta = pq.ParquetFile(path).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    keys = pq.read_table(path, columns=["key"]).column("key").to_pylist()
    with tarfile.open(path.with_suffix(".tar")) as tar:
        assert keys == [n.split(".")[0] for n in tar.getnames()[::3]]


def test_index_of_empty_archive_has_the_schema(tmp_path):
    table = read_shard_index(tmp_path, columns=["key", "year"])
    assert table.num_rows == 0 and table.column_names == ["key", "year", "group"]
    assert shard_paths(tmp_path) == []
    assert list(iter_samples(tmp_path)) == []


def test_decoded_png_is_lossless(two_unit_archive, all_samples):
    (record, image), = iter_samples(two_unit_archive, group="noncommercial")
    assert Image.open(io.BytesIO(image)).tobytes() == Image.open(all_samples[record["key"]].image_path).tobytes()
