"""Article metadata from a JATS `<article>`: ids, dates, journal, authors, license, refs, text.

Every reader of the front matter lives here, each a small function over the article
element, so the figure code and the pipeline share one `ArticleRecord` per article.
Only the main article's front and back are read; `<sub-article>` front stubs (decision
letters, reviewer reports) never overwrite the article's own metadata.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from lxml import etree

from biomedica.ingest.jats.elements import child, child_text, children
from biomedica.ingest.jats.text import ArticleText, block_lines, collapse_whitespace, flatten
from biomedica.ingest.jats.xmlload import ALI_NS, XLINK_HREF
from biomedica.licenses import NO_LICENSE, License, normalize_license
from biomedica.records import ArticleRecord, Author

_PMCID = re.compile(r"(?:PMC)?(\d+)(?:\.(\d+))?", re.IGNORECASE)
_ORCID = re.compile(r"\d{4}-\d{4}-\d{4}-\d{3}[\dX]")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9]+")
# English month abbreviations, written out: calendar.month_abbr follows the process locale
_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_MONTHS["sept"] = 9

# abstracts that are not the article's abstract: pictures, digests, one-line teasers
_EXCLUDED_ABSTRACT_TYPES = frozenset(
    {
        "graphical", "teaser", "toc", "web-summary", "summary", "executive-summary", "author-summary",
        "editor-summary", "precis", "short", "key-points", "lay-summary", "plain-language-summary",
        "video", "visual", "video-abstract",
    }
)  # fmt: skip


_ALI_LICENSE_REF = f"{{{ALI_NS}}}license_ref"


@dataclass
class ArticleIds:
    """The identifiers of one article and the id types seen (to tell the dialect)."""

    pmcid: str | None
    version: int | None
    pmid: str | None
    doi: str | None
    publisher_id: str | None
    id_types: frozenset[str]


def safe_id(text: str) -> str:
    """An id usable in a WebDataset key: letters and digits, runs of anything else become '-'."""
    return _UNSAFE_ID_CHARS.sub("-", text).strip("-")


def normalize_doi(text: str | None) -> str | None:
    """A bare DOI ("10.1/x") from a DOI, a doi.org URL or "doi:10.1/x"."""
    if not text:
        return None
    doi = text.strip()
    if not doi.startswith("10."):
        doi = _DOI_PREFIX.sub("", doi).strip()
    return doi or None


def read_ids(meta: etree._Element | None) -> ArticleIds:
    """PMCID (with version), PMID, DOI and publisher id from `article-meta/article-id`."""
    by_type: dict[str, str] = {}
    if meta is not None:
        for article_id in children(meta, "article-id"):
            id_type = (article_id.get("pub-id-type") or "").strip().lower()
            value = collapse_whitespace("".join(article_id.itertext()))
            if id_type and value and id_type not in by_type:
                by_type[id_type] = value
    pmcid = version = None
    for id_type in ("pmcid-ver", "pmcid", "pmc", "accession"):
        match = _PMCID.fullmatch(by_type.get(id_type, ""))
        if match and (id_type != "accession" or by_type[id_type].upper().startswith("PMC")):
            pmcid = f"PMC{match.group(1)}"
            version = int(match.group(2)) if match.group(2) else None
            break
    pmid = by_type.get("pmid")
    if pmid is not None and not pmid.isdigit():
        pmid = None
    return ArticleIds(
        pmcid=pmcid,
        version=version,
        pmid=pmid,
        doi=normalize_doi(by_type.get("doi")),
        publisher_id=by_type.get("publisher-id"),
        id_types=frozenset(by_type),
    )


def article_key_id(ids: ArticleIds, journal_id: str | None, elocation: str | None, source: str, index: int) -> str:
    """The key prefix: PMC<id>, else a dot-free id from the DOI, publisher id or file name."""
    if ids.pmcid:
        return ids.pmcid
    if ids.doi:
        return "DOI-" + safe_id(ids.doi)
    local_id = ids.publisher_id or elocation
    if local_id:
        prefix = f"{safe_id(journal_id)}-" if journal_id else ""
        return f"PUB-{prefix}{safe_id(local_id)}"
    stem = PurePosixPath(source.replace("\\", "/")).name.split(".")[0] or "article"
    return f"SRC-{safe_id(stem)}" + (f"-{index}" if index else "")


def detect_dialect(id_types: frozenset[str], wrapper: str | None) -> str:
    """pmc-classic | pmc-jats14 | europepmc | oai-pmh | efetch | publisher."""
    if wrapper:
        return wrapper
    if "pmcid-ver" in id_types or "pmcaid" in id_types:
        return "pmc-jats14"
    if "pmc" in id_types:
        return "pmc-classic"
    if "pmcid" in id_types:
        return "europepmc"
    return "publisher"


# dates ------------------------------------------------------------------------------------


def _int_or_none(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def _month(text: str | None) -> int | None:
    text = (text or "").strip().lower()
    if not text:
        return None
    if text.isdigit():
        month = int(text)
        return month if 1 <= month <= 12 else None
    first = re.split(r"[^a-z]+", text)[0]  # "Jan-Feb" -> "jan"
    return _MONTHS.get(first[:4]) or _MONTHS.get(first[:3])  # seasons give no month


def iso_date(date: etree._Element) -> str | None:
    """YYYY-MM-DD, YYYY-MM or YYYY from a JATS date element (month names, seasons, iso attr)."""
    iso_attr = (date.get("iso-8601-date") or "").strip()
    if re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", iso_attr):
        return iso_attr
    year = _int_or_none(child_text(date, "year"))
    if year is None:
        match = re.search(r"\b(1[5-9]\d\d|2\d\d\d)\b", child_text(date, "string-date") or "")
        return match.group(1) if match else None
    month = _month(child_text(date, "month"))
    if month is None:
        return f"{year:04d}"
    day = _int_or_none(child_text(date, "day"))
    if day is None or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return f"{year:04d}-{month:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}"


def _date_rank(date: etree._Element) -> int:
    """Lower is preferred: electronic publication first, collection (issue) dates last."""
    pub_type = (date.get("pub-type") or "").lower()
    date_type = (date.get("date-type") or "").lower()
    pub_format = (date.get("publication-format") or "").lower()
    if pub_type == "epub" or (date_type in ("pub", "") and pub_format == "electronic" and not pub_type):
        return 0
    if not pub_type and not date_type and not pub_format:
        return 1  # new PMC XML: a bare <pub-date> is the publication date
    if pub_type == "epub-ppub" or (date_type == "pub" and not pub_format):
        return 1
    if pub_type == "ppub" or (date_type == "pub" and pub_format == "print"):
        return 2
    if pub_type == "pmc-release":
        return 3
    if pub_type == "collection" or date_type == "collection":
        return 4
    return 5


def read_pub_date(meta: etree._Element | None) -> tuple[str | None, int | None]:
    """The publication date as ISO text and its year, preferring the electronic date."""
    best: tuple[int, int, str] | None = None
    if meta is not None:
        for date in children(meta, "pub-date"):
            iso = iso_date(date)
            if iso:
                candidate = (_date_rank(date), -len(iso), iso)
                if best is None or candidate < best:
                    best = candidate
    if best is None:
        return None, None
    return best[2], int(best[2][:4])


# journal ----------------------------------------------------------------------------------


@dataclass
class JournalInfo:
    title: str | None
    abbrev: str | None
    publisher: str | None
    issn: str | None
    journal_id: str | None  # a short journal id for publisher-id based keys


def read_journal(journal_meta: etree._Element | None) -> JournalInfo:
    if journal_meta is None:
        return JournalInfo(None, None, None, None, None)
    title_el = next(journal_meta.iter("journal-title"), None)
    abbrev_el = next(journal_meta.iter("abbrev-journal-title"), None)
    journal_ids = {
        (el.get("journal-id-type") or ""): collapse_whitespace(el.text or "")
        for el in children(journal_meta, "journal-id")
    }
    abbrev = flatten(abbrev_el) or journal_ids.get("iso-abbrev") or journal_ids.get("nlm-ta") or None
    issn = None
    for issn_el in children(journal_meta, "issn"):
        value = collapse_whitespace(issn_el.text or "")
        electronic = issn_el.get("pub-type") == "epub" or issn_el.get("publication-format") == "electronic"
        if value and (issn is None or electronic):
            issn = value
            if electronic:
                break
    publisher_name = next(journal_meta.iter("publisher-name"), None)
    journal_id = journal_ids.get("publisher-id") or journal_ids.get("nlm-ta") or journal_ids.get("iso-abbrev")
    return JournalInfo(
        title=flatten(title_el) or None,
        abbrev=abbrev,
        publisher=flatten(publisher_name) or None,
        issn=issn,
        journal_id=journal_id or None,
    )


# people -----------------------------------------------------------------------------------


_TITLE_SKIP = frozenset({"xref", "fn"})
_AFF_SKIP = frozenset({"label", "email", "institution-id", "fn", "xref"})


def affiliation_text(aff: etree._Element) -> str:
    """An affiliation as one line, without its label, e-mail or institution ids."""
    skip = _AFF_SKIP
    children = [child for child in aff if isinstance(child.tag, str)]
    if children and children[0].tag == "sup" and not (aff.text or "").strip():
        # "<sup>1</sup><institution>..." : the superscript is the affiliation's label
        pieces = [children[0].tail or ""]
        for child in children[1:]:
            if child.tag not in skip:
                pieces.append(flatten(child, skip))
            pieces.append(child.tail or "")
        return collapse_whitespace("".join(pieces)).strip(" ,;")
    has_own_separators = bool((aff.text or "").strip()) or any((child.tail or "").strip() for child in aff)
    if has_own_separators:
        text = flatten(aff, skip)
    else:  # <institution>X</institution><country>Y</country> with no punctuation between them
        pieces = [flatten(child, skip) for child in aff if isinstance(child.tag, str) and child.tag not in skip]
        text = ", ".join(p for p in pieces if p)
    return text.strip(" ,;")


_ORCID_SOURCES = frozenset({"contrib-id", "uri", "ext-link"})


def _orcid(contrib: etree._Element, candidates: list[etree._Element] | None = None) -> str | None:
    """The ORCID of a contrib; `candidates` are its contrib-id, uri and ext-link elements when already found."""
    if candidates is None:
        candidates = list(contrib.iter(*_ORCID_SOURCES))
    for element in candidates:
        kind = (element.get("contrib-id-type") or element.get("content-type") or "").lower()
        value = (element.text or "") + " " + (element.get(XLINK_HREF) or "")
        if kind == "orcid" or "orcid.org" in value:
            match = _ORCID.search(value)
            if match:
                return match.group(0)
    return None


def _name_parts(contrib: etree._Element) -> tuple[str | None, str | None, str | None]:
    """(display name, surname, given names) of a contrib, or of its collab."""
    name = child(contrib, "name")
    if name is None:
        alternatives = child(contrib, "name-alternatives")
        if alternatives is not None:
            name = child(alternatives, "name")
    if name is not None:
        surname = flatten(child(name, "surname")) or None
        given = flatten(child(name, "given-names")) or None
        if name.get("name-style") == "eastern":
            display = " ".join(p for p in (surname, given) if p)
        else:
            display = " ".join(p for p in (given, surname) if p)
        suffix = flatten(child(name, "suffix"))
        if suffix:
            display = f"{display} {suffix}"
        return display or None, surname, given
    string_name = child(contrib, "string-name")
    if string_name is not None:
        surname = flatten(child(string_name, "surname")) or None
        given = flatten(child(string_name, "given-names")) or None
        return flatten(string_name) or None, surname, given
    collab = child(contrib, "collab")
    if collab is not None:
        return flatten(collab, frozenset({"contrib-group", "xref"})) or None, None, None
    return None, None, None


def _has_ancestor(element: etree._Element, tag: str) -> bool:
    ancestor = element.getparent()  # getparent() steps: cheaper than setting up iterancestors()
    while ancestor is not None:
        if ancestor.tag == tag:
            return True
        ancestor = ancestor.getparent()
    return False


def read_authors(front: etree._Element | None) -> list[Author]:
    """Authors in order, with ORCID and affiliation texts (via xref rid, nested aff, or shared affs)."""
    if front is None:
        return []
    aff_by_id: dict[str, str] = {}
    shared_affs: list[str] = []
    aff_texts: dict[etree._Element, str] = {}  # affs nested in a contrib are read again below
    groups: list[etree._Element] = []
    for element in front.iter("aff", "contrib-group"):  # one scan for both
        if element.tag == "contrib-group":
            groups.append(element)
            continue
        aff = element
        text = aff_texts[aff] = affiliation_text(aff)
        if not text:
            continue
        parent = aff.getparent()
        if parent is not None and parent.tag == "aff-alternatives":
            if parent.get("id") and parent.get("id") not in aff_by_id:
                aff_by_id[parent.get("id")] = text
            if aff is not child(parent, "aff"):
                continue
        if aff.get("id"):
            aff_by_id[aff.get("id")] = text
        if not _has_ancestor(aff, "contrib"):
            shared_affs.append(text)

    contribs = [
        c
        for group in groups
        if not _has_ancestor(group, "collab")
        for c in children(group, "contrib")
        if (c.get("contrib-type") or "author").lower() == "author"
    ]
    # each contrib's xrefs, affs and ORCID sources, found in one scan of it
    found: list[tuple[list[etree._Element], list[etree._Element], list[etree._Element]]] = []
    for contrib in contribs:
        xrefs, affs, orcid_sources = [], [], []
        for element in contrib.iter("xref", "aff", *_ORCID_SOURCES):
            tag = element.tag
            (xrefs if tag == "xref" else affs if tag == "aff" else orcid_sources).append(element)
        found.append((xrefs, affs, orcid_sources))
    any_aff_link = any(
        (x.get("ref-type") == "aff") for xrefs, _, _ in found for x in xrefs
    ) or any(child(c, "aff") is not None for c in contribs)

    authors: list[Author] = []
    for contrib, (xrefs, affs, orcid_sources) in zip(contribs, found):
        display, surname, given = _name_parts(contrib)
        if not display:
            continue
        affiliations: list[str] = []
        for xref in xrefs:
            if xref.get("ref-type") == "aff":
                for rid in (xref.get("rid") or "").split():
                    if rid in aff_by_id and aff_by_id[rid] not in affiliations:
                        affiliations.append(aff_by_id[rid])
        for aff in affs:
            text = aff_texts.get(aff)
            if text is None:
                text = affiliation_text(aff)
            if text and text not in affiliations:
                affiliations.append(text)
        if not affiliations and not any_aff_link:
            affiliations = list(dict.fromkeys(shared_affs))
        authors.append(
            Author(
                name=display,
                surname=surname,
                given_names=given,
                orcid=_orcid(contrib, orcid_sources),
                affiliations=affiliations,
            )
        )
    return authors


# license ----------------------------------------------------------------------------------


def read_license(permissions: etree._Element | None) -> License:
    """The license a `<permissions>` block grants; a copyright-only block gives group "other".

    When no `<license>` is present but the copyright statement itself grants a Creative
    Commons license (old PLoS XML does this), that statement is read instead.
    """
    if permissions is None:
        return NO_LICENSE
    fallback: License | None = None
    for license_el in children(permissions, "license"):
        ref = child(license_el, "license_ref")
        if ref is None:
            ref = child(license_el, _ALI_LICENSE_REF)
        url = license_el.get(XLINK_HREF) or (collapse_whitespace(ref.text or "") if ref is not None else None)
        text = " ".join(flatten(p) for p in children(license_el, "license-p")) or flatten(license_el)
        found = normalize_license(url=url, text=text, license_type=license_el.get("license-type"))
        if found.code:
            return found
        fallback = fallback or found
    for ref in [*children(permissions, "license_ref"), *children(permissions, _ALI_LICENSE_REF)]:
        found = normalize_license(url=collapse_whitespace(ref.text or ""))
        if found.code:
            return found
    statement = flatten(child(permissions, "copyright-statement"))
    if "creative commons" in statement.lower() or "creativecommons.org" in statement.lower():
        found = normalize_license(text=statement)
        if found.code:
            return found
    return fallback if fallback is not None else NO_LICENSE


def read_copyright(permissions: etree._Element | None) -> str | None:
    """The copyright statement, else "© <year> <holder>" from its parts."""
    if permissions is None:
        return None
    statement = flatten(child(permissions, "copyright-statement"))
    if statement:
        return statement
    year = flatten(child(permissions, "copyright-year"))
    holder = flatten(child(permissions, "copyright-holder"))
    return f"© {year} {holder}".strip() if (year or holder) else None


# text -------------------------------------------------------------------------------------


def _unique(values) -> list[str]:
    return [v for v in dict.fromkeys(v for v in values if v)]


def read_abstract(meta: etree._Element | None) -> str | None:
    """The article abstract(s), one line per section title or paragraph; digests and teasers left out.

    When every abstract is of an excluded type (an article with only a summary), the first
    one that is not a picture or teaser is used.
    """
    if meta is None:
        return None
    abstracts = children(meta, "abstract")
    chosen = [a for a in abstracts if (a.get("abstract-type") or "").lower() not in _EXCLUDED_ABSTRACT_TYPES]
    if not chosen:
        chosen = [
            a for a in abstracts if (a.get("abstract-type") or "").lower() not in ("graphical", "teaser", "toc", "video")
        ][:1]
    lines: list[str] = []
    for abstract in chosen:
        block = block_lines(abstract)
        if block and block[0].lower().rstrip(".:") in ("abstract", "summary"):
            block = block[1:]
        lines.extend(block)
    return "\n".join(lines) or None


def read_body_text(article: etree._Element, article_text: ArticleText | None = None) -> str | None:
    """Section titles and paragraphs of the main `<body>`, newline separated, floats left out."""
    return "\n".join(block_lines(child(article, "body"), article_text)) or None


def read_subjects(meta: etree._Element | None) -> list[str]:
    if meta is None:
        return []
    categories = child(meta, "article-categories")
    if categories is None:
        return []
    return _unique(flatten(s) for s in categories.iter("subject"))


def read_keywords(meta: etree._Element | None) -> list[str]:
    if meta is None:
        return []
    return _unique(flatten(k) for group in children(meta, "kwd-group") for k in group.iter("kwd"))


@dataclass
class References:
    count: int
    pmids: list[str]
    dois: list[str]


def _main_ref_lists(article: etree._Element, article_text: ArticleText | None = None) -> list[etree._Element]:
    """Outermost ref-lists of the article itself: in <back>, or in <body> (new PMC XML), not in sub-articles."""
    lists = []
    for ref_list in article_text.found("ref-list") if article_text is not None else article.iter("ref-list"):
        ancestor = ref_list.getparent()
        while ancestor is not None:
            if ancestor.tag in ("ref-list", "sub-article", "response"):
                break
            if ancestor is article:
                lists.append(ref_list)
                break
            ancestor = ancestor.getparent()
    return lists




def read_references(article: etree._Element, article_text: ArticleText | None = None) -> References:
    """Reference count and cited PMIDs/DOIs from the main article's ref-lists."""
    count = 0
    pmids: list[str] = []
    dois: list[str] = []
    for ref_list in _main_ref_lists(article, article_text):
        for element in ref_list.iter("ref", "pub-id", "ext-link"):  # one scan of the list for all three
            tag = element.tag
            if tag == "ref":
                count += 1
                continue
            get = element.get
            id_type = get("pub-id-type") or get("ext-link-type")
            if id_type != "pmid" and id_type != "doi":
                continue
            text = ("".join(element.itertext()) if len(element) else element.text or "").strip()
            # an ext-link's href is the id; its text may be "link" or "PubMed"
            if tag == "ext-link":
                value = element.get(XLINK_HREF) or text
            else:
                value = text or element.get(XLINK_HREF) or ""
            if id_type == "pmid":
                if not value.isdigit():
                    value = re.sub(r"\D", "", value.rsplit("/", 1)[-1].rsplit("=", 1)[-1])
                if value:
                    pmids.append(value)
            else:
                doi = normalize_doi(value)
                if doi:
                    dois.append(doi)
    return References(count, _unique(pmids), _unique(dois))


