"""Search filters: the API's query parameters (SearchFilters), the per-doc columns they test (FilterColumns).

Archive filters (licence group, year, journal, article type, has-mentions) come from the
docs table and are also pushed into tantivy; annotation filters (panel type, concepts,
cluster, canonical-only, quality flags) come from the annotation tables, joined by the index
run with DuckDB (`build_filter_table`) and rebuilt when they change. Both kinds end up as
numpy arrays per doc id, stored in `filters.arrow` and memory-mapped by readers, so a mask
over all docs costs a few vector operations and a filtered total is exact. Facet counts are
bincounts over the same arrays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from biomedica.archive.annotations import AnnotationStore
from biomedica.io.digest import file_sha256

LicenseGroup = Literal["commercial", "noncommercial", "other"]
ANY_FLAG = "any"
FILTER_TABLES = ("dedup", "quality", "panels", "concepts", "labels", "clusters")
NAMES_KEY = b"biomedica.names"  # schema metadata of filters.arrow: the value names behind each coded column

FILTERS_SCHEMA = pa.schema([
    ("doc", pa.int64()),
    ("live", pa.bool_()),  # False: a superseded copy (an older or duplicate copy of its article)
    ("panel_type", pa.string()),  # single | multiple | null (panels not computed)
    ("concepts", pa.list_(pa.string())),  # expert labels (global + local) where present, else zero-shot ones
    ("cluster", pa.int32()),
    ("canonical", pa.bool_()),  # False: a near/exact duplicate that is not its group's canonical copy
    ("dup_group", pa.string()),
    ("flags", pa.list_(pa.string())),  # quality flags
])


class SearchFilters(BaseModel):
    """What a search may be restricted to (the API's query parameters); empty = no restriction."""

    model_config = ConfigDict(extra="forbid")

    license_group: list[LicenseGroup] = Field(default_factory=list)
    year_from: int | None = Field(default=None, ge=0, le=9999)
    year_to: int | None = Field(default=None, ge=0, le=9999)
    journal: list[str] = Field(default_factory=list)
    article_type: list[str] = Field(default_factory=list)
    panel_type: Literal["single", "multiple"] | None = None
    concept: list[str] = Field(default_factory=list)
    cluster: list[int] = Field(default_factory=list)
    canonical_only: bool = False
    exclude_flags: list[str] = Field(default_factory=list, description="quality flags to leave out; ['any'] for all")
    has_mentions: bool | None = None

    @model_validator(mode="after")
    def _years_in_order(self) -> SearchFilters:
        if self.year_from is not None and self.year_to is not None and self.year_from > self.year_to:
            raise ValueError(f"year_from ({self.year_from}) is after year_to ({self.year_to})")
        return self

    @property
    def uses_annotations(self) -> bool:
        """True when a filter needs the annotation columns (applied by numpy mask, not inside tantivy)."""
        return bool(self.panel_type or self.concept or self.cluster or self.canonical_only or self.exclude_flags)


FILTER_NEEDS = {  # annotation filter -> (tables any of which provides it, the command that writes them)
    "panel_type": (("panels",), "biomedica curate run ARCHIVE"),
    "concept": (("concepts", "labels"), "biomedica curate zeroshot ARCHIVE (or annotate --export)"),
    "cluster": (("clusters",), "biomedica curate cluster ARCHIVE"),
    "canonical_only": (("dedup",), "biomedica curate run ARCHIVE"),
    "exclude_flags": (("quality",), "biomedica curate run ARCHIVE"),
}


class FilterUnavailable(ValueError):
    """A filter on an annotation the index was built without: it would silently match nothing (or everything)."""


def check_available(filters: SearchFilters, tables: set[str]) -> None:
    """Raise FilterUnavailable naming the first filter in use whose annotation table the index lacks, and the fix."""
    for name, (needs, command) in FILTER_NEEDS.items():
        if getattr(filters, name) and not tables.intersection(needs):
            files = " or ".join(f"annotations/{t}.parquet" for t in needs)
            raise FilterUnavailable(f"{name} needs {files}, which this index was built without: run `{command}`, "
                                    "then `biomedica index ARCHIVE`")


@dataclass
class Coded:
    """A string column as codes into `names` (-1 = null)."""

    codes: np.ndarray
    names: list[str]
    _lookup: dict[str, int] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, column: pa.ChunkedArray | pa.Array) -> Coded:
        encoded = pc.dictionary_encode(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
        return cls(codes, encoded.dictionary.to_pylist())

    @property
    def lookup(self) -> dict[str, int]:
        if self._lookup is None:
            self._lookup = {name: i for i, name in enumerate(self.names)}
        return self._lookup

    def select(self, wanted: list[str]) -> np.ndarray:
        return np.isin(self.codes, [self.lookup[w] for w in wanted if w in self.lookup])

    def counts(self, selected: np.ndarray) -> dict[str, int]:
        codes = self.codes[selected]
        counts = np.bincount(codes[codes >= 0], minlength=len(self.names))
        return {self.names[i]: int(counts[i]) for i in np.flatnonzero(counts)}


@dataclass
class Multi:
    """A list<string> column: per-doc value ranges `offsets[i]:offsets[i+1]` into `codes` (into `names`)."""

    offsets: np.ndarray
    codes: np.ndarray
    names: list[str]
    _rows: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def of(cls, column: pa.ChunkedArray | pa.Array) -> Multi:
        lists = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        values = Coded.of(pc.list_flatten(lists))  # null lists contribute nothing, as their length 0 says
        return cls(offsets, values.codes, values.names)

    @property
    def rows(self) -> np.ndarray:
        """The doc of each value."""
        if self._rows is None:
            self._rows = np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))
        return self._rows

    def any_of(self, wanted: list[str] | None) -> np.ndarray:
        """Docs holding any of `wanted` (None: any value at all)."""
        n = len(self.offsets) - 1
        if wanted is None:
            return np.diff(self.offsets) > 0
        lookup = {name: i for i, name in enumerate(self.names)}  # a few hundred concepts or flags: cheap
        hit = np.isin(self.codes, [lookup[w] for w in wanted if w in lookup])
        out = np.zeros(n, bool)
        out[self.rows[hit]] = True
        return out

    def counts(self, selected: np.ndarray) -> dict[str, int]:
        chosen = self.codes[selected[self.rows]]
        counts = np.bincount(chosen[chosen >= 0], minlength=len(self.names))
        return {self.names[i]: int(counts[i]) for i in np.flatnonzero(counts)}


