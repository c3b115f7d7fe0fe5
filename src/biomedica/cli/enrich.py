"""`biomedica enrich`: MeSH terms, publication types and missing abstracts/DOIs from PubMed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from biomedica.cli.errors import fail, validation_message
from biomedica.cli.summary import print_summary

if TYPE_CHECKING:
    from biomedica.enrich import EnrichSummary


def enrich(
    archive: Path = typer.Argument(..., help="Archive folder written by `biomedica ingest`."),
    api_key: str = typer.Option(None, envvar="NCBI_API_KEY", help="NCBI API key: 10 requests/s instead of 3."),
    email: str = typer.Option(None, help="Contact e-mail sent to NCBI with each request."),
    batch_size: int = typer.Option(200, min=1, max=200, help="PMIDs per efetch request."),
    base_url: str = typer.Option(None, help="E-utilities base URL (default $BIOMEDICA_EUTILS_URL, else NCBI's)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Add MeSH terms, publication types and missing abstracts/DOIs from PubMed (enrichment/*.parquet).

    Exit status 2 when nothing could be done (E-utilities unreachable, not an archive), 1 when
    some PMIDs failed (errors/enrich-efetch.parquet; a rerun asks for them again).
    """
    from pydantic import ValidationError

    from biomedica.enrich import EnrichConfig, enrich_archive

    options = {"archive": archive, "api_key": api_key, "email": email, "batch_size": batch_size, "progress": progress}
    if base_url:
        options["base_url"] = base_url
    try:
        summary = enrich_archive(EnrichConfig(**options))
    except ValidationError as exc:
        fail(validation_message(exc))
    except (FileNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
    print_enrich_summary(summary)
    if summary.failed:
        fail(f"{summary.failed:,} of {summary.articles - summary.already_enriched - summary.without_pmid:,} articles asked "
             f"about could not be enriched (errors/enrich-efetch.parquet in {summary.archive}); rerun "
             "`biomedica enrich` to retry them", code=1)


def print_enrich_summary(summary: EnrichSummary) -> None:
    """What was asked of PubMed, what came back, and what to retry."""
    print_summary("biomedica enrich", [
        ("articles (already enriched)", f"{summary.articles:,} ({summary.already_enriched:,})"),
        ("without PMID (not asked)", f"{summary.without_pmid:,}"),
        ("PMIDs asked (from cache)", f"{summary.pmids:,} ({summary.from_cache:,})"),
        ("efetch requests (retries)", f"{summary.requests:,} ({summary.retries:,})"),
        ("enriched (with MeSH)", f"{summary.enriched:,} ({summary.with_mesh:,})"),
        ("filled abstracts / DOIs", f"{summary.filled_abstracts:,} / {summary.filled_dois:,}"),
        ("PMID unknown to PubMed", f"{summary.not_found:,}"),
        ("failed, retry later (errors/enrich-*)", f"{summary.failed:,}"),
        ("parts written", f"{summary.parts:,}"),
        ("time", f"{summary.seconds:.1f} s"),
        ("archive", str(summary.archive)),
    ])