def read_article(
    article: etree._Element,
    source: str,
    wrapper: str | None,
    index: int,
    article_text: ArticleText | None = None,
) -> tuple[ArticleRecord, License]:
    """The ArticleRecord for one `<article>` (figure counts left 0 for the caller) and its License.

    `article_text` flattens and caches paragraphs; pass the same one to read_figures.
    """
    front = child(article, "front")
    meta = child(front, "article-meta") if front is not None else None
    journal = read_journal(child(front, "journal-meta") if front is not None else None)
    ids = read_ids(meta)
    elocation = flatten(child(meta, "elocation-id")) if meta is not None else None
    pub_date, year = read_pub_date(meta)
    permissions = child(meta, "permissions") if meta is not None else None
    if permissions is None and meta is not None and child(meta, "copyright-statement") is not None:
        permissions = meta  # NLM 2.x: copyright-statement and license sit directly in article-meta
    license_ = read_license(permissions)
    references = read_references(article, article_text)
    # footnote markers (<xref ref-type="fn"><sup>1</sup></xref>) are not part of the title
    title = flatten(meta.find("title-group/article-title"), _TITLE_SKIP) if meta is not None else ""
    record = ArticleRecord(
        article_id=article_key_id(ids, journal.journal_id, elocation, source, index),
        pmcid=ids.pmcid,
        version=ids.version,
        pmid=ids.pmid,
        doi=ids.doi,
        publisher_id=ids.publisher_id,
        title=title or None,
        abstract=read_abstract(meta),
        journal=journal.title,
        journal_abbrev=journal.abbrev,
        publisher=journal.publisher,
        issn=journal.issn,
        pub_date=pub_date,
        year=year,
        article_type=article.get("article-type") or None,
        subjects=read_subjects(meta),
        keywords=read_keywords(meta),
        authors=read_authors(front),
        license=license_.code,
        license_url=license_.url,
        license_group=license_.group,
        copyright=read_copyright(permissions),
        n_references=references.count,
        cited_pmids=references.pmids,
        cited_dois=references.dois,
        body_text=read_body_text(article, article_text),
        source=source,
        dialect=detect_dialect(ids.id_types, wrapper),
    )
    return record, license_
