"""Source `pmc-cloud`: articles from the PMC Cloud Service bucket (`pmc-oa-opendata`, S3).

Layout: one prefix per article version, `PMC<id>.<v>/`, holding `PMC<id>.<v>.xml` (JATS),
`PMC<id>.<v>.json` (metadata: license_code, is_retracted, xml_url, media_urls with `?md5=`,
...) and the media files. Items are version prefixes (`PMC123.2`), selected from the daily
S3 inventory, a prefix listing or a PMCID list, then filtered on the metadata (licence,
retraction, manuscript, historical OCR), latest version per PMCID unless all are asked for.

Only the XML and the figure images the parser asks for are fetched (never PDFs or
supplements); every object is md5-checked and goes through the shared `NetClient` (retries,
rate limit, cache). The source pickles small: spawn workers rebuild their connections, and
during an ingest run the selected versions travel as a Parquet plan file (`cloud_plan`) that
workers read by row group, never as a per-item payload pickled into every worker.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from biomedica.ingest.resolve_images import resolve_graphic
from biomedica.ingest.sources import SourceItem
from biomedica.ingest.sources.cloud_plan import PlanReader, plan_versions, write_plan
from biomedica.ingest.sources.inventory import find_latest_manifest, iter_rows, read_manifest
from biomedica.io.atomic import temp_path
from biomedica.net import FetchError, NetClient, NetConfig, NotFoundError, parse_object_url

PMC_BUCKET = "pmc-oa-opendata"
PLAN_NAME = "pmc-cloud-plan.parquet"  # written under a temporary name (io.atomic.temp_path) by each run
_VERSION_KEY = re.compile(r"^(PMC\d+)\.(\d+)/(PMC\d+\.\d+)\.(xml|json)$")
_PMCID = re.compile(r"^(?:PMC)?(\d+)(?:\.(\d+))?$", re.IGNORECASE)
_FIG = re.compile(rb"<fig[\s>].*?</fig>", re.DOTALL)
_GRAPHIC_TAG = re.compile(rb"<graphic\b[^>]*>")
_HREF = re.compile(rb"\bhref=\"([^\"]+)\"")
_THUMB = re.compile(rb"(?:content-type|specific-use)=\"thumb", re.IGNORECASE)


class PmcCloudConfig(BaseModel):
    """What to read from the PMC Cloud bucket and how to select articles."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(default=PMC_BUCKET, description="bucket in the PMC Cloud layout (a mirror works too)")
    net: NetConfig = Field(default_factory=NetConfig, description="endpoint, timeouts, retries, rate, cache")
    select: Literal["inventory", "prefix", "ids"] = Field(
        default="inventory", description="list articles from the S3 inventory, a prefix listing, or ids_file"
    )
    ids_file: Path | None = Field(default=None, description="text file, one PMCID per line (PMC123, 123, PMC123.2)")
    prefix: str = Field(default="PMC", description="key prefix for select=prefix, e.g. PMC1 or PMC10802347.")
    inventory_manifest: str | None = Field(
        default=None, description="key of an inventory manifest.json (None = the newest under inventory_prefix)"
    )
    inventory_prefix: str = "inventory-reports/"
    licenses: tuple[str, ...] | None = Field(
        default=None, description="keep only these license_code values, e.g. ('CC BY', 'CC0') (None = all)"
    )
    include_retracted: bool = False
    include_manuscripts: bool = True
    include_historical_ocr: bool = Field(default=False, description="scanned back issues: page images, no figures")
    open_access_only: bool = Field(default=True, description="keep only is_pmc_openaccess articles")
    all_versions: bool = Field(default=False, description="every version, not only the latest per PMCID")
    limit: int | None = Field(default=None, ge=1, description="stop after this many selected articles (a sample)")
    read_ahead: int = Field(
        default=4, ge=0, description="items whose XML and figure images are fetched while one is parsed"
    )

    @model_validator(mode="after")
    def _ids_need_a_file(self) -> "PmcCloudConfig":
        if self.select == "ids" and self.ids_file is None:
            raise ValueError("select='ids' needs ids_file: a text file with one PMCID per line")
        return self


