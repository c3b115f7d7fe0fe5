"""Source `pmc-package`: legacy `PMC*.tar.gz` article packages from a mirror folder or an HTTP base.

A package holds one `.nxml` (the JATS article) and its media: the full-size images and a
`.gif` thumbnail per figure (plus PDFs and supplements, which are skipped). The packages to
read come from an `oa_file_list.csv`/`.txt` (whose license column can pre-select license
groups before anything is downloaded) or, for a local mirror, from a scan for `*.tar.gz`.

Item ids are the packages' paths as the file list writes them (`oa_package/08/e0/PMC13900.tar.gz`)
or their paths under the mirror folder; a local mirror may also hold the packages flat
(`PMC13900.tar.gz`). A package that is missing, truncated or not a gzip tar raises
`PackageError` (an OSError), which the pipeline records in `errors/` and goes on.
"""

from __future__ import annotations

import io
import os
import tarfile
import zlib
from collections.abc import Collection
from pathlib import Path, PurePosixPath

from biomedica.ingest.resolve_images import CANDIDATE_EXTENSIONS
from biomedica.ingest.sources import SourceItem
from biomedica.ingest.sources.oa_file_list import OaFileList, parse_oa_file_list
from biomedica.ingest.sources.safe_read import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_XML_BYTES,
    InputRefused,
    read_regular_file,
    too_large,
)
from biomedica.io.redact import redact
from biomedica.net import NetClient, NetConfig, RateLimiter
from biomedica.records import LICENSE_GROUPS

PACKAGE_SUFFIXES = (".tar.gz", ".tgz")
ARTICLE_SUFFIXES = (".nxml", ".xml")
# members worth reading: the article and raster images (PDFs, supplements, movies are skipped)
_MEDIA_SUFFIXES = frozenset(CANDIDATE_EXTENSIONS)
# a package whose wanted members inflate past this is refused (a gzip bomb, or not a PMC package)
MAX_PACKAGE_MEMBER_BYTES = 2 * 1024**3
# a package file larger than this is not read from a mirror (PMC packages are far smaller)
MAX_PACKAGE_BYTES = 4 * 1024**3


class PackageError(OSError):
    """A package that cannot be used: missing, truncated, not a gzip tar, or without an article."""


def is_remote(location: str | Path) -> bool:
    return str(location).startswith(("http://", "https://"))


