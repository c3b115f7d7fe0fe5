"""The enrichment table: `ARCHIVE/enrichment/part-NNNNNN.parquet`, one row per article asked about.

Like every later stage, enrichment never rewrites `articles/` or the shards: it adds parts
keyed by `article_id` (and `pmid`), to be joined with `articles/*.parquet`. Each run
appends new parts for articles that have no row yet; a part is published atomically.
`status` is `ok` (PubMed had the PMID) or `not-found` (PubMed has no such PMID: deleted
or merged). `abstract` and `doi` carry PubMed's value only when the archive lacked one
(`filled` names those fields), so heavy text is never stored twice.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.io.atomic import write_parquet_atomic

ENRICHMENT_DIR = "enrichment"
_PART = re.compile(r"^part-(\d{6})\.parquet$")


@dataclass
class EnrichmentRow:
    article_id: str
    pmid: str
    status: str  # ok | not-found
    pmcid: str | None = None  # as PubMed links it (a check on the PMID match)
    mesh_terms: list[str] = field(default_factory=list)
    mesh_ids: list[str] = field(default_factory=list)
    mesh_major: list[str] = field(default_factory=list)
    mesh_qualified: list[str] = field(default_factory=list)
    publication_types: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    chemicals: list[str] = field(default_factory=list)
    abstract: str | None = None  # only when the archive's article had none
    doi: str | None = None  # only when the archive's article had none
    filled: list[str] = field(default_factory=list)  # article fields PubMed supplied: abstract, doi, mesh_terms
    source: str = "pubmed-efetch"


_STR = pa.string()
_LIST = pa.list_(pa.string())
ENRICHMENT_SCHEMA = pa.schema(
    [
        ("article_id", _STR),
        ("pmid", _STR),
        ("status", _STR),
        ("pmcid", _STR),
        ("mesh_terms", _LIST),
        ("mesh_ids", _LIST),
        ("mesh_major", _LIST),
        ("mesh_qualified", _LIST),
        ("publication_types", _LIST),
        ("keywords", _LIST),
        ("chemicals", _LIST),
        ("abstract", _STR),
        ("doi", _STR),
        ("filled", _LIST),
        ("source", _STR),
    ]
)
assert [f.name for f in fields(EnrichmentRow)] == ENRICHMENT_SCHEMA.names


def enrichment_dir(archive: Path) -> Path:
    return Path(archive) / ENRICHMENT_DIR


def part_numbers(archive: Path) -> list[int]:
    folder = enrichment_dir(archive)
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _PART.match(p.name)))


def enriched_article_ids(archive: Path) -> set[str]:
    """Articles that already have a row in some part (they are not asked about again)."""
    done: set[str] = set()
    for number in part_numbers(archive):
        path = enrichment_dir(archive) / f"part-{number:06d}.parquet"
        done.update(pq.read_table(path, columns=["article_id"]).column("article_id").to_pylist())
    return done


def read_enrichment(archive: Path) -> pa.Table:
    """All enrichment rows of the archive (empty table with the schema when there are none)."""
    tables = [
        pq.read_table(enrichment_dir(archive) / f"part-{n:06d}.parquet", schema=ENRICHMENT_SCHEMA)
        for n in part_numbers(archive)
    ]
    return pa.concat_tables(tables) if tables else ENRICHMENT_SCHEMA.empty_table()


def write_part(archive: Path, number: int, rows: list[EnrichmentRow]) -> Path:
    """Publish one part atomically (temporary name, fsync, rename)."""
    final = enrichment_dir(archive) / f"part-{number:06d}.parquet"
    table = pa.Table.from_pylist([asdict(row) for row in rows], schema=ENRICHMENT_SCHEMA)
    write_parquet_atomic(final, table, compression="zstd")
    return final
