"""Ingest sources: where article XML and figure media come from.

A source lists its articles as a sorted, deterministic sequence of item ids (so work units
are a pure function of the input), signs each item (so a later build knows what changed), and opens one item as XML bytes plus a lookup of the
media files that belong with it. Readers for PMC Cloud (S3) and legacy packages plug in
behind the same two methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class SourceItem:
    """One input document (a file that holds 0..n articles) and its media."""

    item_id: str  # stable, sortable id of the document (e.g. its relative path)
    xml: bytes
    location: str  # human-readable place, used in error messages
    media_names: list[str]  # names of candidate media files near the document, nearest first
    read_media: Callable[[str], bytes]  # bytes of one of media_names (raises OSError if unreadable)
    find_media: Callable[[list[str]], list[str]] | None = None  # wider search by candidate basenames
    # the item's own parse (one article of a Europe PMC bulk file: jats.bulk); None: parse_articles(xml)
    parse: Callable[[], Any] | None = None


class ArticleSource(Protocol):
    def list_items(self) -> list[str]:
        """All item ids, sorted. Deterministic for the same input."""

    def open_item(self, item_id: str) -> SourceItem:
        """Read one item. Raises OSError when the document itself cannot be read."""

    def signatures(self, item_ids: list[str]) -> dict[str, str]:
        """What the source knows of each item's content, cheaply (a hash, an etag, size and date).

        A later build compares them with the archive's build records: an equal signature is an
        unchanged document, another one a changed document (re-ingested, its old samples superseded).
        Every listed item gets a non-empty signature; one that cannot be read gets a fixed marker
        ("unreadable"), so it counts as changed once it can be read.
        """

    def describe(self) -> dict:
        """What this source is, for manifest.json (kind, location, snapshot)."""