@dataclass(frozen=True)
class VersionListing:
    """One article version as the listing shows it (before its metadata is read)."""

    item_id: str  # "PMC123.2"
    pmcid: str
    version: int
    xml_etag: str = ""
    json_etag: str = ""
    last_modified: str = ""

    @property
    def signature(self) -> str:
        """Changes whenever the XML or the metadata object changes (what a sync compares)."""
        return f"{self.xml_etag}/{self.json_etag}"


@dataclass(frozen=True)
class VersionMetadata:
    """The fields of `PMC<id>.<v>.json` the source uses."""

    pmcid: str
    version: int
    pmid: str | None
    doi: str | None
    license_code: str | None
    is_pmc_openaccess: bool
    is_manuscript: bool
    is_historical_ocr: bool
    is_retracted: bool
    xml_url: str | None
    media_urls: tuple[str, ...]

    @classmethod
    def from_json(cls, raw: bytes, where: str, item_id: str | None = None) -> VersionMetadata:
        """The record in `raw`; a MetadataError naming `where` when it is unusable (see `parse`)."""
        try:
            return cls.parse(raw, item_id)
        except ValueError as exc:
            raise MetadataError(f"{where}: {exc}") from exc

    @classmethod
    def parse(cls, raw: bytes, item_id: str | None = None) -> VersionMetadata:
        """The record in `raw`, or a ValueError saying what is wrong (never quoting the bytes).

        Implausible records are refused, not read with defaults: a body damaged on the way
        (a key lost, a pmcid changed) must be fetched again or recorded, never turned into
        a silent licence or open-access exclusion. `item_id` ("PMC123.2") is the key it was
        read under: its pmcid and version must agree.
        """
        try:
            data = json.loads(raw)
        except UnicodeDecodeError as exc:
            raise ValueError(f"not PMC Cloud metadata JSON: not UTF-8 text (at byte {exc.start})") from None
        except ValueError as exc:
            raise ValueError(f"not PMC Cloud metadata JSON: {exc}") from None
        if not isinstance(data, dict):  # a ValueError, like every unusable body (the client retries those)
            kind = type(data).__name__
            raise ValueError(f"not PMC Cloud metadata JSON: a JSON {kind}, expected an object")  # noqa: TRY004
        missing = [name for name in ("pmcid", "license_code") if name not in data]
        if missing:
            raise ValueError(f"PMC Cloud metadata without {' and '.join(missing)}; expected pmcid, version, "
                             "license_code, xml_url, media_urls")
        parsed = parse_pmcid(str(data["pmcid"]))
        version = data.get("version")
        if parsed is None or (version is not None and not isinstance(version, int)):
            raise ValueError(f"PMC Cloud metadata with an unreadable pmcid or version ({str(data['pmcid'])[:20]!r})")
        if item_id is not None:
            key_pmcid, _, key_version = item_id.partition(".")
            if parsed[0] != key_pmcid or (version is not None and key_version.isdigit() and version != int(key_version)):
                raise ValueError(f"PMC Cloud metadata of {parsed[0]} version {version} stored under {item_id}: "
                                 "the record does not belong to its key")
        flags = ("is_pmc_openaccess", "is_manuscript", "is_historical_ocr", "is_retracted")
        wrong = [name for name in flags if data.get(name) is not None and not isinstance(data[name], bool)]
        wrong += [name for name in ("license_code", "xml_url") if data.get(name) is not None and not isinstance(data[name], str)]
        if not isinstance(data.get("media_urls") or [], list):
            wrong.append("media_urls")
        if wrong:
            raise ValueError(f"PMC Cloud metadata with fields of the wrong type: {', '.join(wrong)}")
        return cls(
            pmcid=parsed[0],
            version=int(version or 1),
            pmid=None if data.get("pmid") in (None, "") else str(data["pmid"]),
            doi=data.get("doi") or None,
            license_code=data.get("license_code") or None,
            is_pmc_openaccess=bool(data.get("is_pmc_openaccess", True)),
            is_manuscript=bool(data.get("is_manuscript", False)),
            is_historical_ocr=bool(data.get("is_historical_ocr", False)),
            is_retracted=bool(data.get("is_retracted", False)),
            xml_url=data.get("xml_url") or None,
            media_urls=tuple(str(url) for url in data.get("media_urls") or ()),
        )


