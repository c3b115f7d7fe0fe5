"""Figure records from a JATS `<article>`: one per figure graphic, with caption and mentions.

A graphic counts when its nearest figure-like ancestor is a `<fig>` (so inline graphics,
formula and chem-struct images, table images and supplementary files never become
samples); inside `<alternatives>` the first non-thumbnail graphic is the image. Figures
anywhere count: body, floats-group, boxed-text, app, sub-article, abstract. Mentions are
the paragraphs (outside captions) whose `xref` points at the figure, found in one pass
over the article's xrefs with an id map built once. A caption with formulas also gets
`caption_tex`: the same text with every formula as `$TeX$` (the caption itself reads them
as text, see jats/mathml.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from biomedica.archive.keys import figure_key
from biomedica.ingest.jats.elements import child
from biomedica.ingest.jats.metadata import read_copyright, read_license
from biomedica.ingest.jats.text import ArticleText, flatten
from biomedica.ingest.jats.xmlload import MATHML_NS, XLINK_HREF
from biomedica.licenses import License, stricter
from biomedica.records import ArticleRecord, FigureRecord

# the nearest of these above a graphic decides whether it is a figure image
_FIGURE_LIKE = frozenset(
    {
        "fig", "fig-group", "table-wrap", "table-wrap-group", "disp-formula", "inline-formula", "chem-struct",
        "chem-struct-wrap", "supplementary-material", "media", "boxed-text", "abstract", "app", "sub-article",
        "article", "response", "glossary", "disp-quote", "statement", "def-list", "list", "fn",
    }
)  # fmt: skip
_THUMB_TYPES = frozenset({"thumb", "thumbnail"})
_MENTION_STOP = frozenset({"body", "back", "front", "article", "sub-article", "response", "floats-group"})
_TERMINAL_PUNCTUATION = tuple(".!?:;…")
_FIGURE_XREF_TYPES = frozenset({None, "fig", "figure"})  # an xref without ref-type may point at a fig
_IDS_IN = etree.XPath("descendant-or-self::*[@id]")
_MATH_TAGS = ("tex-math", f"{{{MATHML_NS}}}math", "math")


@dataclass
class FigureInfo:
    """What one `<fig>` contributes to each of its graphics' records."""

    fig_id: str | None
    label: str | None
    fig_type: str | None
    caption_title: str | None
    caption: str
    caption_tex: str | None  # the caption with formulas as $TeX$; None without formulas
    license: License | None  # the figure's own permissions, when present
    license_text: str | None
    mentions: list[str] = field(default_factory=list)


def _is_thumb(graphic: etree._Element) -> bool:
    return (graphic.get("content-type") or graphic.get("specific-use") or "").lower() in _THUMB_TYPES


def figure_graphics(
    article: etree._Element, article_text: ArticleText | None = None
) -> list[tuple[etree._Element, etree._Element]]:
    """(fig, graphic) pairs in document order: the graphics that become samples."""
    pairs = []
    for graphic in article_text.found("graphic") if article_text is not None else article.iter("graphic"):
        parent = graphic.getparent()
        if parent is not None and parent.tag == "alternatives":
            chosen = next((g for g in parent.iterchildren("graphic") if not _is_thumb(g)), None)
            if chosen is not graphic:
                continue  # a thumbnail, or a second rendering of the same image
        elif _is_thumb(graphic):
            continue
        ancestor = parent  # getparent() steps: iterancestors() costs more to set up than a whole walk
        while ancestor is not None:
            if ancestor.tag in _FIGURE_LIKE:
                if ancestor.tag == "fig":
                    pairs.append((ancestor, graphic))
                break
            ancestor = ancestor.getparent()
    return pairs


def caption_parts(fig: etree._Element, article_text: ArticleText | None = None) -> tuple[str | None, str]:
    """(title, full caption): title and paragraphs joined as a sentence; "" without a caption."""
    caption = child(fig, "caption")
    if caption is None:
        return None, ""
    title = flatten(child(caption, "title"))
    if article_text is not None and not (caption.text or "").strip():
        # the usual shape: <title/> and <p>s; each paragraph read by the cached fast path
        body = " ".join(
            text
            for child in caption
            if isinstance(child.tag, str) and child.tag != "title"
            for text in (article_text.prose(child),)
            if text
        )
    else:
        body = flatten(caption, frozenset({"title"}))
    if title and body:
        joiner = " " if title.endswith(_TERMINAL_PUNCTUATION) else ". "
        text = title + joiner + body
    else:
        text = title or body
    return title or None, text


def caption_tex(fig: etree._Element) -> str | None:
    """The caption as `caption_parts` reads it but with every formula as `$TeX$`; None when it has no formula."""
    caption = child(fig, "caption")
    if caption is None or next(caption.iter(*_MATH_TAGS), None) is None:
        return None
    title = flatten(child(caption, "title"), tex=True)
    body = flatten(caption, frozenset({"title"}), tex=True)
    if title and body:
        return title + (" " if title.endswith(_TERMINAL_PUNCTUATION) else ". ") + body
    return title or body or None


