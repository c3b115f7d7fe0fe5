"""One work unit, end to end: parse each document, attach figure images, write the unit.

`run_unit(unit, context)` is the unit function that every executor (biomedica.exec) runs; it
depends only on the unit's items, so the same unit gives the same output whoever runs it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from biomedica.archive.unit_writer import UnitStats, UnitWriter
from biomedica.exec import stop_if_orphaned
from biomedica.images import ImageConfig, ImageError, StoredImage, prepare_image
from biomedica.ingest.jats import ParsedArticle, parse_articles
from biomedica.ingest.resolve_images import resolve_graphic
from biomedica.ingest.sources import ArticleSource, SourceItem
from biomedica.ingest.sources.safe_read import InputRefused
from biomedica.io.lock import LockToken
from biomedica.io.redact import reason
from biomedica.net.errors import ChecksumMismatch, ContentError, TransientError
from biomedica.records import ErrorRecord, FigureRecord

# Error kinds of objects a network source could not fetch intact after its retries: the job
# was partly not done (the CLI exits non-zero), unlike a document that is itself unusable.
FETCH_FAILED_KINDS = frozenset({"source-fetch-failed", "image-fetch-failed", "metadata-unreadable"})


def _gave_up(exc: BaseException) -> bool:
    """A network read that failed on every attempt (damaged or no answer), not a missing or refused object."""
    return isinstance(exc, (TransientError, ChecksumMismatch, ContentError))


@dataclass(frozen=True)
class WorkUnit:
    """A fixed slice of the sorted item list: unit `unit_id` holds items [start, start+len)."""

    unit_id: int
    item_ids: tuple[str, ...]


def plan_units(item_ids: list[str], items_per_unit: int, first_unit_id: int = 0) -> list[WorkUnit]:
    """Cut the sorted item list into units; boundaries depend on the input only, not on workers."""
    return [
        WorkUnit(unit_id=first_unit_id + i // items_per_unit, item_ids=tuple(item_ids[i : i + items_per_unit]))
        for i in range(0, len(item_ids), items_per_unit)
    ]


def _error(id_: str, kind: str, message: str, source: str | None) -> ErrorRecord:
    return ErrorRecord(id=id_, stage="ingest", kind=kind, message=message, source=source)


def attach_image(
    figure: FigureRecord, item: SourceItem, config: ImageConfig
) -> tuple[StoredImage | None, ErrorRecord | None]:
    """Find, read and prepare the image of one figure graphic; fill the record's image fields."""
    href = figure.graphic_href
    if not href:
        return None, _error(
            figure.key,
            "image-no-href",
            f"{item.location}: figure {figure.fig_id or figure.fig_label or '?'} has a <graphic> without "
            "xlink:href, so no image can be attached; the figure is left out",
            item.location,
        )
    name = resolve_graphic(href, item.media_names)
    if name is None and item.find_media is not None:
        name = resolve_graphic(href, item.find_media(href))
    if name is None:
        return None, _error(
            figure.key,
            "image-missing",
            f"{item.location}: graphic '{href}' of figure {figure.fig_id or figure.fig_label or '?'} has no "
            "image file (looked for the exact name, then the name with image extensions, beside the XML, then "
            "in its subfolders and image folders outside any other article's folder); add the image file or "
            "fetch the complete article package",
            item.location,
        )
    try:
        data = item.read_media(name)
        stored = prepare_image(data, name, config)
    except ImageError as exc:
        return None, _error(figure.key, exc.kind, f"{item.location}: image '{name}': {exc}", name)
    except InputRefused as exc:  # a FIFO, a device, a symlink out of the input, an oversized file
        return None, _error(figure.key, exc.kind, f"{item.location}: image '{name}': {exc}", name)
    except OSError as exc:
        if _gave_up(exc):  # a network read that failed on every attempt: its message says why and what to do
            return None, _error(figure.key, "image-fetch-failed", f"{item.location}: cannot read image '{name}': {exc}", name)
        return None, _error(
            figure.key, "image-unreadable", f"{item.location}: cannot read image '{name}': {_os_reason(exc)}", name
        )
    figure.image_name = name.rsplit("/", 1)[-1]
    figure.image_format = stored.format
    figure.width = stored.width
    figure.height = stored.height
    figure.sha256 = stored.sha256
    figure.phash = stored.phash
    return stored, None


def process_item(item: SourceItem, writer: UnitWriter, config: ImageConfig, seen_ids: set[str]) -> "ItemStats":
    """Parse one document and write its articles, samples and errors to the unit."""
    stats = ItemStats()
    result = item.parse() if item.parse is not None else parse_articles(item.xml, item.location)
    for error in result.errors:
        writer.add_error(error)
        stats.errors += 1
    for parsed in result.articles:
        _write_article(parsed, item, writer, config, seen_ids, stats)
    return stats