class MetadataError(OSError):
    """A metadata JSON that cannot be read; an OSError so the pipeline records it per item."""

    error_kind = "metadata-unreadable"  # the errors/ kind the pipeline records


@dataclass
class Candidate:
    """A listed version, its metadata when read, and why it was left out (None = selected)."""

    listing: VersionListing
    metadata: VersionMetadata | None = None
    excluded: str | None = None
    problem: str | None = None  # metadata unreadable: kept as an item so the error lands in errors/


@dataclass
class _PreparedItem:
    xml: bytes
    media: dict[str, str]  # media file name -> URL
    figures: dict[str, Future]  # name -> Future[bytes] of the figure images being fetched


@dataclass
class ScanResult:
    snapshot: str
    selection: str
    inventory_manifest: str | None
    candidates: list[Candidate] = field(default_factory=list)  # every listed version, sorted by item id

    @property
    def selected(self) -> list[Candidate]:
        return [c for c in self.candidates if c.excluded is None]


def parse_pmcid(text: str) -> tuple[str, int | None] | None:
    """'PMC123' / '123' / 'PMC123.2' -> ('PMC123', None | 2); None for anything else."""
    match = _PMCID.match(text.strip())
    if not match:
        return None
    return f"PMC{int(match[1])}", int(match[2]) if match[2] else None


def normalise_license_code(code: str | None) -> str:
    """'CC BY-NC' / 'cc-by-nc' / 'CC_BY_NC' -> 'CCBYNC' (for comparing filters with metadata)."""
    return re.sub(r"[\s_\-]+", "", (code or "").upper())


