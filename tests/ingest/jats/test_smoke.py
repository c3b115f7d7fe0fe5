"""Every fixture XML file parses into clean records (keys, captions, thumbnails, dialects)."""

from __future__ import annotations

from pathlib import Path

import pytest

from biomedica.ingest.jats import parse_articles
from biomedica.ingest.jats.xmlload import XLINK_HREF, parse_xml, unwrap_articles

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures"
XML_FILES = sorted(
    [*(FIXTURES / "pmc_nxml").glob("*.nxml"), *(FIXTURES / "pmc_wrapped").glob("*.xml"), *(FIXTURES / "pmc_packages").glob("*/*.*ml")]
)
ERROR_REPLIES = {"PMC8460637.efetch.xml"}
DIALECTS = {"pmc-classic", "pmc-jats14", "europepmc", "oai-pmh", "efetch", "publisher"}


def test_fixture_set_is_complete():
    assert len(XML_FILES) >= 60, f"expected the shared fixtures at {FIXTURES}"


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: p.name)
def test_parses_cleanly(path: Path):
    source = str(path.relative_to(FIXTURES))
    data = path.read_bytes()
    result = parse_articles(data, source)
    if path.name in ERROR_REPLIES:
        assert [e.kind for e in result.errors] == ["efetch-error"] and result.articles == []
        return
    assert result.errors == []
    assert len(result.articles) >= 1

    # the graphics we must not take: thumbnails next to an image in <alternatives>
    thumbs = set()
    captioned_figs = set()
    for article in unwrap_articles(parse_xml(data, source), source).articles:
        for graphic in article.iter("graphic"):
            if graphic.get("content-type") == "thumb":
                thumbs.add(graphic.get(XLINK_HREF))
        captioned_figs |= {
            fig.get("id") for fig in article.iter("fig") if fig.find("caption") is not None and fig.get("id")
        }

    keys = []
    for parsed in result.articles:
        article = parsed.article
        assert article.dialect in DIALECTS
        assert article.source == source
        assert "." not in article.article_id and "/" not in article.article_id
        assert article.n_graphics == len(parsed.figures)
        assert article.license_group in ("commercial", "noncommercial", "other")
        for figure in parsed.figures:
            keys.append(figure.key)
            assert figure.key.startswith(article.article_id + "_")
            assert figure.graphic_href and figure.graphic_href not in thumbs
            caption = figure.caption
            assert "  " not in caption and caption == caption.strip()
            assert "\n" not in caption
            if figure.fig_id in captioned_figs:
                assert caption, f"{figure.key}: fig {figure.fig_id} has a <caption> but an empty caption"
            for mention in figure.mentions:
                assert mention and mention == mention.strip() and "  " not in mention
            assert len(set(figure.mentions)) == len(figure.mentions)
            assert figure.license_group in ("commercial", "noncommercial", "other")
            assert figure.image_name is None and figure.width is None and figure.phash is None
    assert len(keys) == len(set(keys))
    assert keys == sorted(keys)  # zero-padded positions in document order
