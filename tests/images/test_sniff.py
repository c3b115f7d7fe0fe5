"""sniff_format names real and non-image files from their first bytes."""

from __future__ import annotations

from pathlib import Path

from biomedica.images.sniff import sniff_format

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"


def test_fixture_files_by_content():
    cases = {
        "images/skimage/retina.jpg": ("jpeg", True),
        "images/skimage/cell.png": ("png", True),
        "images/skimage/no_time_for_that_tiny.gif": ("gif", True),
        "pmc_packages/elife-00353/elife-00353-fig1-v1.tif": ("tiff", True),
        "images/pydicom/CT_small.dcm": ("dicom", False),  # its preamble is a TIFF header
        "pmc_nxml/PMC3166277.nxml": ("xml", False),
    }
    for relative, (name, is_raster) in cases.items():
        sniffed = sniff_format((FIXTURES / relative).read_bytes())
        assert (sniffed.name, sniffed.is_raster) == (name, is_raster), relative


def test_non_raster_and_unknown_bytes():
    assert sniff_format(b"%PDF-1.7\n").name == "pdf"
    assert sniff_format(b"%!PS-Adobe-3.0 EPSF-3.0").name == "postscript"
    assert sniff_format(b"\n<!DOCTYPE html><html>").name == "html"
    assert sniff_format(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>').name == "svg"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ").name == "webp"
    assert sniff_format(b"\x00\x01\x02\x03") is None
    assert sniff_format(b"") is None
