"""The nxml writer: classic PMC markup for licences, figures and citations, parseable by lxml."""

from __future__ import annotations

from lxml import etree

from biomedica.testing.corpus.captions import Caption, text
from biomedica.testing.corpus.nxml import (
    ALI,
    XLINK,
    ArticleDoc,
    AuthorDoc,
    FigureDoc,
    LicenseTerms,
    ReferenceDoc,
    SectionDoc,
    article_xml,
)

CC_BY = LicenseTerms("CC BY 4.0", "commercial", "https://creativecommons.org/licenses/by/4.0/", "Open access.")


def _doc(license_terms: LicenseTerms = CC_BY, floats_group: bool = False) -> ArticleDoc:
    figure = FigureDoc(
        "f1", "Figure 1", Caption("A title.", text("An ", ("italic", "in vivo"), " image.")), ("f1", "f1b.png")
    )
    results = SectionDoc(
        "s1", "Results", (text("See ", ("xref fig f1 f2", "Figures 1 and 2"), "."), figure)
    )
    return ArticleDoc(
        pmcid="PMC9000042", pmid="99000042", doi="10.5555/biomedica.demo.42", publisher_id="dmi-0042",
        article_type="research-article", journal_title="J", journal_abbrev="J", publisher="P", title="T",
        authors=(AuthorDoc("Doe", "Jo", ("aff1",), corresponding=True), AuthorDoc(None, None, collab="Group")),
        affiliations=(("aff1", "Dept, Uni, Town"),), pub_date=(2020, 2, 3), volume=1, elocation_id="e1",
        heading="Research Article", subjects=("Radiology",), keywords=("k",), license=license_terms,
        copyright_holder="Doe et al.", abstract=text("Abstract."), sections=(results,),
        references=(ReferenceDoc("r1", (("Roe", "R"),), "Ref", "J", 2001, pmid="99100001", doi="10.5555/x"),),
        floats_group=floats_group,
    )


def _root(doc: ArticleDoc) -> etree._Element:
    data = article_xml(doc)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<!DOCTYPE article PUBLIC")
    return etree.fromstring(data, etree.XMLParser(no_network=True, resolve_entities=False))


def test_front_matter_ids_and_dates():
    root = _root(_doc())
    ids = {e.get("pub-id-type"): e.text for e in root.iterfind("front/article-meta/article-id")}
    assert ids == {"pmid": "99000042", "pmc": "9000042", "publisher-id": "dmi-0042", "doi": "10.5555/biomedica.demo.42"}
    epub = root.find("front/article-meta/pub-date[@pub-type='epub']")
    assert [epub.findtext(t) for t in ("year", "month", "day")] == ["2020", "2", "3"]
    assert root.findtext(".//contrib/collab") == "Group"
    assert root.find(".//contrib[@corresp='yes']/name/surname").text == "Doe"


def test_license_styles():
    xlink = _root(_doc()).find(".//article-meta/permissions/license")
    assert xlink.get(f"{{{XLINK}}}href") == CC_BY.url and xlink.get("license-type") == "open-access"
    ali_terms = LicenseTerms("CC BY 3.0", "commercial", "http://creativecommons.org/licenses/by/3.0/", "x", style="ali")
    ali = _root(_doc(ali_terms)).find(".//article-meta/permissions/license")
    assert ali.get(f"{{{XLINK}}}href") is None and ali.findtext(f"{{{ALI}}}license_ref") == ali_terms.url
    assert _root(_doc(LicenseTerms(None, "other"))).find(".//permissions/license") is None
    reserved = _root(_doc(LicenseTerms(None, "other", None, "All rights reserved.", style="text")))
    assert reserved.findtext(".//permissions/license/license-p") == "All rights reserved."


def test_figure_markup_and_multi_rid_xref():
    root = _root(_doc())
    fig = root.find("body/sec/fig")
    assert fig.get("id") == "f1" and fig.findtext("label") == "Figure 1"
    assert [g.get(f"{{{XLINK}}}href") for g in fig.iter("graphic")] == ["f1", "f1b.png"]
    assert "".join(fig.find("caption/p").itertext()) == "An in vivo image."
    assert root.find("body/sec/p/xref").attrib == {"ref-type": "fig", "rid": "f1 f2"}


def test_floats_group_moves_figures_out_of_the_body():
    root = _root(_doc(floats_group=True))
    assert root.find("body//fig") is None
    assert [f.get("id") for f in root.iterfind("floats-group/fig")] == ["f1"]
    assert root.index(root.find("floats-group")) == len(root) - 1
