"""Mixed-content flattening: JATS elements (captions, titles, paragraphs, MathML) to clean text.

One flattener serves captions, titles, abstracts, body text and mentions, so every field
follows the same spacing rules: block elements (p, title, list-item, table cells, ...)
are separated by a space, inline elements (italic, sup, xref, named-content, ...) are
joined as written (`Growth of <italic>E. coli</italic>` gives "Growth of E. coli"), and
whitespace runs collapse to one space. Formulas become text: a `<tex-math>` alternative
(PMC's `\\documentclass ... \\begin{document}` wrapper stripped), else `mml:math/@alttext`,
else a linearisation of the MathML (x_i, x^2, (a)/(b), √(x)).

Hand-written on purpose: no library flattens JATS mixed content with these rules, and a
single recursive pass over lxml elements is faster than an XSLT round trip.
"""

from __future__ import annotations

import re
from html.entities import html5 as _HTML5_ENTITIES

from lxml import etree

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


def flatten(element: etree._Element | None, skip: frozenset[str] = _NO_SKIP) -> str:
    """The text of `element` (not its tail) with JATS spacing rules; "" for None."""
    if element is None:
        return ""
    if not len(element):  # a leaf (surname, kwd, label, ...): its own text is all there is
        return _tidy(collapse_whitespace(element.text or ""))
    parts: list[str] = []
    _collect(element, parts, _skip_set(skip))
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


def _collect(element: etree._Element, parts: list[str], skip: frozenset[str]) -> None:
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
                        _collect(child, parts, skip)
                    elif child.text:
                        append(child.text)
                elif action == _BLOCK:
                    append(" ")
                    _collect(child, parts, skip)
                    append(" ")
                elif action == _FORMULA:
                    append(" " + formula_text(child) + " " if tag == "disp-formula" else formula_text(child))
                elif action == _MATH:
                    append(mathml_text(child))
                elif action == _TEX:
                    append(tex_text(child.text or ""))
                else:
                    append(_alternatives_text(child, skip))
        elif tag is etree.Entity:
            append(_entity_text(child))
        if child.tail:
            append(child.tail)


def _alternatives_text(alternatives: etree._Element, skip: frozenset[str]) -> str:
    """One rendering of an <alternatives>: TeX, then MathML, then the first textual child."""
    by_tag = {}
    for child in alternatives:
        if isinstance(child.tag, str) and local_name(child.tag) not in by_tag:
            by_tag[local_name(child.tag)] = child
    if "tex-math" in by_tag:
        return tex_text(by_tag["tex-math"].text or "")
    if "math" in by_tag:
        return mathml_text(by_tag["math"])
    for tag, child in by_tag.items():
        if tag not in skip and tag not in SKIP_TAGS and tag not in ("graphic", "media"):
            return flatten(child, skip)
    return ""


def formula_text(formula: etree._Element) -> str:
    """Text of an inline-formula / disp-formula: TeX, MathML or plain text, never the image."""
    for child in formula:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        tag = local_name(tag)
        if tag == "alternatives":
            text = _alternatives_text(child, _NO_SKIP)
            if text:
                return text
        elif tag == "tex-math":
            return tex_text(child.text or "")
        elif tag == "math":
            return mathml_text(child)
    # plain-text formula such as <inline-formula>x<sup>2</sup></inline-formula>
    return flatten(formula, frozenset({"label"}))


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

_MATH_TOKENS = frozenset({"mi", "mn", "mo", "mtext", "ms"})
_MATH_SILENT = frozenset(
    {"annotation", "annotation-xml", "mphantom", "none", "mprescripts", "malignmark", "maligngroup"}
)


def mathml_text(math: etree._Element) -> str:
    """Readable text of a MathML element: its @alttext when present, else a linearisation."""
    alttext = math.get("alttext")
    if alttext and alttext.strip():
        return collapse_whitespace(alttext)
    return collapse_whitespace(_mml(math))