class PmcPackageSource:
    """Reads `PMC*.tar.gz` packages listed by an OA file list (or found by a folder scan).

    `location` is a mirror folder or an HTTP(S) base URL under which the file list's paths
    lie (e.g. the old `https://ftp.ncbi.nlm.nih.gov/pub/pmc/`). `file_list` is a path or URL
    of `oa_file_list.csv`/`.txt`; without it a local mirror is scanned. `license_groups`
    keeps only the rows whose license code falls in those groups (needs a file list).
    """

    def __init__(
        self,
        location: str | Path,
        file_list: str | Path | None = None,
        license_groups: Collection[str] | None = None,
        net: NetConfig | None = None,
        rate_limiter: RateLimiter | None = None,
        max_xml_bytes: int = DEFAULT_MAX_XML_BYTES,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    ):
        self.max_xml_bytes = max_xml_bytes
        self.max_image_bytes = max_image_bytes
        self.remote = is_remote(location)
        self.location = str(location).rstrip("/") if self.remote else str(Path(location).resolve())
        if not self.remote and not Path(self.location).is_dir():
            raise FileNotFoundError(
                f"package mirror {self.location} does not exist or is not a folder: pass the folder that holds "
                "the PMC*.tar.gz packages, or an http(s):// base URL"
            )
        self.file_list = str(file_list) if file_list is not None else None
        if self.remote and self.file_list is None:
            raise ValueError(
                f"{self.location}: an HTTP base cannot be scanned; pass the oa_file_list.csv or .txt "
                "that names its packages (a local path or a URL)"
            )
        unknown = sorted(set(license_groups or ()) - set(LICENSE_GROUPS))
        if unknown:
            raise ValueError(f"unknown license group(s) {unknown}; choose from {', '.join(LICENSE_GROUPS)}")
        if license_groups and self.file_list is None:
            raise ValueError(
                "selecting license groups before download needs the file list's license column: pass "
                "oa_file_list.csv/.txt (the archive sorts samples into license groups anyway)"
            )
        self.license_groups = tuple(sorted(license_groups)) if license_groups else None
        self.net_config = net or NetConfig()
        self.client = NetClient(self.net_config, rate_limiter) if (self.remote or _is_url(self.file_list)) else None
        self._items: list[str] | None = None
        self._list: OaFileList | None = None

    # -- pickling: a worker needs where packages are, not the (possibly 6M-row) list -----------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_items"] = None
        state["_list"] = None
        return state

    def with_rate_limiter(self, rate_limiter: RateLimiter) -> "PmcPackageSource":
        """A copy whose HTTP requests take tokens from `rate_limiter` (e.g. a cluster-wide one)."""
        copy = PmcPackageSource.__new__(PmcPackageSource)
        copy.__dict__.update(self.__getstate__())
        copy.client = NetClient(self.net_config, rate_limiter) if self.client is not None else None
        return copy

    @property
    def requests_per_second(self) -> float | None:
        """The configured request rate (None = unlimited), for executors that share one limit."""
        return self.net_config.requests_per_second if self.client is not None else None

    @property
    def request_burst(self) -> float | None:
        return self.net_config.burst

    # -- ArticleSource ------------------------------------------------------------------------
    def list_items(self) -> list[str]:
        if self._items is None:
            self._items = self._list_from_file_list() if self.file_list else self._scan()
        return list(self._items)

    def signatures(self, item_ids: list[str]) -> dict[str, str]:
        """A local package: `size:<bytes>:mtime:<ns>` (no read); else its file-list row (last updated, license).

        Hashing every package (images included) would read the whole mirror on each run.
        """
        rows = {}
        if self.file_list:
            rows = {e.package_path: e for e in self.read_file_list().entries}
        found = {}
        for item_id in item_ids:
            parts = []
            if not self.remote:
                root = Path(self.location)
                for path in (root / item_id, root / PurePosixPath(item_id).name):
                    if path.is_file():
                        info = path.stat()
                        parts.append(f"size:{info.st_size}:mtime:{info.st_mtime_ns}")
                        break
            entry = rows.get(item_id)
            if entry is not None:
                parts.append(f"list:{entry.last_updated or ''}:{entry.license_code or ''}")
            found[item_id] = "|".join(parts) or "unreadable"
        return found

    def describe(self) -> dict:
        info: dict = {"kind": "pmc-package", "location": self.location, "packages": len(self.list_items())}
        if self.file_list:
            listing = self.read_file_list()
            info.update(
                file_list=self.file_list,
                file_list_format=listing.format,
                file_list_rows=len(listing.entries),
                file_list_problems=len(listing.problems),
            )
            if listing.snapshot:
                info["snapshot"] = listing.snapshot
        if self.license_groups:
            info["license_groups"] = list(self.license_groups)
        return info

    def open_item(self, item_id: str) -> SourceItem:
        data, where = self._read_package(item_id)
        article_name, members = read_package_members(data, where, self.max_xml_bytes, self.max_image_bytes)
        media_names = [name for name in members if name != article_name]
        return SourceItem(
            item_id=item_id,
            xml=members[article_name],
            location=f"{where}!/{article_name}",
            media_names=media_names,
            read_media=_MemberReader(where, members),
        )

    # -- listing ------------------------------------------------------------------------------
    def read_file_list(self) -> OaFileList:
        """The parsed file list (fetched once per process when it is a URL)."""
        if self._list is None:
            assert self.file_list is not None
            if _is_url(self.file_list):
                assert self.client is not None
                data = self.client.get(self.file_list)
            else:
                path = Path(self.file_list)
                if not path.is_file():
                    raise FileNotFoundError(
                        f"OA file list {path} not found: pass the path of oa_file_list.csv or .txt (or its URL)"
                    )
                data = path.read_bytes()
            self._list = parse_oa_file_list(data, self.file_list)
        return self._list

    def _list_from_file_list(self) -> list[str]:
        listing = self.read_file_list()
        wanted = set(self.license_groups) if self.license_groups else None
        return sorted({e.package_path for e in listing.entries if wanted is None or e.license_group in wanted})

    def _scan(self) -> list[str]:
        root = Path(self.location)
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel_dir = Path(dirpath).relative_to(root).as_posix()
            for name in filenames:
                if name.lower().endswith(PACKAGE_SUFFIXES) and not name.startswith("."):
                    found.append(name if rel_dir == "." else f"{rel_dir}/{name}")
        return sorted(found)

    # -- reading one package ----------------------------------------------------------------
    def _read_package(self, item_id: str) -> tuple[bytes, str]:
        """The package's bytes and where they came from (path or URL)."""
        if self.remote:
            assert self.client is not None
            url = f"{self.location}/{item_id.lstrip('/')}"
            return self.client.get(url), url  # FetchError is an OSError: recorded by the pipeline
        root = Path(self.location)
        candidates = [root / item_id, root / PurePosixPath(item_id).name]
        for path in candidates:
            if path.is_symlink() or path.exists():  # a FIFO or device is refused, never opened
                return read_regular_file(path, root, MAX_PACKAGE_BYTES, "package"), str(path)
        raise PackageError(
            f"package {item_id} is not in the mirror (looked for {candidates[0]} and {candidates[1]}); "
            "download it, or remove its row from the file list"
        )