class PmcCloudSource:
    """The ArticleSource over a PMC Cloud bucket."""

    def __init__(self, config: PmcCloudConfig | None = None, client: NetClient | None = None):
        self.config = config or PmcCloudConfig()
        self.client = client or NetClient(self.config.net)
        self.build_history: list[dict[str, Any]] = []  # earlier builds of this archive (set by sync)
        self._scan: ScanResult | None = None
        self._etags: dict[str, tuple[str, str]] = {}  # item id -> (xml etag, json etag)
        self._order: list[str] = []
        self._plan: PlanReader | None = None  # set while a run's plan file exists (worker_plan)
        self._runtime_init()

    def _runtime_init(self) -> None:
        self._memo_lock = threading.Lock()  # read-ahead threads share the memo
        self._metadata_memo: OrderedDict[str, VersionMetadata] = OrderedDict()
        self._metadata_failed: dict[str, OSError] = {}  # read by scan() in this process, retries spent
        self._ahead: OrderedDict[str, Future] = OrderedDict()  # item id -> Future[_PreparedItem]
        self._position: dict[str, int] = {item: i for i, item in enumerate(self._order)}

    def __getstate__(self) -> dict:
        """Config, client and summary; the items as a plan path when one is written (`worker_plan`).

        Without a plan (a source pickled outside an ingest run) the etags and order travel
        inline, which is fine for a sample and the reason run_ingest always writes the plan.
        """
        inline = self._plan is None
        return {
            "config": self.config, "client": self.client, "build_history": self.build_history,
            "scan_summary": self._scan_summary(), "plan": self._plan,
            "etags": self._etags if inline else {}, "order": self._order if inline else [],
        }

    def __setstate__(self, state: dict) -> None:
        self.config = state["config"]
        self.client = state["client"]
        self.build_history = state["build_history"]
        self._scan = None
        self._summary = state["scan_summary"]
        self._etags = state["etags"]
        self._order = state["order"]
        self._plan = state.get("plan")
        self._runtime_init()

    # -- listing --------------------------------------------------------------------------------
    def scan(self) -> ScanResult:
        """List versions, pick latest (or all), read metadata and apply the filters; done once."""
        if self._scan is None:
            snapshot, manifest_key, listings, requested_missing = self._list_versions()
            chosen = _choose_versions(listings, self.config.all_versions)
            result = ScanResult(snapshot=snapshot, selection=self.config.select, inventory_manifest=manifest_key)
            result.candidates = self._read_metadata_and_filter(chosen)
            for pmcid in requested_missing:  # asked for by id, not in the bucket: recorded by open_item
                result.candidates.append(Candidate(VersionListing(pmcid, pmcid, 0), problem="not in the bucket"))
            result.candidates.sort(key=lambda c: c.listing.item_id)
            if self.config.limit is not None:
                kept = 0
                for c in result.candidates:
                    if c.excluded is None:
                        kept += 1
                        if kept > self.config.limit:
                            c.excluded = "over-limit"
            self._scan = result
            self._etags = {c.listing.item_id: (c.listing.xml_etag, c.listing.json_etag) for c in result.selected}
            self._order = [c.listing.item_id for c in result.selected]
            self._position = {item: i for i, item in enumerate(self._order)}
        return self._scan

    def list_items(self) -> list[str]:
        self.scan()
        return list(self._order)

    @contextmanager
    def worker_plan(self, folder: Path) -> Iterator[Path]:
        """Write the selected versions to a plan file in `folder` for the workers of one run; removed after.

        The file has a temporary name with this process's pid (io.atomic.temp_path), so the
        archive's leftover sweep removes it if the run dies; a run removes only its own file.
        """
        self.scan()
        path = temp_path(Path(folder) / PLAN_NAME)
        write_plan((_listing_for(item, self._etags.get(item)) for item in self._order), path)
        self._plan = PlanReader(path)
        try:
            yield path
        finally:
            self._plan = None
            path.unlink(missing_ok=True)

    def signatures(self, item_ids: list[str]) -> dict[str, str]:
        """`<xml etag>/<json etag>` from the listing (VersionListing.signature)."""
        self.scan()
        return {item: "/".join(self._etags[item]) for item in item_ids if item in self._etags}

    @property
    def limited(self) -> bool:
        """True when the listing is cut to a sample (config.limit): items beyond it are not "removed"."""
        return self.config.limit is not None

    def retracted_versions(self) -> list[tuple[str, str, int]]:
        """(article id, item id, version) of every listed version whose metadata says is_retracted."""
        return sorted(
            {
                (c.listing.pmcid, c.listing.item_id, c.listing.version)
                for c in self.scan().candidates
                if c.metadata is not None and c.metadata.is_retracted
            }
        )

    def describe(self) -> dict:
        return {
            "kind": "pmc-cloud",
            "location": f"s3://{self.config.bucket}",
            "bucket": self.config.bucket,
            "endpoint_url": self.config.net.endpoint_url,
            "selection": self.config.select,
            "filters": {
                "licenses": list(self.config.licenses) if self.config.licenses else None,
                "include_retracted": self.config.include_retracted,
                "include_manuscripts": self.config.include_manuscripts,
                "include_historical_ocr": self.config.include_historical_ocr,
                "open_access_only": self.config.open_access_only,
                "all_versions": self.config.all_versions,
                "limit": self.config.limit,
            },
            **self._scan_summary(),
            "builds": self.build_history,
        }

    def _scan_summary(self) -> dict:
        if self._scan is None:
            return getattr(self, "_summary", {})
        excluded = Counter(c.excluded for c in self._scan.candidates if c.excluded)
        return {
            "snapshot": self._scan.snapshot,
            "inventory_manifest": self._scan.inventory_manifest,
            "versions_listed": len(self._scan.candidates),
            "items": len(self._order),
            "excluded": dict(sorted(excluded.items())),
        }

    def _list_versions(self) -> tuple[str, str | None, list[VersionListing], list[str]]:
        cfg = self.config
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if cfg.select == "inventory":
            key = cfg.inventory_manifest or find_latest_manifest(self.client, cfg.bucket, cfg.inventory_prefix)
            manifest = read_manifest(self.client, cfg.bucket, key)
            rows = ((r.key, r.etag, r.last_modified) for r in iter_rows(self.client, manifest) if r.bucket in ("", cfg.bucket, manifest.source_bucket))
            return manifest.snapshot, key, _versions_from_keys(rows), []
        if cfg.select == "prefix":
            objects = self.client.list_objects(cfg.bucket, cfg.prefix)
            return now, None, _versions_from_keys((o.key, o.etag, o.last_modified) for o in objects), []
        wanted = _read_ids_file(cfg.ids_file)
        prefixes = [f"{pmcid}.{version}/" if version else f"{pmcid}." for pmcid, version in wanted]
        listings: list[VersionListing] = []
        missing: list[str] = []
        for (pmcid, _), (prefix, objects) in zip(wanted, self.client.map(
            lambda p: list(self.client.list_objects(cfg.bucket, p)), prefixes
        )):
            if isinstance(objects, BaseException):
                raise objects
            found = _versions_from_keys((o.key, o.etag, o.last_modified) for o in objects)
            listings += [v for v in found if v.pmcid == pmcid]
            if not found:
                missing.append(prefix.rstrip("./"))
        return now, None, listings, missing

    def _read_metadata_and_filter(self, chosen: list[VersionListing]) -> list[Candidate]:
        """Read metadata in sorted order, concurrently, until `limit` versions are selected."""
        candidates: list[Candidate] = []
        limit = self.config.limit
        selected = 0
        chunk = max(1, self.config.net.max_concurrency * 4)
        for start in range(0, len(chosen), chunk):
            if limit is not None and selected >= limit:
                candidates += [Candidate(v, excluded="over-limit") for v in chosen[start:]]
                break
            for listing, meta in self.client.map(self._fetch_metadata, chosen[start : start + chunk]):
                candidate = Candidate(listing)
                if isinstance(meta, OSError):
                    candidate.problem = str(meta)
                    self._metadata_failed[listing.item_id] = meta
                elif isinstance(meta, BaseException):
                    raise meta
                else:
                    candidate.metadata = meta
                    candidate.excluded = self._exclusion(meta)
                if limit is not None and candidate.excluded is None and selected >= limit:
                    candidate.excluded = "over-limit"
                if candidate.excluded is None:
                    selected += 1
                candidates.append(candidate)
        return candidates

    def _exclusion(self, meta: VersionMetadata) -> str | None:
        cfg = self.config
        if meta.is_retracted and not cfg.include_retracted:
            return "retracted"
        if not meta.is_pmc_openaccess and cfg.open_access_only:
            return "not-open-access"
        if meta.is_manuscript and not cfg.include_manuscripts:
            return "manuscript"
        if meta.is_historical_ocr and not cfg.include_historical_ocr:
            return "historical-ocr"
        if cfg.licenses is not None:
            allowed = {normalise_license_code(code) for code in cfg.licenses}
            if normalise_license_code(meta.license_code) not in allowed:
                return "license"
        return None

    # -- reading one item -----------------------------------------------------------------------
    def open_item(self, item_id: str) -> SourceItem:
        ahead = self._ahead.pop(item_id, None)
        prepared = ahead.result() if ahead is not None else self._prepare(item_id)
        self._read_ahead(item_id)
        media, prefetched = prepared.media, prepared.figures

        def read_media(name: str) -> bytes:
            future = prefetched.pop(name, None)
            if future is not None:
                return future.result()
            url = media.get(name)
            if url is None:
                raise FileNotFoundError(f"{item_id}: '{name}' is not among the media_urls of {item_id}.json")
            return self.client.get(url)

        return SourceItem(
            item_id=item_id,
            xml=prepared.xml,
            location=f"s3://{self.config.bucket}/{item_id}/{item_id}.xml",
            media_names=list(media),
            read_media=read_media,
        )

    def _prepare(self, item_id: str) -> "_PreparedItem":
        """Metadata, XML, and the figure images already on their way (runs ahead on the pool too)."""
        meta = self.metadata(item_id)
        url, etag = self._xml_url(item_id, meta)
        xml = self.client.get(url, etag=etag)
        media: dict[str, str] = {}
        for media_url in meta.media_urls:
            name = PurePosixPath(unquote(urlsplit(media_url).path)).name
            if name:
                media.setdefault(name, self._in_bucket(media_url))
        return _PreparedItem(xml=xml, media=media, figures=self._prefetch_figures(xml, media))

    def metadata(self, item_id: str) -> VersionMetadata:
        """The item's metadata JSON (memoised per process; from the on-disk cache when enabled)."""
        with self._memo_lock:
            meta = self._metadata_memo.get(item_id)
            failed = self._metadata_failed.get(item_id)
        if failed is not None:  # this process spent the retries in scan(); a spawn worker tries afresh
            raise failed
        if meta is None:
            meta = self._fetch_metadata(_listing_for(item_id, self._etag_pair(item_id)))
            with self._memo_lock:
                self._metadata_memo[item_id] = meta
                while len(self._metadata_memo) > 256:
                    self._metadata_memo.popitem(last=False)
        return meta

    def _fetch_metadata(self, listing: VersionListing) -> VersionMetadata:
        item = listing.item_id
        if not _VERSION_KEY.match(f"{item}/{item}.json"):
            raise NotFoundError(
                f"s3://{self.config.bucket}/{item}.*",
                f"{item} is not in the bucket (no version prefix found); check the PMCID list",
            )
        key = f"{item}/{item}.json"
        try:
            # parsed inside the fetch: a damaged or implausible record is fetched again, never cached
            return self.client.load_object(
                self.config.bucket, key, lambda raw: VersionMetadata.parse(raw, item), etag=listing.json_etag or None
            )
        except NotFoundError:
            raise
        except FetchError as exc:
            raise MetadataError(
                f"{exc}; {item} is left out of this build (recorded, not filtered as an exclusion)"
            ) from exc

    def _xml_url(self, item_id: str, meta: VersionMetadata) -> tuple[str, str | None]:
        if meta.xml_url:
            return self._in_bucket(meta.xml_url), None
        etag = (self._etag_pair(item_id) or ("", ""))[0] or None
        return f"s3://{self.config.bucket}/{item_id}/{item_id}.xml", etag

    def _etag_pair(self, item_id: str) -> tuple[str, str] | None:
        """(xml etag, json etag) from the scan in this process, else from the run's plan file."""
        pair = self._etags.get(item_id)
        if pair is None and self._plan is not None:
            pair = self._plan.etags(item_id)
        return pair

    def _following(self, item_id: str, n: int) -> list[str]:
        position = self._position.get(item_id)
        if position is not None:
            return self._order[position + 1 : position + 1 + n]
        return self._plan.following(item_id, n) if self._plan is not None else []

    def _read_ahead(self, item_id: str) -> None:
        """Start preparing the next few items (units are runs of consecutive items)."""
        if not self.config.read_ahead:
            return
        for next_id in self._following(item_id, self.config.read_ahead):
            if next_id not in self._ahead:
                self._ahead[next_id] = self.client.submit(self._prepare, next_id)
        while len(self._ahead) > 2 * self.config.read_ahead:  # items this worker skipped
            _, stale = self._ahead.popitem(last=False)
            stale.cancel()

    def _prefetch_figures(self, xml: bytes, media: dict[str, str]) -> dict[str, Future]:
        """Start fetching the images that the figures' graphics name (what the pipeline will read)."""
        futures: dict[str, Future] = {}
        names = list(media)
        for fig in _FIG.findall(xml):
            for tag in _GRAPHIC_TAG.findall(fig):
                href = _HREF.search(tag)
                if href is None or _THUMB.search(tag):  # the parser takes the full image, not the thumbnail
                    continue
                name = resolve_graphic(href[1].decode("utf-8", "replace"), names)
                if name is not None and name not in futures:
                    futures[name] = self.client.submit(self.client.get, media[name])
        return futures

    def _in_bucket(self, url: str) -> str:
        """Point URLs of the public bucket at the configured one (mirrors copy metadata verbatim)."""
        ref = parse_object_url(url)
        if ref is None or ref.bucket == self.config.bucket or ref.bucket != PMC_BUCKET:
            return url
        query = urlsplit(url).query
        return f"s3://{self.config.bucket}/{ref.key}" + (f"?{query}" if query else "")


