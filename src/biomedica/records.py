"""The records every stage exchanges: figure (one per sample), article, and error.

These dataclasses are the in-memory form of the contracts in DESIGN.md; the Arrow
schemas below are their on-disk form (one Parquet row each). Stages depend on this
module, never the other way round.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = "1.0"

LICENSE_GROUPS = ("commercial", "noncommercial", "other")


@dataclass
class FigureRecord:
    """One figure graphic with its caption: the `.json` of a sample and one shard Parquet row."""

    key: str  # PMC<id>_<nnn>: n = position of the graphic in document order
    pmcid: str | None
    version: int | None
    pmid: str | None
    doi: str | None
    fig_id: str | None
    fig_label: str | None
    fig_type: str | None
    caption_title: str | None
    caption: str
    mentions: list[str] = field(default_factory=list)
    graphic_href: str | None = None
    image_name: str | None = None  # the file the graphic resolved to
    image_format: str | None = None  # stored format: "jpg" | "png"
    width: int | None = None
    height: int | None = None
    sha256: str | None = None  # of the stored bytes
    phash: str | None = None  # 64-bit perceptual hash, 16 hex digits
    license: str | None = None  # normalised, e.g. "CC BY 4.0"
    license_group: str = "other"  # commercial | noncommercial | other
    figure_license: str | None = None  # the figure's own <permissions>, when present
    article_title: str | None = None
    journal: str | None = None
    pub_date: str | None = None  # ISO 8601 (YYYY, YYYY-MM or YYYY-MM-DD)
    year: int | None = None
    article_type: str | None = None
    keywords: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    # the caption with every formula as TeX (<tex-math>, else derived from MathML); None without math.
    # Archives written before it lack the column: readers treat it as null.
    caption_tex: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def index_row(self) -> dict[str, Any]:
        """The record's columns in its shard's Parquet index (the same fields as `.json` for a figure)."""
        return self.to_dict()


@dataclass
class SubfigureRecord(FigureRecord):
    """One panel crop of a figure (`select --unit subfigure`): the figure record of the crop plus where it came from.

    The FigureRecord fields describe the crop (key `<figure key>_p<panel>`, width/height/sha256/phash
    of the crop's bytes, caption = the sample's txt: the subcaption, or the figure's caption when the
    panel has none). Its `.json` nests the provenance under `subfigure`; its shard index row carries
    it flat (SUBFIGURE_INDEX_FIELDS), so DuckDB/pandas filter on it without parsing JSON.
    """

    parent_key: str = ""
    panel: int = 0
    x0: int = 0
    y0: int = 0
    x1: int = 0  # exclusive, pixels of the parent's stored image
    y1: int = 0
    label: str | None = None
    subfigure_score: float | None = None
    subfigure_method: str | None = None
    figure_caption: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `.json` member: the figure fields plus `subfigure` {parent_key, panel, box, label, score, method, figure_caption}."""
        flat = asdict(self)
        record = {name: flat[name] for name in FIGURE_SCHEMA.names}
        record["subfigure"] = {
            "parent_key": self.parent_key, "panel": self.panel, "box": [self.x0, self.y0, self.x1, self.y1],
            "label": self.label, "score": self.subfigure_score, "method": self.subfigure_method,
            "figure_caption": self.figure_caption,
        }
        return record

    def index_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainingCopyRecord(FigureRecord):
    """A training-ready copy (`select --image-size`): the figure record of the resized copy plus its original.

    The FigureRecord fields describe the copy (width/height/sha256/image_format of the resized bytes;
    key, caption, licence... unchanged: the original key); original_* describe the archive's stored
    image it was made from, so a copy can always be traced (and checked) against the archive. phash
    stays the original's: it is a content hash, and the copy shows the same content. Its `.json`
    nests the provenance under `original`; its shard index row carries it flat (TRAINING_INDEX_FIELDS).
    """

    original_image_format: str | None = None  # "jpg" | "png": the archive member's extension
    original_width: int | None = None
    original_height: int | None = None
    original_sha256: str | None = None  # of the archive member's bytes
    original_shard: str | None = None  # "<group>/NNNNNN.tar" in the archive

    def to_dict(self) -> dict[str, Any]:
        """The `.json` member: the figure fields plus `original` {image_format, width, height, sha256, shard}."""
        flat = asdict(self)
        record = {name: flat[name] for name in FIGURE_SCHEMA.names}
        record["original"] = {
            "image_format": self.original_image_format, "width": self.original_width,
            "height": self.original_height, "sha256": self.original_sha256, "shard": self.original_shard,
        }
        return record

    def index_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Author:
    name: str  # display name: "Given Surname" or the collab name
    surname: str | None = None
    given_names: str | None = None
    orcid: str | None = None
    affiliations: list[str] = field(default_factory=list)