def _figure_permissions(fig: etree._Element) -> tuple[License | None, str | None]:
    """The fig's own license and what its permissions say (license code, else the copyright line)."""
    permissions = child(fig, "permissions")
    if permissions is None:
        return None, None
    license_ = read_license(permissions)
    described = (
        license_.code
        or license_.url
        or flatten(child(permissions, "license"))
        or read_copyright(permissions)
    )
    return license_, described


def _main_fig_of_group(group: etree._Element) -> etree._Element | None:
    figs = list(group.iterchildren("fig"))
    for fig in figs:
        if fig.get("specific-use") != "child-fig":
            return fig
    return figs[0] if figs else None


def _target_map(article_text: ArticleText) -> dict[str, etree._Element]:
    """Every id an xref may name, mapped to the fig it means (fig, fig-group, or inside a fig)."""
    targets: dict[str, etree._Element] = {}
    for fig in article_text.found("fig"):
        for element in _IDS_IN(fig):  # only the elements that carry an id, found in C
            element_id = element.get("id")
            if element_id and element_id not in targets:
                targets[element_id] = fig
    for group in article_text.found("fig-group"):
        main = _main_fig_of_group(group)
        if group.get("id") and main is not None:
            targets[group.get("id")] = main
    return targets


def collect_mentions(
    article: etree._Element, figs: set[etree._Element], article_text: ArticleText | None = None
) -> dict[etree._Element, list[str]]:
    """For each fig, the flattened paragraphs that cite it, deduplicated, in document order."""
    if article_text is None:
        article_text = ArticleText(article)
    targets = _target_map(article_text)
    mentions: dict[etree._Element, list[str]] = {}
    for xref in article_text.found("xref"):  # listed by ArticleText's scan: no XPath, no second scan
        if xref.get("ref-type") not in _FIGURE_XREF_TYPES:
            continue
        rids = (xref.get("rid") or "").split()
        cited = [targets[rid] for rid in rids if rid in targets and targets[rid] in figs]
        if not cited:
            continue
        paragraph = None
        ancestor = xref.getparent()
        while ancestor is not None:
            tag = ancestor.tag
            if tag == "caption" or tag == "fig":
                paragraph = None
                break
            if paragraph is None and tag == "p":
                paragraph = ancestor
            if tag in _MENTION_STOP:
                break
            ancestor = ancestor.getparent()
        if paragraph is None:
            continue
        text = article_text.prose(paragraph)
        if not text:
            continue
        for fig in cited:
            fig_mentions = mentions.setdefault(fig, [])
            if text not in fig_mentions:
                fig_mentions.append(text)
    return mentions


def _clean_label(label: str) -> str | None:
    label = label.rstrip(" .:")
    return label or None


def read_figures(
    article: etree._Element,
    record: ArticleRecord,
    article_license: License,
    article_text: ArticleText | None = None,
) -> tuple[list[FigureRecord], int]:
    """The figure records of an article (keys `<article_id>_<nnn>`) and its number of `<fig>`s."""
    if article_text is None:
        article_text = ArticleText(article)
    pairs = figure_graphics(article, article_text)
    n_figs = len(article_text.found("fig"))
    if not pairs:
        return [], n_figs
    figs_with_graphics = {fig for fig, _ in pairs}
    mentions = collect_mentions(article, figs_with_graphics, article_text)
    infos: dict[etree._Element, FigureInfo] = {}
    records: list[FigureRecord] = []
    for position, (fig, graphic) in enumerate(pairs):
        info = infos.get(fig)
        if info is None:
            title, caption = caption_parts(fig, article_text)
            tex = caption_tex(fig)
            label = _clean_label(flatten(child(fig, "label")))
            group = fig.getparent()
            if not caption and group is not None and group.tag == "fig-group":
                # panels of a fig-group that carries the caption (and often the label) itself
                title, caption = caption_parts(group, article_text)
                tex = caption_tex(group)
                label = label or _clean_label(flatten(child(group, "label")))
            fig_license, license_text = _figure_permissions(fig)
            info = infos[fig] = FigureInfo(
                fig_id=fig.get("id"),
                label=label,
                fig_type=fig.get("fig-type"),
                caption_title=title,
                caption=caption,
                caption_tex=tex,
                license=fig_license,
                license_text=license_text,
                mentions=mentions.get(fig, []),
            )
        license_group = stricter(article_license, info.license).group if info.license else article_license.group
        records.append(
            FigureRecord(
                key=figure_key(record.article_id, position),
                pmcid=record.pmcid,
                version=record.version,
                pmid=record.pmid,
                doi=record.doi,
                fig_id=info.fig_id,
                fig_label=info.label,
                fig_type=info.fig_type,
                caption_title=info.caption_title,
                caption=info.caption,
                mentions=list(info.mentions),
                graphic_href=graphic.get(XLINK_HREF),
                license=record.license,
                license_group=license_group,
                figure_license=info.license_text,
                article_title=record.title,
                journal=record.journal,
                pub_date=record.pub_date,
                year=record.year,
                article_type=record.article_type,
                keywords=list(record.keywords),
                subjects=list(record.subjects),
                caption_tex=info.caption_tex,
            )
        )
    return records, n_figs
