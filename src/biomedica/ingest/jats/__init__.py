"""JATS parser: one XML file's bytes to article records, figure records and errors.

`parse_articles(data, source)` is the whole public surface the ingest pipeline uses. It
parses the file once (XXE-safe, no DTD or network access), finds the articles in any
supported wrapper (bare `<article>`, efetch `<pmc-articleset>`, OAI-PMH GetRecord, a Europe PMC
bulk `<articles>` file: read whole here, streamed article by article by `jats.bulk`), and
returns one `ParsedArticle` per article plus `ErrorRecord`s for what could not be read.
It never raises on bad input: a broken file or article becomes an error row instead.
Image fields of the figure records (image_name, width, sha256, ...) are left for the
pipeline, which resolves `graphic_href` to a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from biomedica.ingest.jats.figures import read_figures
from biomedica.ingest.jats.metadata import read_article
from biomedica.ingest.jats.text import ArticleText
from biomedica.ingest.jats.xmlload import XMLLoadError, parse_xml, unwrap_articles
from biomedica.io.redact import reason
from biomedica.records import ArticleRecord, ErrorRecord, FigureRecord

STAGE = "ingest"

__all__ = ["ParseResult", "ParsedArticle", "parse_article", "parse_articles", "parse_one"]


@dataclass
class ParsedArticle:
    """One article: its ArticleRecord and one FigureRecord per figure graphic, in document order."""

    article: ArticleRecord
    figures: list[FigureRecord]


@dataclass
class ParseResult:
    """Everything one file gave: 0..n articles and the errors met on the way."""

    articles: list[ParsedArticle] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)


def parse_article(article: etree._Element, source: str, wrapper: str | None = None, index: int = 0) -> ParsedArticle:
    """Parse one namespace-free `<article>` element (see xmlload.parse_xml); may raise on odd XML."""
    article_text = ArticleText(article)  # paragraphs flattened once, for body text and mentions
    record, license_ = read_article(article, source, wrapper, index, article_text)
    figures, n_figures = read_figures(article, record, license_, article_text)
    record.n_figures = n_figures
    record.n_graphics = len(figures)
    return ParsedArticle(article=record, figures=figures)


def parse_articles(data: bytes, source: str) -> ParseResult:
    """Parse a JATS file's bytes; bad input gives ErrorRecords (stage "ingest"), never an exception."""
    result = ParseResult()
    try:
        root = parse_xml(data, source)
    except XMLLoadError as exc:
        result.errors.append(ErrorRecord(id=source, stage=STAGE, kind=exc.kind, message=str(exc), source=source))
        return result
    unwrapped = unwrap_articles(root, source)
    for kind, message, error_id in unwrapped.errors:
        result.errors.append(
            ErrorRecord(id=f"PMC{error_id}" if error_id and error_id.isdigit() else (error_id or source),
                        stage=STAGE, kind=kind, message=message, source=source)
        )  # fmt: skip
    for index, article in enumerate(unwrapped.articles):
        parse_one(article, source, unwrapped.wrapper, index, result)
    return result


def parse_one(article: etree._Element, source: str, wrapper: str | None, index: int, result: ParseResult) -> None:
    """Parse one article into `result`; an exception becomes one parse-error row (policy: never stop the file)."""
    try:
        result.articles.append(parse_article(article, source, wrapper, index))
    except Exception as exc:  # noqa: BLE001 - policy: one bad article never stops the file
        result.errors.append(
            ErrorRecord(
                id=f"{source}#{index}",
                stage=STAGE,
                kind="parse-error",
                message=(
                    f"{source}: article {index} could not be parsed ({reason(exc)}); "
                    "the XML is unusual JATS - please report it with this file attached."
                ),
                source=source,
            )
        )
