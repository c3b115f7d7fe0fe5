"""Safe loading and unwrapping: bad bytes become ErrorRecords, never exceptions or fetched entities."""

from __future__ import annotations

from pathlib import Path

import pytest

from biomedica.ingest.jats import parse_articles
from biomedica.ingest.jats.xmlload import XLINK_HREF, XMLLoadError, parse_xml, unwrap_articles

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures"


def read(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def test_truncated_file_is_an_xml_syntax_error():
    data = read("pmc_nxml/PMC3166277.nxml")
    result = parse_articles(data[: len(data) // 2], "cut/PMC3166277.nxml")
    assert result.articles == []
    [error] = result.errors
    assert (error.kind, error.stage, error.id, error.source) == (
        "xml-syntax",
        "ingest",
        "cut/PMC3166277.nxml",
        "cut/PMC3166277.nxml",
    )
    assert "cut/PMC3166277.nxml" in error.message and "truncated" in error.message


@pytest.mark.parametrize("data", [b"", b"   \n", b"\x89PNG\r\n\x1a\n\x00\x00", b"%PDF-1.4 binary"])
def test_not_xml_bytes(data):
    result = parse_articles(data, "x/file.nxml")
    assert [e.kind for e in result.errors] == ["xml-syntax"]
    assert result.errors[0].message.startswith("x/file.nxml: ")


def test_non_jats_root_is_reported():
    result = parse_articles(b"<html><body><p>Not found</p></body></html>", "page.xml")
    assert [(e.kind, e.id) for e in result.errors] == [("not-jats", "page.xml")]
    assert "<html>" in result.errors[0].message


def test_external_entity_is_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    data = (
        f'<?xml version="1.0"?><!DOCTYPE article [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        "<article><front><article-meta><article-id pub-id-type='pmc'>123</article-id>"
        "<title-group><article-title>Title &xxe; end</article-title></title-group></article-meta></front></article>"
    ).encode()
    result = parse_articles(data, "xxe.xml")
    assert result.errors == []
    [parsed] = result.articles
    assert parsed.article.title == "Title end"
    assert "TOP-SECRET" not in repr(parsed)


def test_billion_laughs_is_not_expanded():
    data = (
        b'<!DOCTYPE article [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b"<article><front><article-meta><title-group><article-title>x&c;y</article-title></title-group>"
        b"</article-meta></front></article>"
    )
    [parsed] = parse_articles(data, "laughs.xml").articles
    assert parsed.article.title == "xy"


def test_oai_namespace_is_removed_but_xlink_attributes_stay():
    root = parse_xml(read("pmc_wrapped/PMC10200000.oai.xml"), "PMC10200000.oai.xml")
    unwrapped = unwrap_articles(root, "PMC10200000.oai.xml")
    assert unwrapped.wrapper == "oai-pmh"
    [article] = unwrapped.articles
    assert article.tag == "article"
    graphic = next(article.iter("graphic"))
    assert graphic.get(XLINK_HREF) == "40820_2023_1106_Figa_HTML"  # graphical abstract, not a fig


def test_efetch_wrapper_yields_its_articles():
    root = parse_xml(read("pmc_wrapped/PMC2832672.efetch.xml"), "x")
    unwrapped = unwrap_articles(root, "x")
    assert (unwrapped.wrapper, len(unwrapped.articles), unwrapped.errors) == ("efetch", 1, [])


def test_efetch_error_reply():
    result = parse_articles(read("pmc_wrapped/PMC8460637.efetch.xml"), "pmc_wrapped/PMC8460637.efetch.xml")
    assert result.articles == []
    [error] = result.errors
    assert (error.kind, error.id) == ("efetch-error", "PMC8460637")
    assert "The following PMCID is not available: 8460637" in error.message


def test_empty_articleset_is_no_article():
    result = parse_articles(b"<pmc-articleset></pmc-articleset>", "empty.xml")
    assert [e.kind for e in result.errors] == ["no-article"]


def test_efetch_set_with_two_articles_gives_two():
    one = read("pmc_wrapped/PMC2832672.efetch.xml").split(b"<pmc-articleset>", 1)[1].rsplit(b"</pmc-articleset>", 1)[0]
    two = read("pmc_wrapped/PMC5682655.efetch.xml").split(b"<pmc-articleset>", 1)[1].rsplit(b"</pmc-articleset>", 1)[0]
    data = b"<pmc-articleset>" + one + two + b'<Reply Id="1" error="not available"/></pmc-articleset>'
    result = parse_articles(data, "set.xml")
    assert [p.article.pmcid for p in result.articles] == ["PMC2832672", "PMC5682655"]
    assert [p.article.dialect for p in result.articles] == ["efetch", "efetch"]
    assert [(e.kind, e.id) for e in result.errors] == [("efetch-error", "PMC1")]


def test_oai_error_reply():
    data = (
        b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><error code="idDoesNotExist">'
        b"No matching identifier</error></OAI-PMH>"
    )
    result = parse_articles(data, "oai.xml")
    assert [e.kind for e in result.errors] == ["oai-error"]
    assert "idDoesNotExist" in result.errors[0].message


def test_parse_xml_raises_typed_error():
    with pytest.raises(XMLLoadError) as info:
        parse_xml(b"<article><p>", "a.xml")
    assert info.value.kind == "xml-syntax"
