"""Article metadata readers: dates, ids and keys, authors, abstracts, references."""

from __future__ import annotations

import pytest

from biomedica.ingest.jats import parse_articles
from biomedica.ingest.jats.metadata import ArticleIds, article_key_id, iso_date, read_ids, read_pub_date
from biomedica.ingest.jats.xmlload import parse_xml

XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink"'


def el(xml: str):
    return parse_xml(xml.encode(), "t.xml")


@pytest.mark.parametrize(
    ("xml", "iso"),
    [
        ("<pub-date><day>2</day><month>8</month><year>2011</year></pub-date>", "2011-08-02"),
        ("<pub-date><month>Sep</month><year>2011</year></pub-date>", "2011-09"),
        ("<pub-date><month>September</month><year>2011</year></pub-date>", "2011-09"),
        ("<pub-date><month>Sept</month><year>2011</year></pub-date>", "2011-09"),
        ("<pub-date><month>Jan-Feb</month><year>2011</year></pub-date>", "2011-01"),
        ("<pub-date><season>Spring</season><year>2009</year></pub-date>", "2009"),
        ("<pub-date><month>Winter</month><year>2009</year></pub-date>", "2009"),
        ("<pub-date><day>31</day><month>2</month><year>2011</year></pub-date>", "2011-02"),  # no 31 Feb
        ("<pub-date iso-8601-date='2020-05-02'><year>2020</year></pub-date>", "2020-05-02"),
        ("<pub-date><string-date>Published March 1867</string-date></pub-date>", "1867"),
        ("<pub-date><month>5</month></pub-date>", None),
    ],
)
def test_iso_date(xml, iso):
    assert iso_date(el(xml)) == iso


def test_electronic_date_is_preferred():
    meta = el(
        "<article-meta><pub-date pub-type='collection'><year>2011</year></pub-date>"
        "<pub-date pub-type='ppub'><month>9</month><year>2011</year></pub-date>"
        "<pub-date pub-type='epub'><day>2</day><month>8</month><year>2011</year></pub-date></article-meta>"
    )
    assert read_pub_date(meta) == ("2011-08-02", 2011)
    meta = el(
        "<article-meta><pub-date date-type='collection' publication-format='electronic'><year>2012</year></pub-date>"
        "<pub-date date-type='pub' publication-format='print'><month>3</month><year>2012</year></pub-date>"
        "<pub-date date-type='pub' publication-format='electronic'><day>13</day><month>12</month><year>2011</year>"
        "</pub-date></article-meta>"
    )
    assert read_pub_date(meta) == ("2011-12-13", 2011)
    meta = el("<article-meta><pub-date pub-type='pmc-release'><day>1</day><month>1</month><year>2020</year></pub-date>"
              "<pub-date pub-type='collection'><year>2019</year></pub-date></article-meta>")  # fmt: skip
    assert read_pub_date(meta) == ("2020-01-01", 2020)


@pytest.mark.parametrize(
    ("ids", "pmcid", "version"),
    [
        ("<article-id pub-id-type='pmc'>3166277</article-id>", "PMC3166277", None),
        ("<article-id pub-id-type='pmcid'>12602441</article-id>", "PMC12602441", None),  # Europe PMC
        ("<article-id pub-id-type='pmcid'>PMC10200000</article-id>", "PMC10200000", None),  # OAI-PMH
        (
            "<article-id pub-id-type='pmcid'>PMC13179431</article-id>"
            "<article-id pub-id-type='pmcid-ver'>PMC13179431.1</article-id>"
            "<article-id pub-id-type='pmcaid'>13179431</article-id>",
            "PMC13179431",
            1,
        ),
    ],
)
def test_read_ids(ids, pmcid, version):
    found = read_ids(el(f"<article-meta>{ids}<article-id pub-id-type='doi'>https://doi.org/10.1/X.Y</article-id>"
                        "</article-meta>"))  # fmt: skip
    assert (found.pmcid, found.version, found.doi) == (pmcid, version, "10.1/X.Y")


def test_key_ids_never_hold_dots_or_slashes():
    no_pmc = ArticleIds(None, None, None, "10.7554/eLife.00353", "00353", frozenset())
    assert article_key_id(no_pmc, "eLife", None, "x.xml", 0) == "DOI-10-7554-eLife-00353"
    publisher_only = ArticleIds(None, None, None, None, "00353", frozenset())
    assert article_key_id(publisher_only, "eLife", None, "x.xml", 0) == "PUB-eLife-00353"
    nothing = ArticleIds(None, None, None, None, None, frozenset())
    assert article_key_id(nothing, None, "e00353", "a/b.c.xml", 0) == "PUB-e00353"
    assert article_key_id(nothing, None, None, "dir/my.file.xml", 2) == "SRC-my-2"