def plan_from_inventory_rows(
    rows: Iterable[tuple[str, str, str]], path: Path, all_versions: bool = False, memory: str = "1GB",
    batch_rows: int = 65_536,
) -> int:
    """The listing half of `scan` on inventory (key, etag, last_modified) rows, written as a plan file.

    The same versions as the in-memory listing (`_versions_from_keys` + `_choose_versions`), in
    memory bounded by `memory` (cloud_plan.plan_versions). What a build plans before metadata is
    read (the metadata filter needs one GET per version); benchmarks/scale.py measures it at PMC
    size. Returns the number of versions planned.
    """
    return plan_versions(_version_objects(rows), path, all_versions=all_versions, memory=memory, batch_rows=batch_rows)


def _version_objects(rows: Iterable[tuple[str, str, str]]) -> Iterator[tuple[str, str, int, str, str]]:
    for key, etag, _modified in rows:
        match = _VERSION_KEY.match(key)
        if match and match[3] == f"{match[1]}.{match[2]}":
            yield match[3], match[1], int(match[2]), match[4], etag.strip('"')


def _listing_for(item_id: str, etags: tuple[str, str] | None) -> VersionListing:
    pmcid, _, version = item_id.partition(".")
    xml_etag, json_etag = etags or ("", "")
    return VersionListing(item_id, pmcid, int(version) if version.isdigit() else 0, xml_etag, json_etag)


