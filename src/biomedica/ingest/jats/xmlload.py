"""Safe XML loading: parse bytes once, drop element namespaces, find the articles inside.

The parser never opens anything a document names (biomedica.io.safe_xml): no DTD loading,
no network, no entity expansion (an external entity such as `<!ENTITY x SYSTEM
"file:///etc/passwd">` stays an unresolved entity node and is dropped by the text
flattener), and a DOCTYPE naming `/dev/stdin` or a FIFO is never read. Syntax errors are
reported by line, column and error code, never with the document's text.

Element namespaces are removed from
namespaced documents (OAI-PMH records put the JATS namespace on `<article>`), so the
same code reads them and plain PMC nxml; in plain nxml only MathML and `ali:` elements
stay namespaced and are matched by local name. Attribute namespaces always stay, so
`xlink:href` is `{http://www.w3.org/1999/xlink}href`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from lxml import etree

from biomedica.io.redact import clip
from biomedica.io.safe_xml import safe_xml_parser, xml_error_summary

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

_thread_state = threading.local()
MATHML_NS = "http://www.w3.org/1998/Math/MathML"
ALI_NS = "http://www.niso.org/schemas/ali/1.0/"


def _parser(recover: bool = False) -> etree.XMLParser:
    # lxml parsers are not thread-safe; keep one per thread
    name = "recovering_parser" if recover else "parser"
    parser = getattr(_thread_state, name, None)
    if parser is None:
        # huge_tree: lifts libxml2's depth and text-node limits, which real JATS (long
        # tables, deep MathML) exceeds; the size of what is parsed is capped by the sources
        # (IngestConfig.max_xml_bytes), not here
        parser = safe_xml_parser(recover=recover, huge_tree=True, remove_comments=True, remove_pis=True)
        setattr(_thread_state, name, parser)
    return parser


class XMLLoadError(ValueError):
    """The bytes are not well-formed XML; `kind` is the ErrorRecord kind to report."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def parse_xml(data: bytes, source: str) -> etree._Element:
    """Parse bytes into a tree with element namespaces removed; raise XMLLoadError on bad input."""
    if not data or data.isspace():  # isspace stops at the first non-space byte; strip() copies the file
        raise XMLLoadError("xml-syntax", f"{source}: the file is empty; re-download it from the source.")
    data = _without_default_namespaces(data)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        if "Entity '" in str(exc) and "not defined" in str(exc):
            # an HTML entity (&nbsp;) that only the unloaded DTD defines: parse again, leaving
            # it as an unresolved entity node (the flattener translates known HTML names)
            root = etree.fromstring(data, _parser(recover=True))
            if root is not None:
                strip_namespaces(root)
                return root
        raise XMLLoadError(
            "xml-syntax",
            f"{source}: not well-formed XML ({xml_error_summary(exc)}); the file is probably truncated "
            "or not XML, re-download it from the source.",
        ) from exc
    if root is None:
        raise XMLLoadError("xml-syntax", f"{source}: no XML element found; re-download it from the source.")
    strip_namespaces(root)
    return root


_WHITESPACE = b" \t\r\n"


def _start_tag_end(data: bytes, start: int) -> int:
    return data.find(b">", start)


def _drop_default_namespace(data: bytes, tag_start: int) -> bytes:
    """Remove `xmlns="..."` from the start tag that begins at `tag_start` (if it has one)."""
    tag_end = _start_tag_end(data, tag_start)
    if tag_end < 0:
        return data
    for space in _WHITESPACE:
        at = data.find(bytes([space]) + b'xmlns="', tag_start, tag_end)
        if at >= 0:
            close = data.find(b'"', at + 8)
            if 0 <= close < tag_end:
                return data[:at] + data[close + 1 :]
    return data


def _without_default_namespaces(data: bytes) -> bytes:
    """Drop the default namespace declared on the root and on `<article>` start tags, before parsing.

    OAI-PMH records put the JATS namespace on `<article>` (and the OAI namespace on the
    root); renaming every element after parsing costs three times the parse, while
    removing the two declarations from the start tags costs nothing. Only those start
    tags are touched (bounded `find`s, no scan of the document); anything still
    namespaced afterwards is handled by strip_namespaces.
    """
    head = data.find(b"<", data.find(b"?>") + 1 if data.startswith(b"<?xml") else 0)
    while head >= 0 and data[head + 1 : head + 2] in (b"!", b"?"):  # DOCTYPE, comments, PIs
        head = data.find(b"<", head + 1)
    if head < 0:
        return data
    root_end = _start_tag_end(data, head)
    if root_end < 0 or data.find(b'xmlns="', head, root_end) < 0:
        if data.find(b'xmlns="', head, head + 65536) < 0:
            return data  # plain PMC XML: nothing declared near the top
    data = _drop_default_namespace(data, head)
    search_from = head + 1
    for _ in range(64):  # efetch sets hold a few articles; OAI records one
        at = data.find(b"<article", search_from)
        if at < 0:
            break
        search_from = at + 8
        if data[at + 8 : at + 9] in (b" ", b"\t", b"\r", b"\n", b">"):
            data = _drop_default_namespace(data, at)
    return data


