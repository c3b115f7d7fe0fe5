"""`biomedica enrich ARCHIVE`: add MeSH terms and what else is missing from PubMed, per article.

Reads `articles/` of the complete units, asks efetch for every PMID not enriched yet
(matching answers by PMID), and appends `enrichment/part-*.parquet`. Batches that fail
after the retries are recorded in `errors/enrich-efetch.parquet` (stage `enrich`), which
each run replaces (or removes when nothing failed): the next run asks about every article
without a row again, so the last run's failures are the current ones. Articles without a
PMID are counted, not asked about.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from tqdm import tqdm

from biomedica.archive.enrichment import EnrichmentRow, enriched_article_ids, part_numbers, write_part
from biomedica.archive.errors import ErrorSink
from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.units import completed_units
from biomedica.enrich.config import EnrichConfig
from biomedica.enrich.efetch import EutilsUnreachable, PubmedFetcher
from biomedica.enrich.pubmed_xml import PubmedRecord
from biomedica.io.lock import ArchiveLock
from biomedica.net import NetClient
from biomedica.records import ErrorRecord

STAGE = "enrich"
ERROR_PART = "efetch"
_ARTICLE_COLUMNS = ["article_id", "pmid", "doi", "abstract", "mesh_terms"]


class ArchiveNotReady(FileNotFoundError):
    """The folder holds no complete ingest unit to enrich."""


@dataclass
class EnrichSummary:
    archive: Path
    articles: int = 0  # articles in complete units
    already_enriched: int = 0  # skipped: a row exists from an earlier run
    without_pmid: int = 0
    pmids: int = 0  # distinct PMIDs asked about this run
    from_cache: int = 0
    requests: int = 0  # efetch batches sent (retries not counted)
    retries: int = 0
    enriched: int = 0  # article rows with status ok
    not_found: int = 0  # article rows with status not-found
    failed: int = 0  # articles whose batch failed (errors/enrich-efetch.parquet)
    with_mesh: int = 0
    filled_abstracts: int = 0
    filled_dois: int = 0
    parts: int = 0
    seconds: float = 0.0


def enrich_archive(config: EnrichConfig, client: NetClient | None = None) -> EnrichSummary:
    """Enrich the archive at `config.archive`; re-runs ask only about articles without a row.

    Holds the archive's write lock: two runs would number their parts alike.
    """
    with ArchiveLock(config.archive, "biomedica enrich"):
        return _enrich(config, client)


def _enrich(config: EnrichConfig, client: NetClient | None) -> EnrichSummary:
    started = time.perf_counter()
    root = config.archive.resolve()
    config = config.model_copy(update={"archive": root})
    summary = EnrichSummary(archive=root)
    articles = read_article_ids(root)
    summary.articles = len(articles)
    done = enriched_article_ids(root)
    by_pmid: dict[str, list[dict]] = defaultdict(list)
    for article in articles:
        if article["article_id"] in done:
            summary.already_enriched += 1
            continue
        pmid = clean_pmid(article["pmid"])
        if pmid is None:
            summary.without_pmid += 1
            continue
        by_pmid[pmid].append(article)
    pmids = sorted(by_pmid, key=int)
    summary.pmids = len(pmids)

    fetcher = PubmedFetcher(config, client)
    numbers = part_numbers(root)
    next_part = (max(numbers) + 1) if numbers else 0
    rows: list[EnrichmentRow] = []
    errors: list[ErrorRecord] = []
    with tqdm(total=len(pmids), unit="pmid", desc="enrich", disable=not config.progress, dynamic_ncols=True) as bar:
        try:
            for batch in fetcher.fetch(pmids):
                summary.from_cache += batch.from_cache
                summary.requests += batch.requests
                for pmid, record in batch.records.items():
                    rows += [_row(article, record, summary) for article in by_pmid[pmid]]
                for pmid in batch.not_found:
                    for article in by_pmid[pmid]:
                        rows.append(EnrichmentRow(article_id=article["article_id"], pmid=pmid, status="not-found"))
                        summary.not_found += 1
                for pmid, why in batch.failed.items():
                    for article in by_pmid[pmid]:
                        errors.append(
                            ErrorRecord(
                                id=article["article_id"],
                                stage=STAGE,
                                kind="efetch-failed",
                                message=f"PMID {pmid}: {why}; run `biomedica enrich` again to retry these",
                                source=f"pubmed:{pmid}",
                            )
                        )
                        summary.failed += 1
                if len(rows) >= config.rows_per_part:
                    _flush(root, next_part, rows, summary)
                    next_part += 1
                    rows = []
                bar.update(len(batch.pmids))
        except EutilsUnreachable:  # asked nothing: keep what the cache answered; errors/ stays as it was
            if rows:
                _flush(root, next_part, rows, summary)
            raise
    if rows:
        _flush(root, next_part, rows, summary)
    ErrorSink(root, STAGE).write(ERROR_PART, errors)  # none failed: the previous run's failures are gone
    summary.retries = fetcher.client.stats.as_dict()["retries"]
    summary.seconds = time.perf_counter() - started
    return summary


def read_article_ids(root: Path) -> list[dict]:
    """article_id, pmid, doi, abstract, mesh_terms of every article in a complete unit."""
    layout = ArchiveLayout(root)
    units = completed_units(root)
    if not units:
        raise ArchiveNotReady(
            f"{root} holds no complete ingest unit (no _units/*.json markers): run `biomedica ingest` into it first"
        )
    found: list[dict] = []
    for unit_id in sorted(units):
        path = layout.articles(unit_id)
        if path.exists():
            found += pq.read_table(path, columns=_ARTICLE_COLUMNS).to_pylist()
    return found


def clean_pmid(value: str | None) -> str | None:
    """A PMID as digits (JATS sometimes writes "PMID: 123"); None when absent or not a number."""
    if not value:
        return None
    digits = value.strip().upper().removeprefix("PMID:").strip()
    return digits if digits.isdigit() and int(digits) > 0 else None


def _row(article: dict, record: PubmedRecord, summary: EnrichSummary) -> EnrichmentRow:
    filled: list[str] = []
    abstract = doi = None
    if not article.get("abstract") and record.abstract:
        abstract = record.abstract
        filled.append("abstract")
        summary.filled_abstracts += 1
    if not article.get("doi") and record.doi:
        doi = record.doi
        filled.append("doi")
        summary.filled_dois += 1
    if not article.get("mesh_terms") and record.mesh_terms:
        filled.append("mesh_terms")
    summary.enriched += 1
    summary.with_mesh += bool(record.mesh_terms)
    return EnrichmentRow(
        article_id=article["article_id"],
        pmid=record.pmid,
        status="ok",
        pmcid=record.pmcid,
        mesh_terms=record.mesh_terms,
        mesh_ids=record.mesh_ids,
        mesh_major=record.mesh_major,
        mesh_qualified=record.mesh_qualified,
        publication_types=record.publication_types,
        keywords=record.keywords,
        chemicals=record.chemicals,
        abstract=abstract,
        doi=doi,
        filled=filled,
    )


def _flush(root: Path, number: int, rows: list[EnrichmentRow], summary: EnrichSummary) -> None:
    write_part(root, number, sorted(rows, key=lambda row: row.article_id))
    summary.parts += 1

