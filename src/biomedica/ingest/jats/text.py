"""Mixed-content flattening: JATS elements (captions, titles, paragraphs, MathML) to clean text.

One flattener serves captions, titles, abstracts, body text and mentions, so every field
follows the same spacing rules: block elements (p, title, list-item, table cells, ...)
are separated by a space, inline elements (italic, sup, xref, named-content, ...) are
joined as written (`Growth of <italic>E. coli</italic>` gives "Growth of E. coli"), and
whitespace runs collapse to one space. Formulas become readable text (rules in
`mathml.py`: `CO₂`, `log CV = −0.5`, `E_NM`): MathML when present (its @alttext only when
the MathML renders nothing), else the `<tex-math>` (PMC's `\\documentclass ...
\\begin{document}` wrapper stripped) made readable. `flatten(..., tex=True)` gives the same
text with every formula as `$TeX$` instead (the figure record's `caption_tex`).

Hand-written on purpose: no library flattens JATS mixed content with these rules, and a
single recursive pass over lxml elements is faster than an XSLT round trip.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.entities import html5 as _HTML5_ENTITIES

from lxml import etree

from biomedica.ingest.jats.mathml import mathml_tex, readable_mathml, readable_tex
from biomedica.ingest.jats.xmlload import MATHML_NS, local_name

MATHML_MATH = f"{{{MATHML_NS}}}math"

# elements that start a new block of text: separated from neighbours by a space
BLOCK_TAGS = frozenset(
    {
        "p", "title", "subtitle", "label", "caption", "sec", "list", "list-item", "def-list", "def-item",
        "term", "def", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "disp-quote", "statement",
        "speech", "verse-group", "verse-line", "break", "disp-formula", "boxed-text", "fn", "ref",
        "mixed-citation", "element-citation", "attrib", "array", "preformat", "address", "aff",
        "question", "answer", "explanation",
    }
)  # fmt: skip
# elements whose content is never text a reader sees
SKIP_TAGS = frozenset(
    {"graphic", "inline-graphic", "object-id", "alt-text", "long-desc", "permissions", "uri-list"}
)
# floats that body text and mentions leave out (they have their own records)
FLOAT_TAGS = frozenset(
    {
        "fig", "fig-group", "table-wrap", "table-wrap-group", "supplementary-material", "media", "graphic",
        "chem-struct-wrap",
    }
)
_FORMULA_TAGS = frozenset({"inline-formula", "disp-formula"})
_NO_SKIP: frozenset[str] = frozenset()
_SPACE_BEFORE_PUNCTUATION = re.compile(r" ([,;]|\.(?= |$))")


def collapse_whitespace(text: str) -> str:
    """Collapse every whitespace run (newlines, tabs, no-break spaces) to one space and trim."""
    if text.isprintable() and "  " not in text and not text.startswith(" ") and not text.endswith(" "):
        # the common case (most paragraphs are one line): the only whitespace is single inner
        # spaces, since every other whitespace character is non-printable; nothing to collapse
        return text
    return " ".join(text.split())


def flatten(element: etree._Element | None, skip: frozenset[str] = _NO_SKIP, tex: bool = False) -> str:
    """The text of `element` (not its tail) with JATS spacing rules; "" for None.

    `tex`: formulas as `$TeX$` (from `<tex-math>`, else derived from MathML) instead of readable text.
    """
    if element is None:
        return ""
    if not len(element):  # a leaf (surname, kwd, label, ...): its own text is all there is
        return _tidy(collapse_whitespace(element.text or ""))
    parts: list[str] = []
    _collect(element, parts, _skip_set(skip), tex)
    return _tidy(collapse_whitespace("".join(parts)))


def _tidy(text: str) -> str:
    if " ," in text or " ;" in text or " ." in text:
        # pretty-printed XML leaves "Biology\n</addr-line>, <institution>" as "Biology , ..."
        text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
    return text


def _entity_text(node: etree._Element) -> str:
    # entities stay unresolved (XXE-safe); known HTML names (&nbsp;) are safe to translate,
    # anything else (a SYSTEM entity, a DTD-declared name) is dropped
    name = (node.text or "")[1:]
    return _HTML5_ENTITIES.get(name, "")


_BLOCK, _FORMULA, _MATH, _TEX, _ALTERNATIVES = range(1, 6)
_ACTIONS = {tag: _BLOCK for tag in BLOCK_TAGS}
_ACTIONS.update({tag: _FORMULA for tag in _FORMULA_TAGS})
_ACTIONS.update({"math": _MATH, MATHML_MATH: _MATH, "tex-math": _TEX, "alternatives": _ALTERNATIVES})
_skip_sets: dict[frozenset[str], frozenset[str]] = {}


def _skip_set(skip: frozenset[str]) -> frozenset[str]:
    combined = _skip_sets.get(skip)
    if combined is None:
        combined = _skip_sets[skip] = skip | SKIP_TAGS
    return combined


def _collect(element: etree._Element, parts: list[str], skip: frozenset[str], tex: bool = False) -> None:
    """Append the text of `element` and its descendants to `parts`; `skip` already holds SKIP_TAGS."""
    if element.text:
        parts.append(element.text)
    append = parts.append
    for child in element:
        tag = child.tag
        if tag.__class__ is str:
            if tag in skip:
                pass
            else:
                action = _ACTIONS.get(tag)
                if action is None:  # inline element: most are leaves such as <italic>x</italic>
                    if len(child):
                        _collect(child, parts, skip, tex)
                    elif child.text:
                        append(child.text)
                elif action == _BLOCK:
                    append(" ")
                    _collect(child, parts, skip, tex)
                    append(" ")
                elif tex:
                    append(_formula_tex_text(child, action, skip))
                elif action == _FORMULA:
                    append(" " + formula_text(child) + " " if tag == "disp-formula" else formula_text(child))
                elif action == _MATH:
                    append(mathml_text(child))
                elif action == _TEX:
                    append(readable_tex(tex_text(child.text or "")))
                else:
                    append(_alternatives_text(child, skip))
        elif tag is etree.Entity:
            append(_entity_text(child))
        if child.tail:
            append(child.tail)


def _formula_tex_text(element: etree._Element, action: int, skip: frozenset[str]) -> str:
    """A formula, math or alternatives in `tex` mode: `$TeX$`, or plain text when it holds no math."""
    if action == _FORMULA:
        tex = formula_tex(element)
        if tex is None:
            text = formula_text(element)
        else:
            text = f"${tex}$" if tex else ""
        return f" {text} " if element.tag == "disp-formula" else text
    if action == _MATH:
        tex = mathml_tex(element)
    elif action == _TEX:
        tex = tex_text(element.text or "")
    else:
        tex = _alternatives_tex(element)
        if tex is None:
            return _alternatives_text(element, skip)
    return f"${tex}$" if tex else ""


def _tagged_children(parent: etree._Element) -> Iterator[tuple[str, etree._Element]]:
    """(local tag name, child) of each element child; comments and processing instructions are left out."""
    for child in parent:
        if isinstance(child.tag, str):
            yield local_name(child.tag), child


def _first_children(alternatives: etree._Element) -> dict[str, etree._Element]:
    by_tag: dict[str, etree._Element] = {}
    for tag, child in _tagged_children(alternatives):
        by_tag.setdefault(tag, child)
    return by_tag


def _alternatives_text(alternatives: etree._Element, skip: frozenset[str]) -> str:
    """One readable rendering of an <alternatives>: MathML, then TeX, then the first textual child."""
    by_tag = _first_children(alternatives)
    if "math" in by_tag:
        text = mathml_text(by_tag["math"])
        if text:
            return text
    if "tex-math" in by_tag:
        return readable_tex(tex_text(by_tag["tex-math"].text or ""))
    for tag, child in by_tag.items():
        if tag not in skip and tag not in SKIP_TAGS and tag not in ("graphic", "media", "math"):
            return flatten(child, skip)
    return ""


def _alternatives_tex(alternatives: etree._Element) -> str | None:
    """TeX of an <alternatives>: its tex-math, else derived from its MathML; None when it holds neither."""
    by_tag = _first_children(alternatives)
    if "tex-math" in by_tag:
        tex = tex_text(by_tag["tex-math"].text or "")
        if tex:
            return tex
    if "math" in by_tag:
        return mathml_tex(by_tag["math"])
    return None


def formula_text(formula: etree._Element) -> str:
    """Readable text of an inline-formula / disp-formula: MathML, TeX or plain text, never the image."""
    for tag, child in _tagged_children(formula):
        if tag == "alternatives":
            text = _alternatives_text(child, _NO_SKIP)
            if text:
                return text
        elif tag == "tex-math":
            return readable_tex(tex_text(child.text or ""))
        elif tag == "math":
            return mathml_text(child)
    # plain-text formula such as <inline-formula>x<sup>2</sup></inline-formula>
    return flatten(formula, frozenset({"label"}))


def formula_tex(formula: etree._Element) -> str | None:
    """TeX of an inline-formula / disp-formula (tex-math, else from MathML); None for a plain-text formula."""
    found = None
    for tag, child in _tagged_children(formula):
        if tag == "alternatives":
            found = _alternatives_tex(child)
        elif tag == "tex-math":
            found = tex_text(child.text or "")
        elif tag == "math":
            found = mathml_tex(child)
        if found is not None:
            return found
    return None


_TEX_BEGIN = "\\begin{document}"
_TEX_END = "\\end{document}"
_TEX_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))


def tex_text(tex: str) -> str:
    """The math inside PMC's TeX wrapper: `\\documentclass...\\begin{document}$$x$$\\end{document}` gives "x"."""
    start = tex.find(_TEX_BEGIN)
    if start >= 0:
        end = tex.rfind(_TEX_END)
        tex = tex[start + len(_TEX_BEGIN) : end if end > start else None]
    tex = tex.strip()
    for opening, closing in _TEX_DELIMITERS:
        if len(tex) > len(opening) + len(closing) and tex.startswith(opening) and tex.endswith(closing):
            tex = tex[len(opening) : -len(closing)].strip()
            break
    return collapse_whitespace(tex)


