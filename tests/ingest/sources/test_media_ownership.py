"""The `dir` source never pairs a caption with another article's image (issue 10, item 5).

A media file belongs to the nearest folder above it that directly holds XML; an article may
use its own folder's media and media no folder owns (a bulk `xml/` + `images/` split). Built
from the real PMC package PMC10802347 (4 figures: f0001 has only its .gif thumbnail).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.ingest.sources.directory import DirectorySource

STEM = "nihpp-2023.12.31.573776v1"


@pytest.fixture(scope="module")
def package(fixtures_dir) -> Path:
    return fixtures_dir / "pmc_packages" / "PMC10802347"


def _copy_package(package: Path, xml_dir: Path, media_dir: Path, skip: tuple[str, ...] = ()) -> None:
    xml_dir.mkdir(parents=True, exist_ok=True)
    media_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(package / f"{STEM}.nxml", xml_dir / f"{STEM}.nxml")
    for path in sorted(package.glob(f"{STEM}-f*")):
        if not path.name.startswith(skip):
            shutil.copyfile(path, media_dir / path.name)


def _ingest(folder: Path, out: Path) -> tuple[list[dict], list[dict]]:
    run_ingest(IngestConfig(input=folder, output=out, progress=False))
    rows = [r for p in sorted(out.glob("*/[0-9]*.parquet")) for r in pq.read_table(p).to_pylist()]
    errors = [r for p in sorted((out / "errors").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    return rows, errors


def test_missing_figure_is_not_taken_from_another_package_folder(package, fixtures_dir, tmp_path):
    root = tmp_path / "in"
    _copy_package(package, root / "PMC1", root / "PMC1", skip=(f"{STEM}-f0002",))
    # another article's package folder holds a file of the same name (and its own article)
    elife = fixtures_dir / "pmc_packages" / "elife-00353"
    (root / "PMC2").mkdir()
    for path in elife.iterdir():
        shutil.copyfile(path, root / "PMC2" / path.name)
    shutil.copyfile(package / f"{STEM}-f0002.jpg", root / "PMC2" / f"{STEM}-f0002.jpg")

    rows, errors = _ingest(root, tmp_path / "out")
    used = {r["image_name"] for r in rows if r["pmcid"] == "PMC10802347"}
    assert used == {f"{STEM}-f0001.gif", f"{STEM}-f0003.jpg", f"{STEM}-f0004.jpg"}
    missing = [e for e in errors if e["kind"] == "image-missing"]
    assert len(missing) == 1 and f"{STEM}-f0002" in missing[0]["message"]
    assert missing[0]["id"].startswith("PMC10802347_")
    # the other package itself is untouched: its own figure resolves in its own folder
    assert any(r["image_name"] == "elife-00353-fig1-v1.tif" for r in rows)


@pytest.mark.parametrize(
    "xml_dir, media_dir",
    [
        ("xml", "images"),  # bulk split: the images belong to no article folder
        ("bulk/xml/journal", "bulk/images/journal"),  # the same, one level deeper
        ("PMC10802347", "PMC10802347/figures"),  # a package with its figures in a subfolder
        ("", "images"),  # XML at the root, images below it
    ],
)
def test_layouts_that_separate_xml_and_images_still_resolve(package, tmp_path, xml_dir, media_dir):
    root = tmp_path / "in"
    _copy_package(package, root / xml_dir, root / media_dir)
    rows, errors = _ingest(root, tmp_path / "out")
    assert sorted(r["image_name"] for r in rows) == [
        f"{STEM}-f0001.gif", f"{STEM}-f0002.jpg", f"{STEM}-f0003.jpg", f"{STEM}-f0004.jpg"
    ]
    assert errors == []


def _touch(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_find_media_allows_own_and_unowned_folders_nearest_first(tmp_path):
    _touch(tmp_path / "PMC1" / "a.nxml")
    _touch(tmp_path / "PMC1" / "figs" / "g1.jpg")
    _touch(tmp_path / "PMC2" / "b.nxml")
    _touch(tmp_path / "PMC2" / "g1.jpg")
    _touch(tmp_path / "PMC2" / "g2.jpg")
    _touch(tmp_path / "PMC2" / "sub" / "g3.jpg")  # owned by PMC2 through its XML-free subfolder
    _touch(tmp_path / "images" / "g2.png")
    _touch(tmp_path / "images" / "g3.png")
    source = DirectorySource(tmp_path)
    one = source.open_item("PMC1/a.nxml")
    assert one.find_media("g1") == ["PMC1/figs/g1.jpg"]  # its own subfolder, not PMC2/g1.jpg
    assert one.find_media("g2") == ["images/g2.png"]  # an unowned folder, never PMC2/g2.jpg
    assert one.find_media("g3") == ["images/g3.png"]
    two = source.open_item("PMC2/b.nxml")
    assert two.find_media("g2") == ["PMC2/g2.jpg"]  # nearest first among the allowed ones
    assert two.find_media("g3") == ["PMC2/sub/g3.jpg"]
    assert two.find_media("g1") == ["PMC2/g1.jpg"]


def test_nested_article_folder_owns_its_media_against_the_parent(tmp_path):
    _touch(tmp_path / "top.xml")
    _touch(tmp_path / "images" / "t1.jpg")
    _touch(tmp_path / "inner" / "inner.xml")
    _touch(tmp_path / "inner" / "i1.jpg")
    source = DirectorySource(tmp_path)
    top, inner = source.open_item("top.xml"), source.open_item("inner/inner.xml")
    assert top.find_media("t1") == ["images/t1.jpg"]
    assert top.find_media("i1") == []  # inner/ is another article's folder
    assert inner.find_media("t1") == []  # images/ belongs to the root's article