@dataclass
class ArticleRecord:
    """Heavy article-level fields, stored once per article in articles/*.parquet."""

    article_id: str  # key prefix: PMC<id>, or a stable id when the XML has no PMCID
    pmcid: str | None
    version: int | None
    pmid: str | None
    doi: str | None
    publisher_id: str | None
    title: str | None
    abstract: str | None
    journal: str | None
    journal_abbrev: str | None
    publisher: str | None
    issn: str | None
    pub_date: str | None
    year: int | None
    article_type: str | None
    subjects: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    license: str | None = None
    license_url: str | None = None
    license_group: str = "other"
    copyright: str | None = None
    n_references: int = 0
    cited_pmids: list[str] = field(default_factory=list)
    cited_dois: list[str] = field(default_factory=list)
    body_text: str | None = None
    n_figures: int = 0
    n_graphics: int = 0
    mesh_terms: list[str] = field(default_factory=list)  # filled by `biomedica enrich`
    source: str | None = None  # where the XML came from (path or URL)
    dialect: str | None = None  # pmc-classic | pmc-jats14 | europepmc | oai-pmh | efetch | publisher

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ErrorRecord:
    """One article or figure that failed, with the reason; one row of errors/*.parquet."""

    id: str  # article id, sample key, or the source path when no id could be read
    stage: str  # e.g. "ingest"
    kind: str  # short machine-readable reason: xml-syntax, no-article, image-missing, ...
    message: str  # what went wrong and how to fix it
    source: str | None = None  # the file or URL involved

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_STR = pa.string()
_LIST_STR = pa.list_(pa.string())

FIGURE_SCHEMA = pa.schema(
    [
        ("key", _STR),
        ("pmcid", _STR),
        ("version", pa.int32()),
        ("pmid", _STR),
        ("doi", _STR),
        ("fig_id", _STR),
        ("fig_label", _STR),
        ("fig_type", _STR),
        ("caption_title", _STR),
        ("caption", _STR),
        ("mentions", _LIST_STR),
        ("graphic_href", _STR),
        ("image_name", _STR),
        ("image_format", _STR),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("sha256", _STR),
        ("phash", _STR),
        ("license", _STR),
        ("license_group", _STR),
        ("figure_license", _STR),
        ("article_title", _STR),
        ("journal", _STR),
        ("pub_date", _STR),
        ("year", pa.int32()),
        ("article_type", _STR),
        ("keywords", _LIST_STR),
        ("subjects", _LIST_STR),
        ("caption_tex", _STR),
    ]
)
# columns added to FIGURE_SCHEMA after release 1.0: an older shard index lacks them (read as null)
OPTIONAL_FIGURE_COLUMNS = frozenset({"caption_tex"})

AUTHOR_TYPE = pa.struct(
    [
        ("name", _STR),
        ("surname", _STR),
        ("given_names", _STR),
        ("orcid", _STR),
        ("affiliations", _LIST_STR),
    ]
)

