"""PubMed efetch XML: records keyed by PMID, error replies, book records."""

from __future__ import annotations

import pytest

from biomedica.enrich.pubmed_xml import PubmedReplyError, parse_record, split_articles

BOOK = b"""<?xml version="1.0" ?>
<PubmedArticleSet>
<PubmedBookArticle>
  <BookDocument>
    <PMID Version="1">20301295</PMID>
    <ArticleIdList><ArticleId IdType="bookaccession">NBK1116</ArticleId></ArticleIdList>
    <Book><BookTitle book="gene">GeneReviews</BookTitle></Book>
    <ArticleTitle>Cystic Fibrosis</ArticleTitle>
    <Abstract><AbstractText Label="CLINICAL CHARACTERISTICS">CF affects the lungs.</AbstractText></Abstract>
    <PublicationType UI="D000072">Review</PublicationType>
  </BookDocument>
  <PubmedBookData><ArticleIdList><ArticleId IdType="pubmed">20301295</ArticleId></ArticleIdList></PubmedBookData>
</PubmedBookArticle>
<PubmedArticle><MedlineCitation Status="PubMed-not-MEDLINE" Owner="NLM"><PMID Version="1">11250746</PMID>
  <Article><ArticleTitle>No MeSH yet</ArticleTitle>
  <ELocationID EIdType="doi" ValidYN="N">10.bad/invalid</ELocationID></Article></MedlineCitation>
  <PubmedData><ArticleIdList><ArticleId IdType="doi">10.1186/bcr264</ArticleId><ArticleId IdType="pmc">13900</ArticleId></ArticleIdList></PubmedData>
</PubmedArticle>
</PubmedArticleSet>"""


def test_split_keys_records_by_their_own_pmid():
    found = split_articles(BOOK)
    assert sorted(found) == ["11250746", "20301295"]
    book = parse_record(found["20301295"])
    assert (book.pmid, book.title, book.publication_types) == ("20301295", "Cystic Fibrosis", ["Review"])
    assert book.abstract == "CLINICAL CHARACTERISTICS: CF affects the lungs."
    article = parse_record(found["11250746"])
    assert article.mesh_terms == [] and article.title == "No MeSH yet"
    # an ELocationID marked invalid is skipped; the ArticleIdList DOI is used; bare PMC ids get the prefix
    assert article.doi == "10.1186/bcr264" and article.pmcid == "PMC13900"


def test_error_reply_and_non_xml_raise_with_the_servers_words():
    with pytest.raises(PubmedReplyError, match="eFetchResult.*Cannot retrieve"):
        split_articles(b"<eFetchResult><ERROR>Cannot retrieve history data.</ERROR></eFetchResult>")
    with pytest.raises(PubmedReplyError, match="not XML.*API rate limit"):
        split_articles(b'{"error":"API rate limit exceeded","api-key":"1.2.3.4","count":"4","limit":"3"}')
    assert split_articles(b"<PubmedArticleSet></PubmedArticleSet>") == {}
