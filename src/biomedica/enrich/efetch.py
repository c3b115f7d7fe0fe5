"""Fetch PubMed records for many PMIDs: efetch batches of <= 200, a request rate, a per-PMID cache.

Requests go through the shared network client (retries with backoff on 429/5xx/timeouts,
the token-bucket rate limit). Each record that comes back is cached on disk under its
PMID, so a re-run, or a run after a crash, asks NCBI only for PMIDs it never got, however
the batches fall.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

from biomedica.enrich.config import EUTILS_URL_ENV, EnrichConfig
from biomedica.enrich.pubmed_xml import PubmedRecord, PubmedReplyError, parse_record, split_articles
from biomedica.net import ContentCache, FetchError, NetClient, NetConfig, cache_key, host_of, unreachable

_CACHE_VERSION = "efetch-pubmed-xml-v1"
PROBE_TIMEOUT = 5.0  # seconds a TCP connect to E-utilities may take before the host counts as unreachable


class EutilsUnreachable(ConnectionError):
    """No TCP connection to the E-utilities host: offline, a firewall, or a wrong --base-url."""


@dataclass
class BatchResult:
    """What one batch of PMIDs gave: records found, PMIDs PubMed does not know, failures."""

    pmids: list[str]
    records: dict[str, PubmedRecord] = field(default_factory=dict)
    not_found: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # pmid -> why
    from_cache: int = 0
    requests: int = 0


class PubmedFetcher:
    """efetch client for db=pubmed; `fetch(pmids)` yields one BatchResult per batch."""

    def __init__(self, config: EnrichConfig, client: NetClient | None = None):
        self.config = config
        self.client = client or NetClient(
            NetConfig(
                connect_timeout=config.connect_timeout,
                read_timeout=config.read_timeout,
                retry=config.retry,
                requests_per_second=config.rate,
                burst=1.0,  # NCBI counts per second: no bursts above the rate
                max_concurrency=1,
            )
        )
        self.cache = ContentCache(config.cache_root)

    def url(self, pmids: list[str]) -> str:
        params = {"db": "pubmed", "retmode": "xml", "id": ",".join(pmids), "tool": self.config.tool}
        if self.config.email:
            params["email"] = self.config.email
        if self.config.api_key:
            params["api_key"] = self.config.api_key
        return f"{self.config.base_url.rstrip('/')}/efetch.fcgi?{urlencode(params, safe=',')}"

    def fetch(self, pmids: list[str]) -> Iterator[BatchResult]:
        """Cached records first (no request), then the rest in batches of config.batch_size."""
        cached = BatchResult(pmids=[])
        missing: list[str] = []
        for pmid in pmids:
            data = self.cache.get(_key(pmid))
            if data is None:
                missing.append(pmid)
                continue
            cached.pmids.append(pmid)
            cached.records[pmid] = parse_record(data)
            cached.from_cache += 1
        if cached.pmids:
            yield cached
        size = self.config.batch_size
        batches = [missing[start : start + size] for start in range(0, len(missing), size)]
        for index, batch in enumerate(batches):
            if index == 0 and (why := self._unreachable()):  # offline: say so now, not after every retry
                raise EutilsUnreachable(
                    f"cannot reach the E-utilities server {host_of(self.config.base_url)} ({why}); nothing was asked. "
                    f"Check the network, or point --base-url (or ${EUTILS_URL_ENV}) at a reachable server, then rerun"
                )
            result = self._fetch_batch(batch)
            yield result
            if result.failed and (why := self._unreachable()):  # the server went away: skip the other batches' retries
                host = host_of(self.config.base_url)
                for rest in batches[index + 1 :]:
                    yield BatchResult(pmids=rest, failed={pmid: f"not asked: {host} unreachable ({why})" for pmid in rest})
                return

    def _unreachable(self) -> str | None:
        return unreachable(self.config.base_url, timeout=min(self.config.connect_timeout, PROBE_TIMEOUT))

    def _fetch_batch(self, pmids: list[str]) -> BatchResult:
        result = BatchResult(pmids=pmids, requests=1)
        url = self.url(pmids)
        shown = url.split("api_key=")[0].rstrip("&")  # never write the key into errors/
        try:
            reply = split_articles(self.client.get(url))
        except (FetchError, PubmedReplyError) as exc:
            reason = str(exc).replace(self.config.api_key or "\0", "***")
            for pmid in pmids:
                result.failed[pmid] = f"efetch of {len(pmids)} PMIDs failed: {reason} ({shown[:200]})"
            return result
        for pmid in pmids:  # match by PMID; extra records PubMed sent are ignored
            data = reply.get(pmid)
            if data is None:
                result.not_found.append(pmid)
                continue
            self.cache.put(_key(pmid), data)
            result.records[pmid] = parse_record(data)
        return result


def _key(pmid: str) -> str:
    return cache_key(f"pubmed:{pmid}", _CACHE_VERSION)
