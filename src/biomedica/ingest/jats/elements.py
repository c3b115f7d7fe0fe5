"""Child lookups on lxml elements without ElementPath: `child(el, "name")` is `el.find("name")`.

lxml's find/findtext/iterfind parse and run an ElementPath for every call (several µs,
more than reading the element itself); JATS elements have few children, so a plain loop
over them is several times faster. Each helper gives exactly what its ElementPath
counterpart gives for a single tag name (plain or `{namespace}tag`).
"""

from __future__ import annotations

from lxml import etree


def child(element: etree._Element | None, tag: str) -> etree._Element | None:
    """The first child named `tag` (`element.find(tag)`); None when there is none or element is None."""
    if element is not None:
        for candidate in element:
            if candidate.tag == tag:
                return candidate
    return None


def children(element: etree._Element, tag: str) -> list[etree._Element]:
    """The children named `tag`, in order (`element.findall(tag)`)."""
    return [candidate for candidate in element if candidate.tag == tag]


def child_text(element: etree._Element, tag: str) -> str | None:
    """The text of the first child named `tag` ("" if it has none), None without one (`element.findtext(tag)`)."""
    for candidate in element:
        if candidate.tag == tag:
            return candidate.text or ""
    return None