@dataclass
class FilterColumns:
    """Every filterable value per doc id, as numpy arrays (length = doc count).

    Stored by the index run as one Arrow IPC file of fixed-width codes (`write_filter_columns`)
    and memory-mapped by readers (`open`): opening costs milliseconds and no memory at any size;
    a query's mask reads the columns it tests.
    """

    live: np.ndarray
    license_group: Coded
    year: np.ndarray  # int32, -1 = unknown
    journal: Coded
    article_type: Coded
    has_mentions: np.ndarray
    panel_type: Coded
    concepts: Multi
    cluster: np.ndarray  # int32, -1 = none
    canonical: np.ndarray
    flags: Multi
    dup_group: np.ndarray  # int32 code of the doc's dedup group, -1 = none (group names are not kept)

    @property
    def size(self) -> int:
        return len(self.live)

    @classmethod
    def load(cls, docs: pa.Table, filters: pa.Table) -> FilterColumns:
        """From the docs table and build_filter_table's rows (both in doc order, equal length), in memory."""
        if filters.num_rows != docs.num_rows:
            raise ValueError(f"{filters.num_rows} filter rows for {docs.num_rows} docs; run `biomedica index ARCHIVE` again")
        return cls(
            live=_bools(filters.column("live"), False),
            license_group=Coded.of(docs.column("license_group")),
            year=pc.fill_null(docs.column("year"), -1).to_numpy().astype(np.int32),
            journal=Coded.of(docs.column("journal")),
            article_type=Coded.of(docs.column("article_type")),
            has_mentions=_bools(docs.column("has_mentions"), False),
            panel_type=Coded.of(filters.column("panel_type")),
            concepts=Multi.of(filters.column("concepts")),
            cluster=pc.fill_null(filters.column("cluster"), -1).to_numpy().astype(np.int32),
            canonical=_bools(filters.column("canonical"), True),
            flags=Multi.of(filters.column("flags")),
            dup_group=Coded.of(filters.column("dup_group")).codes,
        )

    def table(self) -> pa.Table:
        """What `open` maps back: one column per field (bools as uint8, lists as large_list of codes), names in metadata."""
        columns, names = {}, {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Coded):
                columns[f.name], names[f.name] = pa.array(value.codes, pa.int32()), value.names
            elif isinstance(value, Multi):
                columns[f.name] = pa.LargeListArray.from_arrays(pa.array(value.offsets, pa.int64()),
                                                                pa.array(value.codes, pa.int32()))
                names[f.name] = value.names
            elif value.dtype == bool:
                columns[f.name] = pa.array(value.view(np.uint8))
            else:
                columns[f.name] = pa.array(np.asarray(value, np.int32))
        return pa.table(columns).replace_schema_metadata({NAMES_KEY: json.dumps(names)})

    @classmethod
    def open(cls, path: Path, size: int) -> FilterColumns:
        """The first `size` docs' columns of a `write_filter_columns` file, memory-mapped (no copy).

        Rows beyond `size` belong to a run that died before its state.json: they are not exposed.
        """
        from biomedica.search.docs import map_ipc

        table = map_ipc(path)
        if table.num_rows < size or NAMES_KEY not in (table.schema.metadata or {}):
            raise ValueError(f"{path}: holds {table.num_rows} docs' filters, the index {size}")
        names = json.loads(table.schema.metadata[NAMES_KEY])
        values = {}
        for f in fields(cls):
            column = table.column(f.name)
            array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
            if f.name in names and pa.types.is_large_list(array.type):
                offsets = np.frombuffer(array.buffers()[1], np.int64, count=len(array) + 1) if len(array) else np.zeros(1, np.int64)
                offsets = offsets[: size + 1]
                values[f.name] = Multi(offsets, _view(array.values)[: int(offsets[-1])], names[f.name])
            elif f.name in names:
                values[f.name] = Coded(_view(array)[:size], names[f.name])
            elif array.type == pa.uint8():
                values[f.name] = _view(array)[:size].view(bool)
            else:
                values[f.name] = _view(array)[:size]
        return cls(**values)

    def mask(self, filters: SearchFilters, archive_filters: bool = True) -> np.ndarray:
        """Bool per doc: live and passing every filter (`archive_filters=False`: the annotation ones only)."""
        m = self.live.copy()
        if archive_filters:
            if filters.license_group:
                m &= self.license_group.select(list(filters.license_group))
            if filters.year_from is not None or filters.year_to is not None:
                m &= self.year >= (filters.year_from if filters.year_from is not None else 0)
                if filters.year_to is not None:
                    m &= self.year <= filters.year_to
            if filters.journal:
                m &= self.journal.select(filters.journal)
            if filters.article_type:
                m &= self.article_type.select(filters.article_type)
            if filters.has_mentions is not None:
                m &= self.has_mentions == filters.has_mentions
        if filters.panel_type:
            m &= self.panel_type.select([filters.panel_type])
        if filters.concept:
            m &= self.concepts.any_of(filters.concept)
        if filters.cluster:
            m &= np.isin(self.cluster, filters.cluster)
        if filters.canonical_only:
            m &= self.canonical
        if filters.exclude_flags:
            m &= ~self.flags.any_of(None if ANY_FLAG in filters.exclude_flags else filters.exclude_flags)
        return m