# MathML -----------------------------------------------------------------------------------


def mathml_text(math: etree._Element) -> str:
    """Readable text of a MathML element (see mathml.py); its @alttext only when the MathML renders nothing."""
    text = readable_mathml(math)
    if text:
        return text
    return collapse_whitespace(math.get("alttext") or "")


# blocks -----------------------------------------------------------------------------------

# elements that only hold blocks: walk into them instead of flattening them as one line
CONTAINER_TAGS = frozenset(
    {
        "body", "sec", "abstract", "trans-abstract", "boxed-text", "app", "app-group", "list", "list-item",
        "def-list", "def-item", "disp-quote", "glossary", "statement", "ack", "notes", "fn-group", "fn",
        "question-wrap", "answer", "question", "explanation", "bio", "back",
    }
)  # fmt: skip


# what prose (body text, abstracts, mentions) leaves out: floats and nested documents
PROSE_SKIP = FLOAT_TAGS | {"ref-list", "sub-article"}
# elements below which a paragraph needs the full flattener; structural blocks (p, title, sec,
# table cells) are left out because inside a paragraph they only occur under one of these
_MARKER_TAGS = (
    # minus blocks that only occur inside another marker (list-item in list, ref in ref-list, ...)
    (
        BLOCK_TAGS
        - {"p", "title", "sec", "label", "caption", "td", "th", "tr", "thead", "tbody", "tfoot"}
        - {"list-item", "def-item", "term", "def", "verse-line", "ref", "mixed-citation", "element-citation", "aff"}
    )
    | SKIP_TAGS
    | PROSE_SKIP
    | _FORMULA_TAGS
    | {"math", MATHML_MATH, "tex-math", "alternatives"}
)


