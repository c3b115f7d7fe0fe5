"""Write one synthetic article as classic PMC OA nxml (JATS archiving 3.0 style) with lxml.

The document model below holds exactly what the demo puts in an article; `article_xml`
renders it the way PMC's bulk nxml files look: DOCTYPE, `pmc`/`pmid`/`doi` article-ids,
`<license xlink:href>` (or `ali:license_ref`, or none), figures inline in sections or in
a `<floats-group>`, `<xref ref-type="fig" rid="f1 f2">` citations, and a reference list.
Every article says in a comment and in `<notes>` that it is generated demo data.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from biomedica.testing.corpus.captions import Caption, RichText

XLINK = "http://www.w3.org/1999/xlink"
MML = "http://www.w3.org/1998/Math/MathML"
ALI = "http://www.niso.org/schemas/ali/1.0/"
_NSMAP = {"xlink": XLINK, "mml": MML, "ali": ALI}
_DOCTYPE = (
    '<!DOCTYPE article PUBLIC "-//NLM//DTD Journal Archiving and Interchange DTD v3.0 20080202//EN" '
    '"archivearticle3.dtd">'
)
DEMO_NOTICE = (
    "Generated demo data: this article was written by `biomedica demo` and is not a real publication. "
    "Its identifiers (PMC9000001+, PMID 99000001+, DOI 10.5555/biomedica.demo.N) are in deliberately fake "
    "ranges; its images are real test images shipped with pydicom, pydicom-data and scikit-image, and its "
    "charts are drawn from random numbers."
)


@dataclass(frozen=True)
class LicenseTerms:
    """An article's or a figure's licence as written in `<permissions>`."""

    name: str | None  # normalised ("CC BY 4.0"); None when there is no licence
    group: str  # commercial | noncommercial | other
    url: str | None = None
    statement: str = ""  # the <license-p> text; empty: no <license> element at all
    style: str = "xlink"  # xlink: <license xlink:href>; ali: <ali:license_ref>; text: no URL


@dataclass(frozen=True)
class FigureDoc:
    fig_id: str
    label: str
    caption: Caption
    hrefs: tuple[str, ...]  # one <graphic xlink:href> each, in document order
    fig_type: str | None = None
    permissions: LicenseTerms | None = None  # the figure's own, when it has one
    copyright: str | None = None


@dataclass(frozen=True)
class FigureGroupDoc:
    group_id: str
    label: str
    caption: Caption
    figures: tuple[FigureDoc, ...]


@dataclass(frozen=True)
class SectionDoc:
    sec_id: str
    title: str
    blocks: tuple[RichText | FigureDoc | FigureGroupDoc, ...]


@dataclass(frozen=True)
class AuthorDoc:
    surname: str | None
    given_names: str | None
    aff_ids: tuple[str, ...] = ()
    orcid: str | None = None
    collab: str | None = None  # a group author instead of a person
    corresponding: bool = False


@dataclass(frozen=True)
class ReferenceDoc:
    ref_id: str
    authors: tuple[tuple[str, str], ...]  # (surname, given initials)
    title: str
    source: str
    year: int
    pmid: str | None = None
    doi: str | None = None
    mixed: bool = False  # <mixed-citation> (else <element-citation>)


@dataclass(frozen=True)
class ArticleDoc:
    pmcid: str  # "PMC9000001"
    pmid: str
    doi: str
    publisher_id: str
    article_type: str
    journal_title: str
    journal_abbrev: str
    publisher: str
    title: str
    authors: tuple[AuthorDoc, ...]
    affiliations: tuple[tuple[str, str], ...]  # (aff id, text)
    pub_date: tuple[int, int, int]  # year, month, day
    volume: int
    elocation_id: str
    heading: str  # the article-categories heading, e.g. "Research Article"
    subjects: tuple[str, ...]
    keywords: tuple[str, ...]
    license: LicenseTerms
    copyright_holder: str
    abstract: RichText
    sections: tuple[SectionDoc, ...]
    references: tuple[ReferenceDoc, ...]
    floats_group: bool = False  # figures collected in <floats-group> after <back>
    contact_email: str = "demo@example.org"


def article_xml(doc: ArticleDoc) -> bytes:
    """The article as UTF-8 nxml bytes (deterministic for the same document)."""
    article = etree.Element(
        "article",
        nsmap=_NSMAP,
        attrib={"article-type": doc.article_type, "dtd-version": "3.0", "{http://www.w3.org/XML/1998/namespace}lang": "en"},
    )
    article.append(etree.Comment(f" {DEMO_NOTICE} "))
    front = _sub(article, "front")
    _journal_meta(front, doc)
    _article_meta(front, doc)
    body = _sub(article, "body")
    floats: list[FigureDoc | FigureGroupDoc] = []
    for section in doc.sections:
        sec = _sub(body, "sec", id=section.sec_id)
        _sub(sec, "title", text=section.title)
        for block in section.blocks:
            if isinstance(block, RichText):
                _rich(_sub(sec, "p"), block)
            elif doc.floats_group:
                floats.append(block)
            else:
                _figure_block(sec, block)
    _back(article, doc)
    if floats:
        group = _sub(article, "floats-group")
        for block in floats:
            _figure_block(group, block)
    etree.indent(article, space=" ")
    return etree.tostring(article, xml_declaration=True, encoding="UTF-8", doctype=_DOCTYPE) + b"\n"


def _journal_meta(front: etree._Element, doc: ArticleDoc) -> None:
    meta = _sub(front, "journal-meta")
    _sub(meta, "journal-id", text=doc.journal_abbrev, **{"journal-id-type": "nlm-ta"})
    _sub(meta, "journal-id", text=doc.journal_abbrev, **{"journal-id-type": "iso-abbrev"})
    titles = _sub(meta, "journal-title-group")
    _sub(titles, "journal-title", text=doc.journal_title)
    publisher = _sub(meta, "publisher")
    _sub(publisher, "publisher-name", text=doc.publisher)


def _article_meta(front: etree._Element, doc: ArticleDoc) -> None:
    meta = _sub(front, "article-meta")
    _sub(meta, "article-id", text=doc.pmid, **{"pub-id-type": "pmid"})
    _sub(meta, "article-id", text=doc.pmcid.removeprefix("PMC"), **{"pub-id-type": "pmc"})
    _sub(meta, "article-id", text=doc.publisher_id, **{"pub-id-type": "publisher-id"})
    _sub(meta, "article-id", text=doc.doi, **{"pub-id-type": "doi"})
    categories = _sub(meta, "article-categories")
    heading = _sub(categories, "subj-group", **{"subj-group-type": "heading"})
    _sub(heading, "subject", text=doc.heading)
    disciplines = _sub(categories, "subj-group", **{"subj-group-type": "Discipline"})
    for subject in doc.subjects:
        _sub(disciplines, "subject", text=subject)
    titles = _sub(meta, "title-group")
    _sub(titles, "article-title", text=doc.title)
    contribs = _sub(meta, "contrib-group")
    for author in doc.authors:
        attrs = {"contrib-type": "author"}
        if author.corresponding:
            attrs["corresp"] = "yes"
        contrib = _sub(contribs, "contrib", **attrs)
        if author.orcid:
            _sub(contrib, "contrib-id", text=author.orcid, **{"contrib-id-type": "orcid"})
        if author.collab:
            _sub(contrib, "collab", text=author.collab)
        else:
            name = _sub(contrib, "name")
            _sub(name, "surname", text=author.surname)
            _sub(name, "given-names", text=author.given_names)
        for aff_id in author.aff_ids:
            xref = _sub(contrib, "xref", **{"ref-type": "aff", "rid": aff_id})
            _sub(xref, "sup", text=aff_id.removeprefix("aff"))
        if author.corresponding:
            _sub(contrib, "xref", text="*", **{"ref-type": "corresp", "rid": "cor1"})
    for aff_id, aff_text in doc.affiliations:
        aff = _sub(meta, "aff", id=aff_id)
        label = _sub(aff, "label", text=aff_id.removeprefix("aff"))
        label.tail = aff_text
    notes = _sub(meta, "author-notes")
    corresp = _sub(notes, "corresp", id="cor1")
    corresp.text = "* E-mail: "
    _sub(corresp, "email", text=doc.contact_email)
    year, month, day = doc.pub_date
    epub = _sub(meta, "pub-date", **{"pub-type": "epub"})
    _sub(epub, "day", text=str(day))
    _sub(epub, "month", text=str(month))
    _sub(epub, "year", text=str(year))
    collection = _sub(meta, "pub-date", **{"pub-type": "collection"})
    _sub(collection, "year", text=str(year))
    _sub(meta, "volume", text=str(doc.volume))
    _sub(meta, "elocation-id", text=doc.elocation_id)
    _permissions(meta, doc.license, f"© {year} {doc.copyright_holder}", year)
    _rich(_sub(_sub(meta, "abstract"), "p"), doc.abstract)
    keywords = _sub(meta, "kwd-group", **{"kwd-group-type": "author"})
    for keyword in doc.keywords:
        _sub(keywords, "kwd", text=keyword)


def _permissions(parent: etree._Element, terms: LicenseTerms, copyright: str, year: int | None) -> None:
    permissions = _sub(parent, "permissions")
    _sub(permissions, "copyright-statement", text=copyright)
    if year is not None:
        _sub(permissions, "copyright-year", text=str(year))
    if not terms.statement:
        return  # no <license> element, like many older PMC OA articles
    attrs: dict[str, str] = {}
    if terms.url and terms.style == "xlink":
        attrs = {"license-type": "open-access", f"{{{XLINK}}}href": terms.url}
    license_ = _sub(permissions, "license", **attrs)
    if terms.url and terms.style == "ali":
        _sub(license_, f"{{{ALI}}}license_ref", text=terms.url)
    paragraph = _sub(license_, "license-p", text=terms.statement)
    if terms.url:
        paragraph.text = terms.statement + " See "
        link = _sub(paragraph, "ext-link", text=terms.url, **{"ext-link-type": "uri", f"{{{XLINK}}}href": terms.url})
        link.tail = "."


def _figure_block(parent: etree._Element, block: FigureDoc | FigureGroupDoc) -> None:
    if isinstance(block, FigureGroupDoc):
        group = _sub(parent, "fig-group", id=block.group_id)
        _sub(group, "label", text=block.label)
        _caption(group, block.caption)
        for figure in block.figures:
            _figure(group, figure)
    else:
        _figure(parent, block)


def _figure(parent: etree._Element, figure: FigureDoc) -> None:
    attrs = {"id": figure.fig_id, "position": "float"}
    if figure.fig_type:
        attrs["fig-type"] = figure.fig_type
    fig = _sub(parent, "fig", **attrs)
    _sub(fig, "label", text=figure.label)
    _caption(fig, figure.caption)
    for href in figure.hrefs:
        _sub(fig, "graphic", **{f"{{{XLINK}}}href": href})
    if figure.permissions is not None:
        _permissions(fig, figure.permissions, figure.copyright or "", None)


def _caption(parent: etree._Element, caption: Caption) -> None:
    element = _sub(parent, "caption")
    _sub(element, "title", text=caption.title)
    _rich(_sub(element, "p"), caption.body)


def _back(article: etree._Element, doc: ArticleDoc) -> None:
    back = _sub(article, "back")
    notes = _sub(back, "notes", **{"notes-type": "demo-data"})
    _sub(notes, "title", text="Demo data notice")
    _sub(notes, "p", text=DEMO_NOTICE)
    refs = _sub(back, "ref-list")
    _sub(refs, "title", text="References")
    for reference in doc.references:
        ref = _sub(refs, "ref", id=reference.ref_id)
        citation = _sub(ref, "mixed-citation" if reference.mixed else "element-citation", **{"publication-type": "journal"})
        people = _sub(citation, "person-group", **{"person-group-type": "author"})
        for surname, initials in reference.authors:
            name = _sub(people, "name")
            _sub(name, "surname", text=surname)
            _sub(name, "given-names", text=initials)
        if reference.mixed:
            people.tail = ". "
        for tag, value in (("article-title", reference.title), ("source", reference.source), ("year", str(reference.year))):
            element = _sub(citation, tag, text=value)
            if reference.mixed:
                element.tail = ". "
        if reference.pmid:
            _sub(citation, "pub-id", text=reference.pmid, **{"pub-id-type": "pmid"})
        if reference.doi:
            _sub(citation, "pub-id", text=reference.doi, **{"pub-id-type": "doi"})


def _rich(element: etree._Element, content: RichText) -> None:
    """Append inline runs to element: text, inline elements, and xrefs ("xref fig f1 f2")."""
    last: etree._Element | None = None
    for tag, run in content.segments:
        if tag is None:
            if last is None:
                element.text = (element.text or "") + run
            else:
                last.tail = (last.tail or "") + run
            continue
        if tag.startswith("xref "):
            _, ref_type, rids = tag.split(" ", 2)
            last = etree.SubElement(element, "xref", attrib={"ref-type": ref_type, "rid": rids})
        else:
            last = etree.SubElement(element, tag)
        last.text = run


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, tag, attrib=attrs)
    if text is not None:
        element.text = text
    return element