def _bools(column: pa.ChunkedArray, default: bool) -> np.ndarray:
    return pc.fill_null(column, default).to_numpy(zero_copy_only=False).astype(bool)


def annotation_fingerprint(store: AnnotationStore) -> dict[str, str]:
    """size:mtime:sha256 of each filter table present: filters.arrow is rebuilt when this changes."""
    found = {}
    for name in FILTER_TABLES:
        path = store.table_path(name)
        if path.is_file():
            stat = path.stat()
            found[name] = f"{stat.st_size}:{stat.st_mtime_ns}:{file_sha256(path)}"
    return found


def build_filter_table(docs: pa.Table, live: np.ndarray, store: AnnotationStore) -> pa.Table:
    """FILTERS_SCHEMA rows per doc: the annotation tables (by sample key) joined onto the docs with DuckDB."""
    import duckdb

    present = [name for name in FILTER_TABLES if store.has(name)]
    con = duckdb.connect()
    try:
        base = pa.table({"doc": docs.column("doc"), "key": docs.column("key"), "live": pa.array(live, pa.bool_())})
        con.register("docs", base)
        joins = []
        for name in present:
            con.read_parquet(str(store.table_path(name))).create_view(name)  # a path, never pasted into SQL
            joins.append(f"LEFT JOIN (SELECT * FROM {name} QUALIFY row_number() OVER (PARTITION BY key) = 1) {name} "
                         f"USING (key)")
        empty = "CAST([] AS VARCHAR[])"
        def one(column: str) -> str:  # [value] or [] (no lambdas: their syntax differs across DuckDB versions)
            return f"CASE WHEN {column} IS NULL THEN {empty} ELSE [{column}] END"

        zeroshot = (f"list_concat({one('concepts.zs_global')}, {one('concepts.zs_local')})"
                    if "concepts" in present else empty)
        if "labels" in present:
            expert = f"list_concat(coalesce(labels.label_global, {empty}), coalesce(labels.label_local, {empty}))"
            concepts = f"CASE WHEN len({expert}) > 0 THEN {expert} ELSE {zeroshot} END"
        else:
            concepts = zeroshot
        sql = f"""
            SELECT doc, live,
                   {"panels.panel_type" if "panels" in present else "CAST(NULL AS VARCHAR)"} AS panel_type,
                   list_distinct({concepts}) AS concepts,
                   {"clusters.cluster" if "clusters" in present else "CAST(NULL AS INTEGER)"} AS cluster,
                   {"coalesce(dedup.canonical, TRUE)" if "dedup" in present else "TRUE"} AS canonical,
                   {"dedup.dup_group" if "dedup" in present else "CAST(NULL AS VARCHAR)"} AS dup_group,
                   {f"coalesce(quality.flags, {empty})" if "quality" in present else empty} AS flags
            FROM docs {' '.join(joins)}
            ORDER BY doc
        """
        relation = con.sql(sql)  # DuckDB 2: to_arrow_table; before: arrow()
        table = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
    finally:
        con.close()
    return table.cast(FILTERS_SCHEMA)