def _write_article(
    parsed: ParsedArticle,
    item: SourceItem,
    writer: UnitWriter,
    config: ImageConfig,
    seen_ids: set[str],
    stats: "ItemStats",
) -> None:
    article = parsed.article
    if article.article_id in seen_ids:
        writer.add_error(
            _error(
                article.article_id,
                "duplicate-article",
                f"{item.location}: article {article.article_id} was already read from another file of this "
                "unit; this copy is skipped (keep one file per article version)",
                item.location,
            )
        )
        stats.errors += 1
        return
    seen_ids.add(article.article_id)
    writer.add_article(article)
    stats.articles += 1
    for figure in parsed.figures:
        stored, error = attach_image(figure, item, config)
        if error is not None:
            writer.add_error(error)
            stats.errors += 1
            continue
        writer.add_sample(figure, stored.data, stored.format)
        stats.samples += 1


def _os_reason(exc: OSError) -> str:
    """An OSError's reason without its file name (the message names the file already)."""
    return exc.strerror or str(exc)


def _code_place(exc: BaseException) -> str:
    """Where in biomedica the exception came from (`jats/metadata.py:123`), for the bug report."""
    place = "unknown place"
    tb = exc.__traceback__
    while tb is not None:
        path = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if "/biomedica/" in path:
            place = f"{path.rsplit('/biomedica/', 1)[1]}:{tb.tb_lineno}"
        tb = tb.tb_next
    return place


@dataclass
class ItemStats:
    articles: int = 0
    samples: int = 0
    errors: int = 0


@dataclass(frozen=True)
class UnitContext:
    """What every unit of one run shares; the executor sends it once per worker process.

    `owner` is the token of the run's archive lock: a unit publishes only while the run
    that holds that lock still owns the archive (see UnitWriter).
    """

    source: ArticleSource
    root: Path
    images: ImageConfig
    owner: LockToken | None = None

    @property
    def requests_per_second(self) -> float | None:
        """The source's request rate when it can take a shared limiter (the ray executor's opt-in)."""
        if not hasattr(self.source, "with_rate_limiter"):
            return None
        return getattr(self.source, "requests_per_second", None)

    @property
    def request_burst(self) -> float | None:
        return getattr(self.source, "request_burst", None)

    def with_rate_limiter(self, limiter: object) -> "UnitContext":
        return replace(self, source=self.source.with_rate_limiter(limiter))  # type: ignore[attr-defined]


def _write_item(item_id: str, source: ArticleSource, writer: UnitWriter, config: ImageConfig, seen_ids: set[str]) -> None:
    """Read one document and write it to the unit; whatever goes wrong becomes error rows."""
    try:
        item = source.open_item(item_id)
    except InputRefused as exc:  # not a regular file, a symlink out of the input, too large
        writer.add_error(_error(item_id, exc.kind, str(exc), item_id))
        return
    except OSError as exc:
        # a source may name the kind (pmc-cloud: metadata-unreadable); a network read that
        # gave up says why and what to do in its own message
        kind = getattr(exc, "error_kind", None) or ("source-fetch-failed" if _gave_up(exc) else None)
        said = exc if kind else f"{_os_reason(exc)}; check the file"
        writer.add_error(_error(item_id, kind or "source-unreadable", f"cannot read {item_id}: {said}", item_id))
        return
    try:
        process_item(item, writer, config, seen_ids)
    except Exception as exc:  # a bug on one document must not stop the unit
        writer.add_error(
            _error(
                item_id,
                "internal-error",
                f"{item.location}: unexpected {reason(exc)} ({_code_place(exc)}); please report this file",
                item.location,
            )
        )


def run_unit(unit: WorkUnit, context: UnitContext) -> UnitStats:
    """Write one unit from scratch (UnitWriter removes the partial output of a dead run first)."""
    started = time.perf_counter()
    source, root, config = context.source, context.root, context.images
    writer = UnitWriter(root, unit.unit_id, owner=context.owner)
    seen_ids: set[str] = set()
    unfetched: list[str] = []  # items with an object not fetched intact: the next run tries them again
    try:
        for item_id in unit.item_ids:
            stop_if_orphaned()  # a pool worker whose run died stops here (where the kernel did not kill it)
            errors_before = len(writer.error_kinds())
            _write_item(item_id, source, writer, config, seen_ids)
            if FETCH_FAILED_KINDS.intersection(writer.error_kinds(errors_before)):
                unfetched.append(item_id)
        extra = {"items": len(unit.item_ids), "seconds": round(time.perf_counter() - started, 3)}
        if unfetched:
            extra["unfetched"] = unfetched
        return writer.commit(extra)
    except BaseException:
        writer.abort()
        raise
