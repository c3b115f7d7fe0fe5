"""Find the file a figure's `<graphic xlink:href>` refers to among an article's files.

JATS hrefs often omit the extension (`pone.0000217.g001`, `elife-00353-fig1-v1`), and
PMC packages hold a full-size file plus a `.gif` thumbnail per figure. The rules, in order:

1. the href's basename exactly (case-sensitive, then case-insensitive);
2. the basename plus an image extension, full-size formats first and `.gif` last
   (the thumbnail is the image only when no full-size file exists);
3. when the href ends in an image extension that is absent, the same stem with the other
   extensions (eLife XML says `fig1-v2.tif`; PMC ships `fig1-v2.jpg`).

A dotted stem is never cut: `pone.0000217.g001` looks for `pone.0000217.g001.jpg`, never
`pone.0000217.jpg` (that is another article's figure 1 naming, or nothing at all).
EPS, PDF and SVG are not candidates: Pillow cannot rasterise them without Ghostscript or a
vector renderer, and PMC always ships a raster rendition (or at least the `.gif`) beside them.
"""

from __future__ import annotations

from collections.abc import Iterable

# Full-size raster formats in preference order, then the PMC thumbnail format.
FULL_SIZE_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".webp", ".jp2")
THUMBNAIL_EXTENSION = ".gif"
CANDIDATE_EXTENSIONS: tuple[str, ...] = FULL_SIZE_EXTENSIONS + (THUMBNAIL_EXTENSION,)
# Extensions that mark an href as already naming an image file (rule 3 may swap them).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(CANDIDATE_EXTENSIONS) | {".eps", ".ps", ".pdf", ".svg"}


def _basename(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


class _FileIndex:
    """The available entries by basename: exact and case-folded, first entry wins."""

    def __init__(self, available: Iterable[str]) -> None:
        self.exact: dict[str, str] = {}
        self.folded: dict[str, str] = {}
        for entry in available:
            base = _basename(entry)
            if not base:  # a folder entry such as "PMC123/" in a tar listing
                continue
            self.exact.setdefault(base, entry)
            self.folded.setdefault(base.casefold(), entry)

    def find(self, name: str) -> str | None:
        return self.exact.get(name) or self.folded.get(name.casefold())


def _split_image_extension(name: str) -> tuple[str, str] | None:
    """`fig1.tif` -> (`fig1`, `.tif`); None when the name does not end in an image extension."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or f".{ext.lower()}" not in IMAGE_EXTENSIONS:
        return None
    return stem, f".{ext.lower()}"


def resolve_graphic(href: str, available: Iterable[str]) -> str | None:
    """Return the entry of `available` that the graphic `href` names, or None when none fits.

    `available` holds basenames or relative paths (a package listing, a folder walk);
    matching uses basenames on both sides and returns the entry as given.
    """
    index = _FileIndex(available)
    base = _basename(href.split("?", 1)[0].split("#", 1)[0]) if "://" in href else _basename(href)
    if not base:
        return None
    found = index.find(base)
    if found is not None:
        return found
    for ext in CANDIDATE_EXTENSIONS:
        found = index.find(base + ext)
        if found is not None:
            return found
    split = _split_image_extension(base)
    if split is not None:
        stem, own_ext = split
        for ext in CANDIDATE_EXTENSIONS:
            if ext != own_ext:
                found = index.find(stem + ext)
                if found is not None:
                    return found
    return None
