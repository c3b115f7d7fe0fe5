"""Source `dir`: a folder of JATS XML files and images in any layout.

Images are looked up next to the XML first (the PMC package layout), then by file stem in
the folders the article may use, nearest folder first (see `DirectorySource._find`), so
`xml/` + `images/` splits work too while one package never borrows another's figure.
Every file is read through `read_regular_file`: regular files inside the folder, size-capped.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from functools import cached_property, lru_cache
from pathlib import Path, PurePosixPath

from biomedica.ingest.sources import SourceItem
from biomedica.ingest.sources.safe_read import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_XML_BYTES,
    InputRefused,
    read_regular_file,
)

XML_SUFFIXES = (".xml", ".nxml")
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
                if name.lower().endswith(XML_SUFFIXES):
                    self._xml.append(rel)
                else:
                    self._by_dir[rel_dir].append(rel)
                    self._by_stem[media_stem(name)].append(rel)
        self._xml.sort()

    def list_items(self) -> list[str]:
        return list(self._xml)

    def signatures(self, item_ids: list[str]) -> dict[str, str]:
        """`sha256:<hex>:<size>` of each XML file's bytes (images are not signed)."""
        found = {}
        for item_id in item_ids:
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
        return {"kind": "dir", "location": str(self.root), "documents": len(self._xml)}

    def open_item(self, item_id: str) -> SourceItem:
        path = self.root / item_id
        xml = read_regular_file(path, self.root, self.max_xml_bytes, "xml")
        xml_dir = PurePosixPath(item_id).parent.as_posix()
        xml_dir = "" if xml_dir == "." else xml_dir
        return SourceItem(
            item_id=item_id,
            xml=xml,
            location=str(path),
            media_names=list(self._by_dir.get(xml_dir, ())),
            read_media=self._read,
            find_media=lambda href: self._find(href, xml_dir),
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