# elements the figure and reference readers need, listed by the same scan (each extra
# lxml tag scan of an article costs as much as a quarter of its Python work)
INDEXED_TAGS = ("fig", "fig-group", "graphic", "xref", "ref-list")
_SCAN_TAGS = tuple(_MARKER_TAGS | set(INDEXED_TAGS))
_NOT_MARKERS = frozenset(INDEXED_TAGS) - _MARKER_TAGS


class ArticleText:
    """Flattens the prose paragraphs of one article once each, fast when they hold plain markup.

    One C-level scan finds the elements that need the full flattener (formulas, lists,
    floats, entities, ...) and marks their ancestors; every other paragraph is plain
    inline markup (italic, xref, sup, ...) and is read with lxml's text serialiser.
    Paragraphs are cached, so body text and figure mentions flatten each `<p>` once.
    The same scan lists the INDEXED_TAGS elements in document order (`found`), so the
    figure and reference readers need no scan of their own.
    """

    def __init__(self, root: etree._Element) -> None:
        complex_elements: set[etree._Element] = set()
        index: dict[object, list[etree._Element]] = {tag: [] for tag in INDEXED_TAGS}
        not_markers = _NOT_MARKERS
        for marker in root.iter(*_SCAN_TAGS, etree.Entity):
            tag = marker.tag
            listed = index.get(tag)
            if listed is not None:
                listed.append(marker)
                if tag in not_markers:
                    continue
            if marker in complex_elements:
                continue
            complex_elements.add(marker)
            ancestor = marker.getparent()  # cheaper than setting up iterancestors() per marker
            while ancestor is not None and ancestor not in complex_elements:
                complex_elements.add(ancestor)
                ancestor = ancestor.getparent()
        self._complex = complex_elements
        self._index = index
        self._cache: dict[etree._Element, str] = {}

    def found(self, tag: str) -> list[etree._Element]:
        """The `tag` elements (one of INDEXED_TAGS) under the root, in document order, as `root.iter(tag)`."""
        return self._index[tag]

    def prose(self, element: etree._Element) -> str:
        """`flatten(element, PROSE_SKIP)`, cached."""
        text = self._cache.get(element)
        if text is None:
            if element in self._complex:
                text = flatten(element, PROSE_SKIP)
            else:
                raw = etree.tostring(element, method="text", encoding="unicode", with_tail=False)
                text = _tidy(collapse_whitespace(raw))
            self._cache[element] = text
        return text


def block_lines(element: etree._Element | None, article_text: ArticleText | None = None) -> list[str]:
    """Section titles and paragraphs under `element`, one flattened line each, floats left out."""
    lines: list[str] = []
    if element is not None:
        _walk_blocks(element, lines, article_text.prose if article_text is not None else _flatten_prose)
    return lines


def _flatten_prose(element: etree._Element) -> str:
    return flatten(element, PROSE_SKIP)


_WALK_SKIP = PROSE_SKIP | SKIP_TAGS


def _walk_blocks(container: etree._Element, lines: list[str], flatten_line) -> None:
    pending_label = ""
    for child in container:
        tag = child.tag
        if tag.__class__ is not str or tag in _WALK_SKIP:
            continue
        if tag == "label":
            pending_label = flatten_line(child)
            continue
        if tag in CONTAINER_TAGS and not (child.text and child.text.strip()):
            if pending_label:
                lines.append(pending_label)
                pending_label = ""
            _walk_blocks(child, lines, flatten_line)
            continue
        text = flatten_line(child)
        if pending_label:
            text = f"{pending_label} {text}".strip()
            pending_label = ""
        if text:
            lines.append(text)
    if pending_label:
        lines.append(pending_label)
