"""Metadata enrichment: MeSH terms and missing article fields from NCBI E-utilities, as a side table.

`enrich_archive(EnrichConfig(archive=...))` writes `ARCHIVE/enrichment/part-*.parquet`
keyed by article_id / pmid; the archive's own files are never rewritten.
"""

from biomedica.archive.enrichment import ENRICHMENT_SCHEMA, EnrichmentRow, read_enrichment
from biomedica.enrich.config import EnrichConfig
from biomedica.enrich.efetch import BatchResult, PubmedFetcher
from biomedica.enrich.pubmed_xml import PubmedRecord, PubmedReplyError, parse_record, split_articles
from biomedica.enrich.run import ArchiveNotReady, EnrichSummary, enrich_archive

__all__ = [
    "ENRICHMENT_SCHEMA", "ArchiveNotReady", "BatchResult", "EnrichConfig", "EnrichSummary", "EnrichmentRow",
    "PubmedFetcher", "PubmedRecord", "PubmedReplyError", "enrich_archive", "parse_record", "read_enrichment",
    "split_articles",
]
