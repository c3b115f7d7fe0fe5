import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from biomedica.archive.shard_writer import ShardWriter, sample_key_problem

RETINA = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "images" / "skimage" / "retina.jpg"


def _write(directory: Path, keys: list[str], make_figure, image: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(directory / "000000.tar", directory / "000000.parquet")
    for key in keys:
        writer.add(make_figure(key, caption=f"caption {key} – µ"), image, "jpg")
    finished = writer.finish()
    for tmp, final in finished.renames:
        tmp.rename(final)
    return directory / "000000.tar"


def test_members_have_fixed_metadata_and_index_offsets_match_tarfile(tmp_path, make_figure):
    image = RETINA.read_bytes()
    tar_path = _write(tmp_path, ["PMC1_000", "PMC1_001"], make_figure, image)
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [
            "PMC1_000.jpg", "PMC1_000.txt", "PMC1_000.json", "PMC1_001.jpg", "PMC1_001.txt", "PMC1_001.json",
        ]
        assert {(m.mtime, m.uid, m.gid, m.mode, m.uname, m.gname) for m in members} == {(0, 0, 0, 0o644, "", "")}
        data_offsets = {m.name: (m.offset_data, m.size) for m in members}
        assert tar.extractfile("PMC1_001.txt").read().decode() == "caption PMC1_001 – µ"
        record = json.loads(tar.extractfile("PMC1_000.json").read())
    assert record["key"] == "PMC1_000" and record["caption"] == "caption PMC1_000 – µ"
    rows = pq.read_table(tmp_path / "000000.parquet").to_pylist()
    assert [r["key"] for r in rows] == ["PMC1_000", "PMC1_001"]
    for row in rows:
        assert row["shard"] == "000000.tar"
        assert (row["image_offset"], row["image_size"]) == data_offsets[f"{row['key']}.jpg"]
        assert (row["txt_offset"], row["txt_size"]) == data_offsets[f"{row['key']}.txt"]
        assert (row["json_offset"], row["json_size"]) == data_offsets[f"{row['key']}.json"]
    with open(tar_path, "rb") as handle:
        handle.seek(rows[1]["image_offset"])
        assert handle.read(rows[1]["image_size"]) == image


def test_arrival_order_does_not_change_the_bytes(tmp_path, make_figure):
    image = RETINA.read_bytes()[:5000]
    in_order = _write(tmp_path / "a", ["PMC1_000", "PMC1_001", "PMC2_000"], make_figure, image)
    shuffled = _write(tmp_path / "b", ["PMC2_000", "PMC1_000", "PMC1_001"], make_figure, image)
    assert in_order.read_bytes() == shuffled.read_bytes()
    assert pq.read_table(tmp_path / "a" / "000000.parquet").equals(pq.read_table(tmp_path / "b" / "000000.parquet"))
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["000000.parquet", "000000.tar"]


def test_finished_shard_reports_size_and_hash(tmp_path, make_figure):
    import hashlib

    writer = ShardWriter(tmp_path / "000003.tar", tmp_path / "000003.parquet")
    writer.add(make_figure("PMC9_000"), b"\xff\xd8fake-jpeg", "jpg")
    finished = writer.finish()
    tmp_tar = finished.renames[0][0]
    assert tmp_tar.name.startswith(".000003.tar.tmp-")
    assert finished.tar_bytes == tmp_tar.stat().st_size and finished.tar_bytes % 10240 == 0
    assert finished.tar_sha256 == hashlib.sha256(tmp_tar.read_bytes()).hexdigest()
    assert finished.samples == 1
    writer.discard()
    assert list(tmp_path.iterdir()) == []


def test_rejects_unknown_extension_and_mismatched_format(tmp_path, make_figure):
    writer = ShardWriter(tmp_path / "000000.tar", tmp_path / "000000.parquet")
    with pytest.raises(ValueError, match="image_ext must be one of"):
        writer.add(make_figure("PMC1_000"), b"x", "tif")
    with pytest.raises(ValueError, match="image_format is 'jpg' but the bytes are stored as 'png'"):
        writer.add(make_figure("PMC1_000", image_format="jpg"), b"x", "png")
    writer.discard()


@pytest.mark.parametrize(
    ("key", "fragment"),
    [("PMC1_000", None), ("elife-12345_000", None), ("10.7554/eLife.1_000", "contains '.'"),
     ("PMC 1_000", "outside [A-Za-z0-9_-]"), ("", "empty")],
)
def test_sample_key_problem(key, fragment):
    problem = sample_key_problem(key)
    if fragment is None:
        assert problem is None
    else:
        assert fragment in problem
