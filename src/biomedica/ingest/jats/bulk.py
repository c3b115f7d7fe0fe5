"""Europe PMC bulk files: many `<article>`s in one `<articles>` root, read one article at a time.

Europe PMC's open-access full text (https://europepmc.org/downloads/openaccess, files under
https://europepmc.org/ftp/oa/) comes as files named by PMCID range, e.g.
`PMC13900_PMC17829.xml.gz`: "processing chunks" whose PMCIDs all fall in the range (the range is
not continuous), refreshed weekly, so a file may change under the same name (Europe PMC
developer forum, 2025). One file holds thousands of articles, hundreds of MB decompressed:

    <articles>
    <article xmlns:xlink="..." xmlns:mml="..." article-type="case-report"><?properties open_access?>...
    </article>
    <article ...>...</article>
    </articles>

(no XML declaration, the PMCID without its "PMC" prefix: see the sample file of rOpenSci's
tidypmc, inst/extdata/PMC6358576_PMC6358589.xml, cut from the Europe PMC FTP.)

How it is read: `BulkSplitter` cuts the (decompressed) byte stream into articles. It finds the
top-level `<article ...>` start and `</article>` end tags, stepping over comments, CDATA and
processing instructions (the only places a raw `<article` can hide: in text and attribute values
`<` is always escaped). Each article is then parsed on its own by `parse_xml`, the same XXE-safe
parser as every other file, inside a copy of the file's XML declaration and root start tag (so
its encoding and namespace declarations hold). Memory is one article plus one read block,
whatever the file size.

Why a byte splitter and not lxml.iterparse over the whole file: libxml2 stops at the first
well-formedness error, so one malformed article would lose every article after it; cut first,
and each article fails alone. JATS nests no `<article>` inside an `<article>` (sub-articles are
`<sub-article>`), so an `<article` start tag inside an open article means the open one was
never closed: it is cut there and reported, and the next one is read normally.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from biomedica.ingest.jats import ParseResult, parse_one
from biomedica.ingest.jats.xmlload import XMLLoadError, parse_xml, unwrap_articles
from biomedica.io.redact import clip
from biomedica.records import ErrorRecord

BULK_WRAPPER = "europepmc-bulk"
BULK_ROOT = b"articles"
STAGE = "ingest"
_BLOCK = 1 << 20
_PROLOG_LIMIT = 1 << 20  # a root start tag later than this: not a bulk file
_PMCID_LOOKAHEAD = 1 << 16

# the end of a start tag: `>` outside quoted attribute values (one character per step: a nested `+`
# here backtracks exponentially when a read block ends inside the tag)
_TAG_END = re.compile(rb"""(?:[^>"']|"[^"]*"|'[^']*')*>""")
_NAME = re.compile(rb"<([^\s/>!?]+)")
_PMCID = re.compile(rb"""<article-id[^>]*?pub-id-type\s*=\s*["']pmc(?:id)?["'][^>]*>\s*(?:PMC)?(\d+)\s*<""")
_SKIPS = {b"<!--": b"-->", b"<![CDATA[": b"]]>", b"<?": b"?>"}


@dataclass
class BulkArticle:
    """One article slot of a bulk file: a standalone document holding it, or why it could not be cut out.

    `error` (kind, message) is set for an article never closed, one over the size limit, and
    for the slot where a truncated or damaged file breaks off (the articles before it are kept).
    """

    index: int
    document: bytes | None
    pmcid: str | None = None
    error: tuple[str, str] | None = None
    digest: str | None = None  # "sha256:<hex>:<size>" of declaration + root tag + article bytes


class BulkSplitter:
    """Cuts a bulk file's byte stream into its articles; `head` is None when the root is not `<articles>`.

    Read errors of the stream (a truncated or damaged gzip member, a failing disk) end the
    iteration with one error slot; nothing is raised after the head was read.
    """

    def __init__(self, stream: BinaryIO, source: str, max_article_bytes: int, documents: bool = True):
        self.stream = stream
        self._read = getattr(stream, "read1", stream.read)
        self.source = source
        self.max_article_bytes = max_article_bytes
        self.documents = documents
        self.buf = bytearray()
        self.pos = 0
        self.eof = False
        self.broken: str | None = None  # why the stream broke off
        self.declaration = b""
        self.root_tag = b""
        self.root_name = b""
        self.head = self._read_head()

    # -- reading ------------------------------------------------------------------------------

    def _more(self) -> bool:
        """Append about one block; False at the end of the stream (or when it broke off: `broken` says why).

        Reads with read1 (one decompression step at a time) until a block is gathered, so a
        truncated gzip member gives back everything before the break (read() loses the block
        it was filling when EOFError strikes).
        """
        if self.eof:
            return False
        got = 0
        while got < _BLOCK:
            try:
                block = self._read(_BLOCK - got)
            except (EOFError, zlib.error, OSError) as exc:  # gzip: EOFError (truncated), BadGzipFile (OSError)
                self.eof = True
                self.broken = clip(str(exc) or type(exc).__name__, 120)
                break
            if not block:
                self.eof = True
                break
            self.buf += block
            got += len(block)
        return got > 0

    def _find(self, needle: bytes, start: int) -> int:
        """Offset of `needle` at or after `start`, reading more as needed; -1 at the end of the stream."""
        while True:
            at = self.buf.find(needle, start)
            if at >= 0:
                return at
            start = max(start, len(self.buf) - len(needle) + 1)
            if not self._more():
                return -1

    def _tag_end(self, start: int) -> int:
        """Offset just past the `>` of the start tag whose name ends at `start`; -1 at the end of the stream."""
        while True:
            match = _TAG_END.match(self.buf, start)
            if match is not None:
                return match.end()
            if not self._more():
                return -1

    def _trim(self, keep_from: int) -> int:
        """Drop the buffer before `keep_from`; returns how far offsets moved."""
        if keep_from > 0:
            del self.buf[:keep_from]
            self.pos -= keep_from
        return keep_from

    # -- the prolog and the root --------------------------------------------------------------

    def _read_head(self) -> bytes | None:
        """Step over the prolog to the root start tag; its name when it is `<articles>`, else None."""
        self._more()
        pos = 3 if self.buf.startswith(b"\xef\xbb\xbf") else 0
        while pos < _PROLOG_LIMIT:
            while len(self.buf) < pos + 16 and self._more():
                pass
            if pos >= len(self.buf):
                return None
            if self.buf[pos] in b" \t\r\n":
                pos += 1
                continue
            if pos < 4 and self.buf.startswith(b"<?xml", pos) and self.buf[pos + 5 : pos + 6].isspace():
                end = self._find(b"?>", pos)
                if end < 0:
                    return None
                self.declaration = bytes(self.buf[pos : end + 2])
                pos = end + 2
                continue
            skip = next((s for s in _SKIPS if self.buf.startswith(s, pos)), None)
            if skip is not None:
                end = self._find(_SKIPS[skip], pos + len(skip))
                if end < 0:
                    return None
                pos = end + len(_SKIPS[skip])
                continue
            if self.buf.startswith(b"<!", pos):  # DOCTYPE, with or without an internal subset
                gt, bracket = self._find(b">", pos), self.buf.find(b"[", pos)
                if 0 <= bracket < gt:
                    close = self._find(b"]", bracket)
                    gt = self._find(b">", close) if close >= 0 else -1
                if gt < 0:
                    return None
                pos = gt + 1
                continue
            name = _NAME.match(self.buf, pos)
            if name is None:
                return None
            qname = name.group(1)
            if qname.rsplit(b":", 1)[-1] != BULK_ROOT:
                return None
            end = self._tag_end(name.end())
            if end < 0:
                return None
            self.root_name = bytes(qname)
            self.root_tag = bytes(self.buf[pos:end])
            self.pos = end
            return self.root_name
        return None

    # -- the articles -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[BulkArticle]:
        """Every article slot in file order; nothing when the root is not `<articles>`."""
        if self.head is None:
            return
        if self.root_tag.endswith(b"/>"):
            return
        token = re.compile(
            rb"<(?:!--|!\[CDATA\[|\?|!|(/?)(article|" + re.escape(self.root_name) + rb")(?=[\s/>]))"
        )
        margin = len(self.root_name) + 12  # the longest token prefix a block boundary may cut
        index = 0
        start: int | None = None  # offset of the open article's start tag (None: none open, or skipped)
        open_article = False
        skipped_pmcid: str | None = None  # the open article is over the limit: its bytes are dropped
        while True:
            match = token.search(self.buf, self.pos)
            if match is None:
                self.pos = max(self.pos, len(self.buf) - margin)
                if start is None:
                    self._trim(self.pos)
                else:
                    self._trim(start)
                    start = 0
                    if len(self.buf) > self.max_article_bytes:  # too large: drop its bytes, keep scanning
                        skipped_pmcid, start = self._pmcid(0), None
                        self._trim(self.pos)
                if not self._more():
                    break
                continue
            if match.start() > len(self.buf) - margin and self._more():
                continue  # a token this close to the end may be cut short (`<!` of a `<![CDATA[`): read on
            text = match.group(0)
            if match.group(2) is None:  # comment, CDATA, PI, other `<!`
                terminator = _SKIPS.get(text)
                if terminator is None:
                    self.pos = match.end()
                    continue
                end = self._find(terminator, match.end())
                if end < 0:
                    break
                self.pos = end + len(terminator)
                continue
            closing, name = match.group(1), match.group(2)
            if name != b"article":  # the root's own end tag
                if closing:
                    if open_article:
                        yield self._unclosed(index, start, skipped_pmcid)
                        index += 1
                    return
                self.pos = match.end()
                continue
            if closing:
                gt = self._find(b">", match.end())
                if gt < 0:
                    break
                self.pos = gt + 1
                if open_article:
                    if start is None:
                        yield self._too_large(index, skipped_pmcid)
                    else:
                        yield self._article(index, start, self.pos)
                    index += 1
                    open_article, start, skipped_pmcid = False, None, None
                continue
            at = match.start()
            end = self._tag_end(match.end())
            if end < 0:
                break
            if open_article:  # a new article inside an open one: the open one was never closed
                yield self._unclosed(index, start, skipped_pmcid)
                index += 1
            if self.buf[end - 2 : end] == b"/>":
                self.pos = end
                yield self._article(index, at, end)
                index += 1
                open_article, start, skipped_pmcid = False, None, None
                continue
            self.pos, start, open_article, skipped_pmcid = end, at, True, None
        yield self._broken_off(index, start, skipped_pmcid, open_article)

    def _pmcid(self, start: int | None) -> str | None:
        if start is None:
            return None
        found = _PMCID.search(self.buf, start, min(len(self.buf), start + _PMCID_LOOKAHEAD))
        return f"PMC{int(found.group(1))}" if found else None

    def _article(self, index: int, start: int, end: int) -> BulkArticle:
        size = end - start
        if size > self.max_article_bytes:
            return self._too_large(index, self._pmcid(start), size)
        body = bytes(self.buf[start:end])
        digest = hashlib.sha256(self.declaration)
        digest.update(self.root_tag)
        digest.update(body)
        signature = f"sha256:{digest.hexdigest()}:{size}"
        document = None
        if self.documents:
            document = self.declaration + self.root_tag + body + b"</" + self.root_name + b">"
        return BulkArticle(index, document, self._pmcid(start), digest=signature)

    def _where(self, index: int, pmcid: str | None) -> str:
        return f"{self.source}: article {index}" + (f" ({pmcid})" if pmcid else "")

    def _too_large(self, index: int, pmcid: str | None, size: int | None = None) -> BulkArticle:
        told = f"is {size:,} bytes, over" if size else "is over"
        return BulkArticle(index, None, pmcid, (
            "xml-too-large",
            (f"{self._where(index, pmcid)} {told} the limit of {self.max_article_bytes:,} bytes "
             "for one article, so it is skipped (the other articles of the file are ingested); raise --max-xml-bytes "
             "(IngestConfig.max_xml_bytes) if it is genuine"),
        ))  # fmt: skip

    def _unclosed(self, index: int, start: int | None, skipped_pmcid: str | None) -> BulkArticle:
        pmcid = self._pmcid(start) if start is not None else skipped_pmcid
        return BulkArticle(index, None, pmcid, (
            "xml-syntax",
            (f"{self._where(index, pmcid)} has no </article> end tag before the next article or the end of the file, "
             "so it is skipped (the other articles of the file are ingested); re-download the file from Europe PMC"),
        ))  # fmt: skip

    def _broken_off(self, index: int, start: int | None, skipped_pmcid: str | None, open_article: bool) -> BulkArticle:
        """The slot where the stream ended before `</articles>`: truncated, or damaged compressed data."""
        pmcid = (self._pmcid(start) if start is not None else skipped_pmcid) if open_article else None
        why = f"the compressed data is truncated or damaged ({self.broken})" if self.broken else "the file ends early"
        if open_article:
            where = f"in article {index}" + (f" ({pmcid})" if pmcid else "")
        else:
            where = f"after article {index - 1}" if index else "before its first article"
        return BulkArticle(index, None, pmcid, (
            "bulk-truncated",
            (f"{self.source}: {why}: it breaks off {where}, before its closing "
             f"</{self.root_name.decode(errors='replace')}>; the {index} article(s) before the break are ingested, "
             "re-download the file to get the rest"),
        ))  # fmt: skip


def parse_bulk_article(article: BulkArticle, source: str) -> ParseResult:
    """Records of one article slot of the bulk file `source` (errors, never an exception).

    The records equal those of the same article read from the whole file at once
    (`parse_articles`): same source, wrapper "europepmc-bulk" and index in the file.
    """
    result = ParseResult()
    fallback_id = article.pmcid or f"{source}#{article.index}"
    if article.error is not None:
        kind, message = article.error
        result.errors.append(ErrorRecord(id=fallback_id, stage=STAGE, kind=kind, message=message, source=source))
        return result
    where = f"{source}: article {article.index}" + (f" ({article.pmcid})" if article.pmcid else "")
    try:
        root = parse_xml(article.document or b"", where)
    except XMLLoadError as exc:
        message = f"{exc} (only this article is skipped; the other articles of the file are ingested)"
        result.errors.append(ErrorRecord(id=fallback_id, stage=STAGE, kind=exc.kind, message=message, source=source))
        return result
    for element in unwrap_articles(root, where).articles:
        parse_one(element, source, BULK_WRAPPER, article.index, result)
    return result
