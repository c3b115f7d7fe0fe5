"""WebDataset adapter on tar shards written with tarfile (image + cls/txt members)."""

from __future__ import annotations

import io
import tarfile

import pytest

from biomedica.eval.adapters import DatasetInvalid, load_dataset


def _write_shard(path, samples):
    with tarfile.open(path, "w") as tar:
        for name, data in samples:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_shards_with_labels_and_captions_read_by_offset(tmp_path, skimage_fixtures):
    cell, ihc = (skimage_fixtures / "cell.png").read_bytes(), (skimage_fixtures / "ihc.png").read_bytes()
    _write_shard(tmp_path / "shard-000000.tar", [
        ("s0.png", cell), ("s0.cls", b"cell"), ("s0.txt", b"A cell."),
        ("sub/s1.png", ihc), ("sub/s1.cls", b"ihc\n"), ("sub/s1.txt", b"IHC."),
    ])
    _write_shard(tmp_path / "shard-000001.tar", [("s2.png", cell), ("s2.txt", b"no label here")])
    dataset = load_dataset("webdataset", tmp_path, {"shards": "shard-{000000..000001}.tar", "caption_extension": "txt"})
    assert dataset.labels == ["cell", "ihc"]
    assert dataset.captions == [["A cell."], ["IHC."]]
    assert dataset.notes == ["1 sample(s) without image or label/caption skipped"]
    assert dataset.images[1].load().size == (512, 512)


def test_shards_without_requested_members_fail_clearly(tmp_path, skimage_fixtures):
    _write_shard(tmp_path / "a.tar", [("s0.png", (skimage_fixtures / "cell.png").read_bytes())])
    with pytest.raises(DatasetInvalid, match="label_extension"):
        load_dataset("webdataset", tmp_path, {})
