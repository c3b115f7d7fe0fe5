"""Source `dir`: a folder of JATS XML files and images in any layout.

Images are looked up next to the XML first (the PMC package layout), then by file stem in
the folders the article may use, nearest folder first (see `DirectorySource._find`), so
`xml/` + `images/` splits work too while one package never borrows another's figure.
Every file is read through `read_regular_file`: regular files inside the folder, size-capped.

Europe PMC bulk files (`PMC<first>_PMC<last>.xml[.gz]`: many `<article>` in one `<articles>`
root, see ingest.jats.bulk) are streamed: each article is its own item, `<file>#<index>`
(zero-padded, so the sorted listing keeps file order), so work units are cut by article and
one large file never becomes one huge unit. An article item's signature is the hash of its own
bytes: a refreshed file re-ingests the articles that changed (and those after an inserted or
removed one), not the whole file. The root is checked for files named `.xml.gz` / `.nxml.gz`,
files named like Europe PMC's, and files over --max-xml-bytes; a small `<articles>` file under
another name is read whole (the same records, one item). A `.xml.gz` holding one article is
decompressed (at most --max-xml-bytes) and read like any XML file.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import threading
import zlib
from collections import defaultdict
from functools import cached_property, lru_cache, partial
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from biomedica.ingest.jats.bulk import BulkArticle, BulkSplitter, parse_bulk_article
from biomedica.ingest.sources import SourceItem
from biomedica.ingest.sources.safe_read import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_XML_BYTES,
    InputRefused,
    open_regular_file,
    read_regular_file,
    too_large,
)

XML_SUFFIXES = (".xml", ".nxml")
GZ_XML_SUFFIXES = (".xml.gz", ".nxml.gz")
_BULK_NAME = re.compile(r"PMC\d+_PMC\d+\.xml(?:\.gz)?", re.IGNORECASE)  # Europe PMC's file names
_BULK_ITEM = re.compile(r"(.+\.n?xml(?:\.gz)?)#(\d+)", re.IGNORECASE)  # one article of a bulk file
_CURSOR = threading.local()  # per thread: the bulk file being read, positioned after its last article
# extensions a graphic href may omit; used only to group files by stem for the wider search
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".tif", ".tiff", ".bmp", ".webp", ".jp2", ".eps", ".svg"}
)


def media_stem(name: str) -> str:
    """Lower-cased basename without a trailing *image* extension (dotted stems stay whole)."""
    base = PurePosixPath(name).name.lower()
    root, ext = os.path.splitext(base)
    return root if ext in IMAGE_SUFFIXES else base


class DirectorySource:
    """Reads every `.xml` / `.nxml` under `root`; everything else is a candidate media file."""

    def __init__(
        self,
        root: Path | str,
        max_xml_bytes: int = DEFAULT_MAX_XML_BYTES,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    ):
        self.root = Path(root).resolve()
        self.max_xml_bytes = max_xml_bytes
        self.max_image_bytes = max_image_bytes
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"input folder {self.root} does not exist or is not a folder: pass the folder that holds "
                "the JATS XML files (and their images)"
            )
        self._xml: list[str] = []
        self._by_dir: dict[str, list[str]] = defaultdict(list)
        self._by_stem: dict[str, list[str]] = defaultdict(list)
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            rel_dir = "" if rel_dir == "." else rel_dir
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if name.lower().endswith(XML_SUFFIXES + GZ_XML_SUFFIXES):
                    self._xml.append(rel)
                else:
                    self._by_dir[rel_dir].append(rel)
                    self._by_stem[media_stem(name)].append(rel)
        self._xml.sort()
        self._bulk: dict[str, list[str]] = {}  # bulk file -> signature of each article slot

    def __getstate__(self) -> dict:
        # workers open items by id; the listing (one signature per bulk article) stays here
        state = dict(self.__dict__)
        state.pop("_items", None)
        state["_bulk"] = {}
        return state

    def list_items(self) -> list[str]:
        return list(self._items)

    @cached_property
    def _items(self) -> list[str]:
        """Every XML file, and every article slot of each bulk file (`<file>#<index>`), sorted."""
        items = []
        for rel in self._xml:
            slots = self._scan_bulk(rel) if self._may_be_bulk(rel) else None
            if slots is None:
                items.append(rel)
                continue
            self._bulk[rel] = slots
            width = max(6, len(str(len(slots) - 1)))
            items.extend(f"{rel}#{index:0{width}d}" for index in range(len(slots)))
        return sorted(items)

    def _may_be_bulk(self, rel: str) -> bool:
        if rel.lower().endswith(".gz") or _BULK_NAME.fullmatch(PurePosixPath(rel).name):
            return True
        try:
            return os.stat(self.root / rel).st_size > self.max_xml_bytes
        except OSError:
            return False

    def _open_stream(self, rel: str) -> BinaryIO:
        """The file's bytes as a stream, decompressed when it is gzipped (safe_read's checks first)."""
        raw = open_regular_file(self.root / rel, self.root)
        return _GzipStream(fileobj=raw, mode="rb") if rel.lower().endswith(".gz") else raw

    def _scan_bulk(self, rel: str) -> list[str] | None:
        """The signature of each article slot of a bulk file, streamed; None when it is not one."""
        try:
            stream = self._open_stream(rel)
            info = os.stat(self.root / rel)
        except OSError:
            return None  # open_item reports it
        stamp = f"{info.st_size}:{info.st_mtime_ns}"
        with stream:
            splitter = BulkSplitter(stream, str(self.root / rel), self.max_xml_bytes, documents=False)
            if splitter.head is None:
                return None
            slots = [a.digest or f"{a.error[0] if a.error else 'error'}:{stamp}" for a in splitter]
        return slots or [f"no-article:{stamp}"]  # one slot says the file holds no article

    def signatures(self, item_ids: list[str]) -> dict[str, str]:
        """`sha256:<hex>:<size>` of each XML file's bytes (images are not signed), or of a bulk article's bytes."""
        found = {}
        bulk = self._bulk if self._items is not None else {}  # listing scans the bulk files once
        for item_id in item_ids:
            article = _BULK_ITEM.fullmatch(item_id)
            if article is not None:
                slots = bulk.get(article[1]) or []
                index = int(article[2])
                found[item_id] = slots[index] if index < len(slots) else "unreadable"
                continue
            try:  # the same checks as open_item: a FIFO named *.xml must not hang the listing
                data = read_regular_file(self.root / item_id, self.root, self.max_xml_bytes, "xml")
            except InputRefused as exc:
                found[item_id] = f"refused:{exc.kind}"
                continue
            except OSError:
                found[item_id] = "unreadable"
                continue
            found[item_id] = f"sha256:{hashlib.sha256(data).hexdigest()}:{len(data)}"
        return found

    def describe(self) -> dict:
        described = {"kind": "dir", "location": str(self.root), "documents": len(self._xml)}
        if self._bulk:
            described |= {"bulk_files": len(self._bulk), "bulk_articles": sum(map(len, self._bulk.values()))}
        return described

    def open_item(self, item_id: str) -> SourceItem:
        bulk = _BULK_ITEM.fullmatch(item_id)
        rel = bulk[1] if bulk is not None else item_id
        path = self.root / rel
        xml_dir = _parent(rel)
        parse = None
        if bulk is not None:
            article = self._bulk_article(rel, int(bulk[2]))
            xml = article.document or b""
            parse = partial(parse_bulk_article, article, str(path))
        elif rel.lower().endswith(".gz"):
            xml = self._read_gzip(rel)
        else:
            xml = read_regular_file(path, self.root, self.max_xml_bytes, "xml")
        return SourceItem(
            item_id=item_id,
            xml=xml,
            location=str(path),
            media_names=list(self._by_dir.get(xml_dir, ())),
            read_media=self._read,
            find_media=lambda href: self._find(href, xml_dir),
            parse=parse,
        )

    def _read_gzip(self, rel: str) -> bytes:
        """A gzipped single-article file, decompressed: at most max_xml_bytes."""
        path = self.root / rel
        try:
            with self._open_stream(rel) as stream:
                data = stream.read(self.max_xml_bytes + 1)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise OSError(f"the gzip data of {path} is truncated or damaged ({exc}); re-download it") from exc
        if len(data) > self.max_xml_bytes:
            raise too_large(f"{path} (decompressed)", len(data), self.max_xml_bytes, "xml")
        return data

    def _bulk_article(self, rel: str, index: int) -> BulkArticle:
        """Article `index` of a bulk file; reading goes on from this thread's last position when it can."""
        path = self.root / rel
        info = os.stat(path)
        key = (str(self.root), rel, self.max_xml_bytes, info.st_ino, info.st_size, info.st_mtime_ns)
        cursor: _BulkCursor | None = getattr(_CURSOR, "value", None)
        if cursor is None or cursor.key != key or cursor.next_index > index:
            if cursor is not None:
                cursor.close()
            _CURSOR.value = None
            cursor = _BulkCursor(key, self._open_stream(rel), str(path), self.max_xml_bytes)
            _CURSOR.value = cursor
        article = cursor.seek(index)
        if article is not None:
            return article
        cursor.close()
        _CURSOR.value = None
        if index == 0 and cursor.is_bulk:
            return BulkArticle(0, None, None, (
                "no-article",
                f"{path}: the Europe PMC bulk file's <articles> holds no <article>; re-download it from Europe PMC",
            ))  # fmt: skip
        raise OSError(
            f"{path} no longer holds article {index}: the file changed since it was listed; run ingest again"
        )

    def _read(self, name: str) -> bytes:
        return read_regular_file(self.root / name, self.root, self.max_image_bytes, "image")

    @cached_property
    def _xml_dirs(self) -> frozenset[str]:
        """Folders that directly hold an XML document: each one is an article package's own folder."""
        return frozenset(_parent(rel) for rel in self._xml)

    def _owner(self, folder: str) -> str | None:
        """The nearest folder at or above `folder` that directly holds XML: whose media these are."""
        while True:
            if folder in self._xml_dirs:
                return folder
            if not folder:
                return None
            folder = _parent(folder)

    def _find(self, href: str, xml_dir: str) -> list[str]:
        """Files whose stem matches the href, from the nearest folder the document in `xml_dir` may use.

        A media file belongs to the nearest folder above it (its own included) that directly
        holds an XML file. The document may use its own folder's media (that folder and its
        XML-free subfolders) and media that belong to no folder (no XML above them: a bulk
        `xml/` + `images/` split), never the media of another article's folder: a figure
        whose file is missing is reported missing, not paired with another article's `fig1`.
        """
        matches = [
            rel for rel in self._by_stem.get(media_stem(href), ()) if self._owner(_parent(rel)) in (xml_dir, None)
        ]
        if not matches:
            return []
        by_folder: dict[str, list[str]] = defaultdict(list)
        for rel in matches:
            by_folder[PurePosixPath(rel).parent.as_posix()].append(rel)
        nearest = max(by_folder, key=lambda folder: (_common_depth(folder, xml_dir), -len(folder), folder))
        return by_folder[nearest]