ARTICLE_SCHEMA = pa.schema(
    [
        ("article_id", _STR),
        ("pmcid", _STR),
        ("version", pa.int32()),
        ("pmid", _STR),
        ("doi", _STR),
        ("publisher_id", _STR),
        ("title", _STR),
        ("abstract", _STR),
        ("journal", _STR),
        ("journal_abbrev", _STR),
        ("publisher", _STR),
        ("issn", _STR),
        ("pub_date", _STR),
        ("year", pa.int32()),
        ("article_type", _STR),
        ("subjects", _LIST_STR),
        ("keywords", _LIST_STR),
        ("authors", pa.list_(AUTHOR_TYPE)),
        ("license", _STR),
        ("license_url", _STR),
        ("license_group", _STR),
        ("copyright", _STR),
        ("n_references", pa.int32()),
        ("cited_pmids", _LIST_STR),
        ("cited_dois", _LIST_STR),
        ("body_text", _STR),
        ("n_figures", pa.int32()),
        ("n_graphics", pa.int32()),
        ("mesh_terms", _LIST_STR),
        ("source", _STR),
        ("dialect", _STR),
    ]
)

ERROR_SCHEMA = pa.schema(
    [
        ("id", _STR),
        ("stage", _STR),
        ("kind", _STR),
        ("message", _STR),
        ("source", _STR),
    ]
)

# Columns a shard's Parquet adds to the figure record: where each member lies in the tar,
# so a reader can seek to one sample without scanning the shard.
SHARD_INDEX_FIELDS = [
    ("shard", _STR),
    ("image_offset", pa.int64()),  # byte offset of the image member's data in the tar
    ("image_size", pa.int64()),
    ("txt_offset", pa.int64()),
    ("txt_size", pa.int64()),
    ("json_offset", pa.int64()),
    ("json_size", pa.int64()),
]
SHARD_SCHEMA = pa.schema(list(FIGURE_SCHEMA) + [pa.field(n, t) for n, t in SHARD_INDEX_FIELDS])

# Columns a subfigure shard's index (select --unit subfigure) adds after SHARD_SCHEMA's: SubfigureRecord's own fields.
SUBFIGURE_INDEX_FIELDS = [
    ("parent_key", _STR),
    ("panel", pa.int16()),
    ("x0", pa.int32()),
    ("y0", pa.int32()),
    ("x1", pa.int32()),
    ("y1", pa.int32()),
    ("label", _STR),
    ("subfigure_score", pa.float32()),
    ("subfigure_method", _STR),
    ("figure_caption", _STR),
]
SUBFIGURE_SHARD_SCHEMA = pa.schema(list(SHARD_SCHEMA) + [pa.field(n, t) for n, t in SUBFIGURE_INDEX_FIELDS])

# Columns a training-ready shard's index (select --image-size, --unit figure) adds after SHARD_SCHEMA's:
# TrainingCopyRecord's own fields, the archive image the copy was made from.
TRAINING_INDEX_FIELDS = [
    ("original_image_format", _STR),
    ("original_width", pa.int32()),
    ("original_height", pa.int32()),
    ("original_sha256", _STR),
    ("original_shard", _STR),
]
TRAINING_SHARD_SCHEMA = pa.schema(list(SHARD_SCHEMA) + [pa.field(n, t) for n, t in TRAINING_INDEX_FIELDS])


def _check_schema_matches(cls: type, schema: pa.Schema) -> None:
    names = [f.name for f in fields(cls)]
    if names != schema.names:
        raise AssertionError(f"{cls.__name__} fields and its Arrow schema disagree: {names} vs {schema.names}")


_check_schema_matches(FigureRecord, FIGURE_SCHEMA)
_check_schema_matches(ArticleRecord, ARTICLE_SCHEMA)
_check_schema_matches(ErrorRecord, ERROR_SCHEMA)
_check_schema_matches(SubfigureRecord, pa.schema(list(FIGURE_SCHEMA) + [pa.field(n, t) for n, t in SUBFIGURE_INDEX_FIELDS]))
_check_schema_matches(TrainingCopyRecord, pa.schema(list(FIGURE_SCHEMA) + [pa.field(n, t) for n, t in TRAINING_INDEX_FIELDS]))