def _join_tokens(pieces: list[str]) -> str:
    """Join math pieces; a space only where two words or numbers would otherwise merge."""
    out: list[str] = []
    previous = ""
    for piece in pieces:
        if not piece:
            continue
        if previous and previous[-1].isalnum() and piece[0].isalnum():
            out.append(" ")
        out.append(piece)
        previous = piece
    return "".join(out)


def _script(text: str) -> str:
    return text if len(text) <= 1 else "{" + text + "}"


def _scripted(base: str, marker: str, script: str) -> str:
    """`x_i`, `x^{10}`; an empty script (a lone thin space in the source) adds nothing."""
    return f"{base}{marker}{_script(script)}" if script else base


_INVISIBLE_OPERATORS = frozenset("\u2061\u2062\u2063\u2064\u200b")
_MATH_ROWS = frozenset({"mrow", "math", "mstyle", "mpadded", "menclose", "merror", "mtd", "maction"})


_local_names: dict[str, str] = {}  # "{MathML}mi" -> "mi": a handful of distinct tags


def _mml_local_name(tag: str) -> str:
    name = _local_names.get(tag)
    if name is None:
        name = local_name(tag)
        if len(_local_names) < 4096:
            _local_names[tag] = name
    return name


def _mml_token(element: etree._Element) -> str:
    text = "".join(element.itertext()) if len(element) else element.text
    if not text:
        return ""
    text = text.strip()
    return "" if text in _INVISIBLE_OPERATORS else text


def _mml(element: etree._Element) -> str:
    tag = element.tag
    if tag.__class__ is not str:
        return ""
    tag = _local_names.get(tag) or _mml_local_name(tag)
    if tag in _MATH_TOKENS:
        return _mml_token(element)
    if tag in _MATH_SILENT:
        return ""
    if tag == "mspace":
        return " "
    if tag == "semantics":
        first = next((child for child in element if child.tag.__class__ is str), None)
        return _mml(first) if first is not None else ""
    rendered = []
    append = rendered.append
    tokens = _MATH_TOKENS
    for kid in element:  # tokens (most of the tree) read here, without a recursive call
        kid_tag = kid.tag
        if kid_tag.__class__ is str and (_local_names.get(kid_tag) or _mml_local_name(kid_tag)) in tokens:
            append(_mml_token(kid))
        else:
            append(_mml(kid))
    if tag in _MATH_ROWS:
        return _join_tokens(rendered)
    n = len(rendered)
    if (tag == "msub" or tag == "munder") and n >= 2:
        return _scripted(rendered[0], "_", rendered[1])
    if tag == "msup" and n >= 2:
        return _scripted(rendered[0], "^", rendered[1])
    if (tag == "msubsup" or tag == "munderover") and n >= 3:
        return _scripted(_scripted(rendered[0], "_", rendered[1]), "^", rendered[2])
    if tag == "mover" and n >= 2:
        if element.get("accent") == "true" or len(rendered[1]) == 1 and not rendered[1].isalnum():
            return rendered[0] + rendered[1]  # x̄, x̂: the accent follows its base
        return _scripted(rendered[0], "^", rendered[1])
    if tag == "mfrac" and n >= 2:
        return f"({rendered[0]})/({rendered[1]})"
    if tag == "msqrt":
        return f"√({_join_tokens(rendered)})"
    if tag == "mroot" and n >= 2:
        return f"√[{rendered[1]}]({rendered[0]})"
    if tag == "mfenced":
        opening = element.get("open", "(")
        closing = element.get("close", ")")
        separator = (element.get("separators", ",") or ",")[0]
        return opening + separator.join(rendered) + closing
    if tag == "mtable":
        return "; ".join(r for r in rendered if r)
    if tag == "mtr" or tag == "mlabeledtr":
        return " ".join(r for r in rendered if r)
    return _join_tokens(rendered)


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