def _versions_from_keys(rows) -> list[VersionListing]:
    """Version prefixes that hold both `<v>.xml` and `<v>.json`, from (key, etag, last_modified) rows."""
    seen: dict[str, dict[str, str]] = {}
    for key, etag, modified in rows:
        match = _VERSION_KEY.match(key)
        if not match or match[3] != f"{match[1]}.{match[2]}":
            continue
        entry = seen.setdefault(match[3], {"pmcid": match[1], "version": match[2], "modified": ""})
        entry[match[4]] = etag.strip('"')
        entry["modified"] = max(entry["modified"], str(modified))
    return [
        VersionListing(item, e["pmcid"], int(e["version"]), e["xml"], e["json"], e["modified"])
        for item, e in seen.items()
        if "xml" in e and "json" in e
    ]


def _choose_versions(listings: list[VersionListing], all_versions: bool) -> list[VersionListing]:
    if all_versions:
        return sorted(listings, key=lambda v: v.item_id)
    latest: dict[str, VersionListing] = {}
    for v in listings:
        if v.pmcid not in latest or v.version > latest[v.pmcid].version:
            latest[v.pmcid] = v
    return sorted(latest.values(), key=lambda v: v.item_id)


def _read_ids_file(path: Path | None) -> list[tuple[str, int | None]]:
    if path is None:
        raise ValueError("select='ids' needs ids_file")
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FileNotFoundError(f"PMCID list {path}: cannot read it ({exc}); pass a text file, one PMCID per line") from exc
    wanted: dict[tuple[str, int | None], None] = {}
    bad: list[str] = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip().strip(",")
        if not text or text.lower() in ("pmcid", "accession id"):
            continue
        parsed = parse_pmcid(text)
        if parsed is None:
            bad.append(f"line {number}: {line.strip()!r}")
        else:
            wanted[parsed] = None
    if bad:
        raise ValueError(f"PMCID list {path}: not PMCIDs: {'; '.join(bad[:5])}; write PMC123, 123 or PMC123.2 per line")
    return list(wanted)
