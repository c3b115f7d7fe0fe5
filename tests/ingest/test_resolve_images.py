"""resolve_graphic on the real graphic hrefs and file listings of the fixture packages."""

from __future__ import annotations

import os
from pathlib import Path

from lxml import etree

from biomedica.ingest.resolve_images import resolve_graphic

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def graphic_hrefs(xml_path: Path) -> list[str]:
    tree = etree.parse(str(xml_path))
    return [g.get(XLINK_HREF) for g in tree.iter("{*}graphic", "graphic")]


def tar_listing_members(listing: Path) -> list[str]:
    """Member paths from our `tar tzv` listing (last column of each -rw/drwx line)."""
    lines = listing.read_text().splitlines()
    return [line.split()[-1] for line in lines if line[:1] in ("-", "d")]


def test_pmc_package_uses_jpg_and_falls_back_to_gif_thumb_when_jpg_missing():
    package = FIXTURES / "pmc_packages" / "PMC10802347"
    hrefs = graphic_hrefs(package / "nihpp-2023.12.31.573776v1.nxml")
    members = tar_listing_members(package / "PMC10802347.tar.listing.txt")
    assert "PMC10802347/" in members  # the folder entry must be ignored
    resolved = [resolve_graphic(href, members) for href in hrefs]
    assert resolved == [
        "PMC10802347/nihpp-2023.12.31.573776v1-f0001.gif",  # the real package lacks f0001.jpg
        "PMC10802347/nihpp-2023.12.31.573776v1-f0002.jpg",
        "PMC10802347/nihpp-2023.12.31.573776v1-f0003.jpg",
        "PMC10802347/nihpp-2023.12.31.573776v1-f0004.jpg",
    ]
    # the same with the extracted folder's basenames
    on_disk = sorted(os.listdir(package))
    assert resolve_graphic(hrefs[1], on_disk) == "nihpp-2023.12.31.573776v1-f0002.jpg"
    assert resolve_graphic(hrefs[0], on_disk) == "nihpp-2023.12.31.573776v1-f0001.gif"


def test_elife_href_without_extension_finds_the_tif():
    package = FIXTURES / "pmc_packages" / "elife-00353"
    (href,) = graphic_hrefs(package / "elife-00353-v1.xml")
    assert href == "elife-00353-fig1-v1"
    assert resolve_graphic(href, sorted(os.listdir(package))) == "elife-00353-fig1-v1.tif"


def test_elife_href_naming_tif_finds_the_jpg_pmc_ships():
    hrefs = graphic_hrefs(FIXTURES / "pmc_nxml" / "elife30274-v2.nxml")
    assert "elife-30274-fig1-v2.tif" in hrefs
    available = ["elife-30274-fig1-v2.gif", "elife-30274-fig1-v2.jpg", "elife-30274-v2.nxml"]
    assert resolve_graphic("elife-30274-fig1-v2.tif", available) == "elife-30274-fig1-v2.jpg"


def test_dotted_stems_are_never_cut():
    hrefs = graphic_hrefs(FIXTURES / "pmc_nxml" / "PMC1790863.nxml")
    assert "pone.0000217.g001" in hrefs
    assert resolve_graphic("pone.0000217.g001", ["pone.0000217.jpg", "pone.0000217.g001.gif", "pone.0000217.g001.jpg"]) == (
        "pone.0000217.g001.jpg"
    )
    assert resolve_graphic("pone.0000217.g001", ["pone.0000217.jpg", "pone.0000217.pdf"]) is None
    mbio = graphic_hrefs(FIXTURES / "pmc_wrapped" / "PMC10653940.oai.xml")
    assert "mbio.01197-23.f001" in mbio
    assert resolve_graphic("mbio.01197-23.f001", ["mbio.01197-23.jpg", "mbio.01197-23.f001.jpg"]) == "mbio.01197-23.f001.jpg"
    assert resolve_graphic("ABI2008-257864.001", ["ABI2008-257864.jpg"]) is None


def test_package_figures_folder_prefers_full_size_over_thumbnail():
    folder = FIXTURES / "images" / "pmc_package_figures" / "PMC11286954"
    names = sorted(os.listdir(folder))
    assert resolve_graphic("41420_2024_2111_Fig1_HTML", names) == "41420_2024_2111_Fig1_HTML.jpg"
    assert resolve_graphic("41420_2024_2111_MOESM2_ESM", names) == "41420_2024_2111_MOESM2_ESM.tif"
    assert resolve_graphic("41420_2024_2111_Fig9_HTML", names) is None


def test_exact_name_wins_case_sensitive_then_insensitive():
    assert resolve_graphic("fig1.jpg", ["FIG1.jpg", "fig1.jpg"]) == "fig1.jpg"
    assert resolve_graphic("Fig1.JPG", ["a/fig1.jpg"]) == "a/fig1.jpg"
    assert resolve_graphic("Fig1", ["fig1.GIF", "fig1.JPG"]) == "fig1.JPG"
    # an href naming the thumbnail explicitly gets it (choosing among <alternatives> is the parser's job)
    assert resolve_graphic("RCM-40-e70104-g002.gif", ["RCM-40-e70104-g002.jpg", "RCM-40-e70104-g002.gif"]) == (
        "RCM-40-e70104-g002.gif"
    )


def test_extension_order_and_vector_formats():
    assert resolve_graphic("fig", ["fig.gif", "fig.jpg", "fig.tif"]) == "fig.tif"
    assert resolve_graphic("fig", ["fig.gif", "fig.png", "fig.jpeg"]) == "fig.png"
    assert resolve_graphic("fig", ["fig.eps", "fig.gif"]) == "fig.gif"  # EPS: Pillow cannot rasterise it
    assert resolve_graphic("fig.eps", ["fig.eps.pdf", "fig.jpg"]) == "fig.jpg"
    assert resolve_graphic("fig.tiff", ["fig.tif"]) == "fig.tif"


def test_href_folders_and_urls_match_on_basename():
    available = ["PMC1/fig1.gif", "PMC1/fig1.jpg"]
    assert resolve_graphic("figures/fig1", available) == "PMC1/fig1.jpg"
    assert resolve_graphic("https://example.org/PMC1/fig1.jpg?md5=abc", available) == "PMC1/fig1.jpg"
    assert resolve_graphic("", available) is None
    assert resolve_graphic("fig1", []) is None