class _GzipStream(gzip.GzipFile):
    """A GzipFile that closes the file it reads from (GzipFile leaves a passed file object open)."""

    def close(self) -> None:
        raw = self.fileobj
        try:
            super().close()
        finally:
            if raw is not None:
                raw.close()


class _BulkCursor:
    """One open bulk file of one thread, read forward article by article (a unit's items are in file order)."""

    def __init__(self, key: tuple, stream: BinaryIO, source: str, max_article_bytes: int):
        self.key = key
        self.stream = stream
        try:
            self.splitter = BulkSplitter(stream, source, max_article_bytes)
        except BaseException:
            stream.close()
            raise
        self.is_bulk = self.splitter.head is not None
        self.articles = iter(self.splitter)
        self.next_index = 0

    def seek(self, index: int) -> BulkArticle | None:
        """The slot `index` (the cursor must not be past it); None when the file ends first."""
        while True:
            self.splitter.documents = self.next_index == index  # skipped articles are not copied out
            article = next(self.articles, None)
            if article is None:
                return None
            self.next_index = article.index + 1
            if article.index == index:
                return article

    def close(self) -> None:
        self.stream.close()


def _parent(rel: str) -> str:
    """The folder of a relative path, "" for the root."""
    parent = PurePosixPath(rel).parent.as_posix()
    return "" if parent == "." else parent


@lru_cache(maxsize=4096)
def _common_depth(a: str, b: str) -> int:
    depth = 0
    for x, y in zip(PurePosixPath(a).parts, PurePosixPath(b).parts):
        if x != y:
            break
        depth += 1
    return depth