def write_filter_columns(path: Path, docs: pa.Table, filters: pa.Table) -> None:
    """Publish FilterColumns of `docs` and `filters` (build_filter_table's rows) as one Arrow IPC file, atomically.

    One record batch of fixed-width columns: a reader maps each as a numpy array in place.
    """
    from biomedica.io.atomic import atomic_path

    table = FilterColumns.load(docs, filters).table()
    with atomic_path(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks(), max_chunksize=max(table.num_rows, 1))


def read_live(path: Path, size: int) -> np.ndarray | None:
    """The `live` flags of the first `size` docs recorded at `path` (a copy), None when it holds fewer (or none)."""
    try:
        return np.array(FilterColumns.open(path, size).live, bool)
    except (OSError, ValueError, pa.ArrowInvalid):
        return None


def _view(array: pa.Array) -> np.ndarray:
    """A numpy view of a null-free fixed-width Arrow array (for a memory-mapped one: the mapped bytes, read-only).

    np.frombuffer, not Array.to_numpy: that imports pandas on first use (0.2 s and 40 MB at every server start).
    """
    dtype = np.dtype(array.type.to_pandas_dtype())
    if array.null_count:
        raise ValueError("a filter column holds nulls")
    return np.frombuffer(array.buffers()[1], dtype, count=len(array), offset=array.offset * dtype.itemsize)
