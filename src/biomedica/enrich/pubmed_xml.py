"""Read PubMed efetch XML (`PubmedArticleSet`) into records keyed by PMID.

efetch (db=pubmed, retmode=xml) answers with `<PubmedArticleSet>` holding one
`<PubmedArticle>` (or `<PubmedBookArticle>`) per PMID it knows, in an order of its own,
silently leaving out PMIDs it does not know. Callers therefore match by the PMID inside
each record, never by position. A reply that is not a PubmedArticleSet (an `<eFetchResult>`
with `<ERROR>`, an HTML page) raises `PubmedReplyError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from biomedica.io.safe_xml import safe_xml_parser

# opens nothing a reply's DOCTYPE names (no DTD, entity, network or file), see biomedica.io.safe_xml
_PARSER = safe_xml_parser(huge_tree=True)


class PubmedReplyError(ValueError):
    """The reply is not a PubmedArticleSet (an error reply, or not XML)."""


@dataclass
class PubmedRecord:
    """What PubMed says about one PMID (the fields the archive may lack)."""

    pmid: str
    title: str | None = None
    abstract: str | None = None
    doi: str | None = None
    pmcid: str | None = None
    mesh_terms: list[str] = field(default_factory=list)  # descriptor names, in PubMed's order
    mesh_ids: list[str] = field(default_factory=list)  # descriptor UIs (D000001 ...)
    mesh_major: list[str] = field(default_factory=list)  # descriptors marked major topic (or a major qualifier)
    mesh_qualified: list[str] = field(default_factory=list)  # "Descriptor/qualifier" per qualifier
    publication_types: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    chemicals: list[str] = field(default_factory=list)


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    text = " ".join("".join(element.itertext()).split())
    return text or None


def split_articles(data: bytes) -> dict[str, bytes]:
    """{pmid: the serialized record element} of one efetch reply (the unit the cache stores)."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        head = data[:120].decode("utf-8", "replace").replace("\n", " ")
        raise PubmedReplyError(f"efetch reply is not XML ({exc}); it starts with {head!r}") from exc
    if root.tag != "PubmedArticleSet":
        message = _text(root.find(".//ERROR")) or _text(root) or root.tag
        raise PubmedReplyError(f"efetch replied <{root.tag}> instead of <PubmedArticleSet>: {message[:300]}")
    found: dict[str, bytes] = {}
    for record in root:
        if not isinstance(record.tag, str):
            continue
        pmid = _text(record.find("MedlineCitation/PMID")) or _text(record.find("BookDocument/PMID"))
        if pmid:
            found.setdefault(pmid, etree.tostring(record))
    return found


def parse_record(data: bytes) -> PubmedRecord:
    """One `<PubmedArticle>` / `<PubmedBookArticle>` element (as split_articles returns it)."""
    element = etree.fromstring(data, _PARSER)
    citation = element.find("MedlineCitation")
    if citation is None:  # PubmedBookArticle
        return _book_record(element)
    article = citation.find("Article")
    record = PubmedRecord(pmid=_text(citation.find("PMID")) or "")
    if article is not None:
        record.title = _text(article.find("ArticleTitle"))
        record.abstract = _abstract(article.find("Abstract"))
        record.publication_types = [t for t in map(_text, article.findall("PublicationTypeList/PublicationType")) if t]
        for eloc in article.findall("ELocationID"):
            if eloc.get("EIdType") == "doi" and eloc.get("ValidYN", "Y") == "Y":
                record.doi = _text(eloc)
                break
    for heading in citation.findall("MeshHeadingList/MeshHeading"):
        descriptor = heading.find("DescriptorName")
        name = _text(descriptor)
        if descriptor is None or not name:
            continue
        record.mesh_terms.append(name)
        if descriptor.get("UI"):
            record.mesh_ids.append(descriptor.get("UI"))
        qualifiers = heading.findall("QualifierName")
        if descriptor.get("MajorTopicYN") == "Y" or any(q.get("MajorTopicYN") == "Y" for q in qualifiers):
            record.mesh_major.append(name)
        record.mesh_qualified += [f"{name}/{_text(q)}" for q in qualifiers if _text(q)]
    record.keywords = [k for k in map(_text, citation.findall("KeywordList/Keyword")) if k]
    record.chemicals = [c for c in map(_text, citation.findall("ChemicalList/Chemical/NameOfSubstance")) if c]
    _read_article_ids(element, record)
    return record


def _abstract(abstract: etree._Element | None) -> str | None:
    """Structured abstracts as "LABEL: text" paragraphs joined by newlines."""
    if abstract is None:
        return None
    parts = []
    for section in abstract.findall("AbstractText"):
        text = _text(section)
        if not text:
            continue
        label = section.get("Label")
        parts.append(f"{label}: {text}" if label else text)
    return "\n".join(parts) or None


def _read_article_ids(element: etree._Element, record: PubmedRecord) -> None:
    for article_id in element.findall("PubmedData/ArticleIdList/ArticleId"):
        kind, value = article_id.get("IdType"), _text(article_id)
        if not value:
            continue
        if kind == "doi" and record.doi is None:
            record.doi = value
        elif kind == "pmc" and record.pmcid is None:
            record.pmcid = value if value.upper().startswith("PMC") else f"PMC{value}"


def _book_record(element: etree._Element) -> PubmedRecord:
    book = element.find("BookDocument")
    record = PubmedRecord(pmid=_text(book.find("PMID")) if book is not None else "")
    if book is not None:
        record.title = _text(book.find("ArticleTitle")) or _text(book.find("Book/BookTitle"))
        record.abstract = _abstract(book.find("Abstract"))
        record.publication_types = [t for t in map(_text, book.findall("PublicationType")) if t]
        record.keywords = [k for k in map(_text, book.findall("KeywordList/Keyword")) if k]
    for article_id in element.findall("PubmedBookData/ArticleIdList/ArticleId"):
        if article_id.get("IdType") == "doi" and _text(article_id):
            record.doi = _text(article_id)
    return record