class _MemberReader:
    """read_media for one opened package (a class, not a closure, so an item can be pickled)."""

    def __init__(self, where: str, members: dict[str, bytes | InputRefused]):
        self.where = where
        self.members = members

    def __call__(self, name: str) -> bytes:
        try:
            data = self.members[name]
        except KeyError:
            raise PackageError(f"{self.where}: no member {name!r} in the package") from None
        if isinstance(data, InputRefused):
            raise data
        return data


def read_package_members(
    data: bytes, where: str, max_xml_bytes: int = DEFAULT_MAX_XML_BYTES, max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> tuple[str, dict[str, bytes | InputRefused]]:
    """Read a package's article XML and image members: (article member name, {name: bytes}).

    Streams through the whole gzip tar, so a truncated download fails here (not half way
    through the figures). Raises PackageError with what was read before the damage. An
    image member over `max_image_bytes` is not extracted: its entry is the InputRefused
    that reading it raises; an article member over `max_xml_bytes` refuses the package.
    """
    if not data:
        raise PackageError(f"{where}: package is empty (0 bytes; the download was cut short); download it again")
    members: dict[str, bytes | InputRefused] = {}
    seen: list[str] = []
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                seen.append(info.name)
                lower = info.name.lower()
                wanted = lower.endswith(ARTICLE_SUFFIXES) or PurePosixPath(lower).suffix in _MEDIA_SUFFIXES
                if not wanted:
                    continue
                is_article = lower.endswith(ARTICLE_SUFFIXES)
                cap = max_xml_bytes if is_article else max_image_bytes
                if info.size > cap:  # not extracted; reading the member raises this
                    members[info.name] = too_large(
                        f"{where}!/{info.name}", info.size, cap, "xml" if is_article else "image"
                    )
                    continue
                total += info.size
                if total > MAX_PACKAGE_MEMBER_BYTES:
                    raise PackageError(
                        f"{where}: article and image members inflate past {MAX_PACKAGE_MEMBER_BYTES:,} bytes; "
                        "this is not a normal PMC package (refused as a possible gzip bomb)"
                    )
                handle = tar.extractfile(info)
                members[info.name] = handle.read() if handle is not None else b""
    except PackageError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        after = f" after {len(seen)} member(s), last {seen[-1]!r}" if seen else " before its first member"
        reason = str(exc).lower()
        cut_short = isinstance(exc, EOFError) or any(w in reason for w in ("unexpected end", "truncated", "empty file"))
        kind = "truncated (the download was cut short)" if cut_short else "damaged or not a gzip tar"
        raise PackageError(
            f"{where}: package is {kind} ({type(exc).__name__}: {redact(str(exc))}){after}; "
            f"download it again ({len(data):,} bytes on hand)"
        ) from exc
    articles = sorted(name for name in members if name.lower().endswith(ARTICLE_SUFFIXES))
    if not articles:
        raise PackageError(
            f"{where}: package holds no .nxml/.xml article ({len(seen)} member(s): "
            f"{', '.join(seen[:5])}{'...' if len(seen) > 5 else ''}); is it a PMC article package?"
        )
    nxml = [name for name in articles if name.lower().endswith(".nxml")]
    article = (nxml or articles)[0]
    if isinstance(members[article], InputRefused):
        raise members[article]
    return article, members


def _is_url(value: str | None) -> bool:
    return value is not None and is_remote(value)