def strip_namespaces(root: etree._Element) -> None:
    """Rename `{ns}tag` elements to `tag` in place when the document puts its elements in a namespace.

    Plain PMC XML is left alone (a full pass costs more than the parse): there only MathML
    and `ali:` elements carry a namespace, and their readers match them by local name.
    """
    if root.tag[0] != "{":
        return
    renamed = [element for element in root.iter(etree.Element) if element.tag[0] == "{"]
    for element in renamed:
        tag = element.tag
        element.tag = tag[tag.index("}") + 1 :]


def local_name(tag: str) -> str:
    """`{ns}math` -> `math`; a tag without namespace is returned as is."""
    return tag[tag.index("}") + 1 :] if tag[0] == "{" else tag


@dataclass
class Unwrapped:
    """What a file holds: its JATS `<article>` elements, the wrapper dialect, and wrapper errors."""

    articles: list[etree._Element]
    wrapper: str | None  # "efetch" | "oai-pmh" | "europepmc-bulk" | None for a bare <article>
    errors: list[tuple[str, str, str | None]] = field(default_factory=list)  # (kind, message, id)


def unwrap_articles(root: etree._Element, source: str) -> Unwrapped:
    """Find the articles in a bare `<article>`, an efetch `<pmc-articleset>`, an OAI-PMH reply or a bulk file.

    A Europe PMC bulk file (`PMC<first>_PMC<last>.xml[.gz]`) wraps many `<article>` in one
    `<articles>` root (see jats.bulk, which streams large ones article by article).
    """
    tag = root.tag
    if tag == "article":
        return Unwrapped([root], None)
    if tag == "articles":
        articles = [child for child in root if child.tag == "article"]
        if articles:
            return Unwrapped(articles, "europepmc-bulk")
        return Unwrapped([], "europepmc-bulk", [(
            "no-article",
            f"{source}: the Europe PMC bulk file's <articles> holds no <article>; re-download it from Europe PMC.",
            None,
        )])  # fmt: skip
    if tag == "pmc-articleset":
        articles = [child for child in root if child.tag == "article"]
        errors = []
        for reply in root.iter("Reply"):
            reason = reply.get("error") or "unknown error"
            errors.append(
                (
                    "efetch-error",
                    f"{source}: efetch returned an error instead of an article: {clip(reason)!r}; "
                    "check the PMCID, or fetch the article from the PMC Cloud Service instead.",
                    reply.get("Id"),
                )
            )
        if not articles and not errors:
            errors.append(
                (
                    "no-article",
                    f"{source}: the <pmc-articleset> holds no <article>; re-run the efetch query.",
                    None,
                )
            )
        return Unwrapped(articles, "efetch", errors)
    if tag == "OAI-PMH":
        articles = list(root.iter("article"))
        # keep only outermost articles (sub-articles are parsed with their parent)
        articles = [a for a in articles if not any(anc.tag == "article" for anc in a.iterancestors())]
        errors = []
        for error in root.iter("error"):
            if any(anc.tag == "article" for anc in error.iterancestors()):
                continue
            code = error.get("code") or "error"
            errors.append(
                (
                    "oai-error",
                    f"{source}: the OAI-PMH service answered {clip(code, 40)}: {clip(error.text or '')!r}; "
                    "check the identifier (oai:pubmedcentral.nih.gov:<digits>) and metadataPrefix=pmc.",
                    None,
                )
            )
        if not articles and not errors:
            errors.append(
                (
                    "no-article",
                    f"{source}: the OAI-PMH response holds no <article>; request it with metadataPrefix=pmc "
                    "(oai_dc records carry no full text).",
                    None,
                )
            )
        return Unwrapped(articles, "oai-pmh", errors)
    return Unwrapped(
        [],
        None,
        [
            (
                "not-jats",
                f"{source}: the root element is <{clip(str(tag), 40)}>, not a JATS <article>, <pmc-articleset>, "
                "OAI-PMH reply or Europe PMC <articles> bulk file; pass JATS XML files only (images and PDFs are read by the image resolver).",
                None,
            )
        ],
    )
