"""The `dir` source: XML discovery and image lookup near the XML first, then by stem."""

from pathlib import Path

import pytest

from biomedica.ingest.sources.directory import DirectorySource, media_stem


def _touch(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_media_stem_strips_only_image_extensions():
    assert media_stem("pone.0000217.g001") == "pone.0000217.g001"
    assert media_stem("dir/pone.0000217.g001.JPG") == "pone.0000217.g001"
    assert media_stem("mbio.01234-23.f001") == "mbio.01234-23.f001"
    assert media_stem("table1.pdf") == "table1.pdf"


def test_lists_xml_sorted_and_prefers_images_beside_the_xml(tmp_path):
    _touch(tmp_path / "b" / "PMC2.nxml")
    _touch(tmp_path / "a" / "PMC1.xml")
    _touch(tmp_path / "a" / "gr1.jpg", b"near")
    _touch(tmp_path / "b" / "gr1.jpg", b"other")
    _touch(tmp_path / "images" / "fig9.png", b"far")
    source = DirectorySource(tmp_path)
    assert source.list_items() == ["a/PMC1.xml", "b/PMC2.nxml"]
    item = source.open_item("a/PMC1.xml")
    assert item.media_names == ["a/gr1.jpg"]
    assert item.read_media("a/gr1.jpg") == b"near"
    # a wider search finds images elsewhere, from the nearest folder only
    assert item.find_media("fig9") == ["images/fig9.png"]
    assert source.open_item("b/PMC2.nxml").find_media("gr1") == ["b/gr1.jpg"]


def test_missing_input_folder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass the folder that holds"):
        DirectorySource(tmp_path / "nope")


def test_real_fixture_tree(fixtures_dir):
    source = DirectorySource(fixtures_dir)
    items = source.list_items()
    assert "pmc_packages/PMC10802347/nihpp-2023.12.31.573776v1.nxml" in items
    assert "pmc_packages/elife-00353/elife-00353-v1.xml" in items
    assert len([i for i in items if i.startswith("pmc_nxml/")]) == 45
    item = source.open_item("pmc_packages/elife-00353/elife-00353-v1.xml")
    assert item.media_names == ["pmc_packages/elife-00353/elife-00353-fig1-v1.tif"]