def test_authors_orcid_collab_and_shared_affiliations():
    data = (
        f"<article {XLINK}><front><article-meta><contrib-group>"
        "<contrib contrib-type='author'><contrib-id contrib-id-type='orcid'>https://orcid.org/0000-0002-1825-009X"
        "</contrib-id><name><surname>Curie</surname><given-names>Marie</given-names></name></contrib>"
        "<contrib contrib-type='author'><name name-style='eastern'><surname>Li</surname><given-names>Wei</given-names>"
        "</name></contrib>"
        "<contrib contrib-type='author'><collab>The Consortium<contrib-group><contrib><name><surname>X</surname>"
        "</name></contrib></contrib-group></collab></contrib>"
        "<contrib contrib-type='editor'><name><surname>Editor</surname></name></contrib>"
        "</contrib-group><aff><institution>Institut Pasteur</institution><country>France</country></aff>"
        "</article-meta></front></article>"
    ).encode()
    authors = parse_articles(data, "t.xml").articles[0].article.authors
    assert [(a.name, a.orcid, a.affiliations) for a in authors] == [
        ("Marie Curie", "0000-0002-1825-009X", ["Institut Pasteur, France"]),
        ("Li Wei", None, ["Institut Pasteur, France"]),
        ("The Consortium", None, ["Institut Pasteur, France"]),
    ]


def test_abstract_skips_graphical_and_teaser_and_keeps_section_titles():
    data = (
        "<article><front><article-meta>"
        "<abstract><title>Abstract</title><sec><title>Background</title><p>Why.</p></sec>"
        "<sec><title>Results</title><p>What <italic>in vivo</italic>.</p></sec></abstract>"
        "<abstract abstract-type='graphical'><p>Picture</p></abstract>"
        "<abstract abstract-type='teaser'><p>Teaser</p></abstract>"
        "</article-meta></front></article>"
    ).encode()
    article = parse_articles(data, "t.xml").articles[0].article
    assert article.abstract == "Background\nWhy.\nResults\nWhat in vivo."


def test_abstract_falls_back_to_a_summary_when_it_is_the_only_one():
    data = (
        "<article><front><article-meta><abstract abstract-type='summary'><p>Only summary.</p></abstract>"
        "<abstract abstract-type='graphical'><p>Picture</p></abstract></article-meta></front></article>"
    ).encode()
    assert parse_articles(data, "t.xml").articles[0].article.abstract == "Only summary."


def test_references_count_only_the_main_article_and_collect_ids():
    data = (
        f"<article {XLINK}><back><ref-list>"
        "<ref id='r1'><element-citation><pub-id pub-id-type='pmid'>123</pub-id><pub-id pub-id-type='doi'>10.1/a</pub-id>"
        "</element-citation></ref>"
        "<ref id='r2'><mixed-citation><ext-link ext-link-type='doi' xlink:href='https://doi.org/10.1/b'>link</ext-link>"
        "<ext-link ext-link-type='pmid'>456</ext-link></mixed-citation></ref>"
        "<ref id='r3'><mixed-citation>no ids; duplicate <pub-id pub-id-type='pmid'>123</pub-id></mixed-citation></ref>"
        "</ref-list></back><sub-article><back><ref-list><ref id='s1'><pub-id pub-id-type='pmid'>999</pub-id></ref>"
        "</ref-list></back></sub-article></article>"
    ).encode()
    article = parse_articles(data, "t.xml").articles[0].article
    assert (article.n_references, article.cited_pmids, article.cited_dois) == (3, ["123", "456"], ["10.1/a", "10.1/b"])


def test_body_text_excludes_floats_and_refs():
    data = (
        "<article><body><sec><title>Intro</title><p>One <fig><caption><p>CAP</p></caption></fig>two.</p>"
        "<table-wrap><table><tr><td>cell</td></tr></table></table-wrap>"
        "<supplementary-material><p>supp</p></supplementary-material></sec>"
        "<sec><title>References</title><ref-list><ref><mixed-citation>Ref</mixed-citation></ref></ref-list></sec>"
        "</body></article>"
    ).encode()
    article = parse_articles(data, "t.xml").articles[0].article
    assert article.body_text == "Intro\nOne two.\nReferences"
    assert article.n_references == 1
