"""SearchIndex: one open index (docs table, filter columns, tantivy, vectors), what serve queries.

Opening reads state.json and memory-maps the rest: the docs parts and filters.arrow (Arrow
IPC, zero-copy), tantivy; vector indexes open on first use, doc_of's key order (key_order.npy)
on the first lookup. So an open takes milliseconds and no memory at any size; what becomes
resident is what queries touch. What the index holds is what state.json says: docs parts of
a run that died before writing it are not read.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from biomedica.search.docs import read_docs, read_key_order
from biomedica.search.filters import FilterColumns, SearchFilters, annotation_fingerprint, check_available
from biomedica.search.keyword import KeywordHits, KeywordSearcher
from biomedica.search.layout import SCHEMA_VERSION, IndexLayout

JOURNAL_FACETS = 20
CONCEPT_FACETS = 30


class IndexMissing(FileNotFoundError):
    """No (readable) search index in the folder; the message says what to run."""

    def __init__(self, index_dir: Path, why: str = "no search index") -> None:
        super().__init__(f"{index_dir}: {why}; run `biomedica index ARCHIVE`")


def read_state(layout: IndexLayout) -> dict | None:
    """state.json, or None when no index run finished there."""
    try:
        state = json.loads(layout.state.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise IndexMissing(layout.root, f"state.json is unreadable ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("schema_version") != SCHEMA_VERSION:
        found = state.get("schema_version") if isinstance(state, dict) else None
        raise IndexMissing(layout.root, f"index format {found}, this biomedica reads format {SCHEMA_VERSION}: "
                                        "delete the folder")
    return state


class SearchIndex:
    """A read-only view of one index folder."""

    def __init__(self, layout: IndexLayout, archive: Path, state: dict) -> None:
        self.layout = layout
        self.archive = Path(archive)
        self.state = state
        self.docs: pa.Table = read_docs(layout, through_batch=state.get("batch", 0))
        if self.docs.num_rows != state.get("docs", 0):
            raise IndexMissing(layout.root, f"docs table has {self.docs.num_rows} rows, state.json says "
                                            f"{state.get('docs', 0)}")
        try:  # rows beyond the docs: a run that died before its state.json
            self.columns = FilterColumns.open(layout.filters, self.docs.num_rows)
        except (OSError, ValueError, pa.ArrowInvalid) as exc:
            raise IndexMissing(layout.root, f"its filter columns are unreadable ({type(exc).__name__})") from None
        self._keyword = KeywordSearcher(layout.keyword, doc_limit=self.docs.num_rows) if self.docs.num_rows else None
        self._vectors: dict[tuple[str, str], Any] = {}
        self._key_order: np.ndarray | None = None  # doc ids sorted by key (stable): doc_of's binary search, lazy

    @classmethod
    def open(cls, index_dir: Path, archive: Path) -> SearchIndex:
        layout = IndexLayout(Path(index_dir))
        state = read_state(layout)
        if state is None:
            raise IndexMissing(Path(index_dir))
        return cls(layout, archive, state)

    @property
    def size(self) -> int:
        return self.docs.num_rows

    def doc_of(self, key: str) -> int | None:
        """The live doc of a sample key (keys repeat across superseded copies; else the first copy), None if absent.

        A binary search over the doc ids sorted by key (the index run's key_order.npy, mapped on
        the first lookup; sorted here only when that file is missing), not a dict of every key:
        at 24M docs that dict would hold gigabytes of Python strings.
        """
        keys = self.docs.column("key")
        if self._key_order is None:
            order = read_key_order(self.layout, self.size)
            if order is None:
                order = np.asarray(pc.sort_indices(keys).to_numpy(), np.int64) if self.size else np.zeros(0, np.int64)
            self._key_order = order
        order = self._key_order
        at = bisect_left(range(len(order)), key, key=lambda i: keys[int(order[i])].as_py())
        first = None
        while at < len(order) and keys[int(order[at])].as_py() == key:
            doc = int(order[at])
            if self.columns.live[doc]:
                return doc
            first = doc if first is None else first
            at += 1
        return first

    def docs_of(self, keys: list[str]) -> np.ndarray:
        """`doc_of` of many keys at once (one vectorised pass over the keys column): int64 per key, -1 if absent."""
        wanted = pa.array([str(k) for k in keys], pa.string())
        if not len(wanted) or not self.size:
            return np.full(len(wanted), -1, np.int64)
        at = pc.fill_null(pc.index_in(self.docs.column("key"), value_set=wanted), -1).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(at >= 0)
        # per wanted key: its live doc first, then the lowest doc id
        order = np.lexsort((rows, ~np.asarray(self.columns.live)[rows], at[rows]))
        rows, which = rows[order], at[rows][order]
        first = np.concatenate([[True], which[1:] != which[:-1]]) if len(which) else np.zeros(0, bool)
        found = np.full(len(wanted), -1, np.int64)
        found[which[first]] = rows[first]
        # repeated keys in `keys`: index_in matched the first occurrence only
        return found[pc.fill_null(pc.index_in(wanted, value_set=wanted), -1).to_numpy(zero_copy_only=False)]

    def row(self, doc: int) -> dict:
        """The docs-table row of `doc`."""
        if not 0 <= doc < self.size:
            raise KeyError(doc)
        return self.docs.slice(doc, 1).to_pylist()[0]

    @property
    def annotations_changed(self) -> bool:
        """True when the annotation tables differ from those the filter columns were built from (a later curate):
        filters would answer from the old tables until `biomedica index` runs again."""
        from biomedica.archive.annotations import AnnotationStore

        root = self.state.get("annotations")
        if not root:
            return False
        recorded = self.state.get("annotation_fingerprint") or {}
        return annotation_fingerprint(AnnotationStore(Path(root))) != recorded

    @property
    def annotation_tables(self) -> set[str]:
        """The annotation tables the filter columns were built from (state.json's fingerprint names them)."""
        return set(self.state.get("annotation_fingerprint") or {})

    def mask(self, filters: SearchFilters) -> np.ndarray:
        """Bool per doc id: live and passing every filter; FilterUnavailable for a filter the index has no data for."""
        check_available(filters, self.annotation_tables)
        return self.columns.mask(filters)

    def keyword(self, q: str, filters: SearchFilters, k: int) -> KeywordHits:
        """The top `k` keyword hits within `filters`, with their exact total."""
        check_available(filters, self.annotation_tables)
        if self._keyword is None:
            return KeywordHits(np.zeros(0, np.int64), np.zeros(0, np.float32), 0, "none")
        allowed = self.columns.mask(filters, archive_filters=False) if filters.uses_annotations else None
        return self._keyword.search(q, filters, k, allowed)

    def matching(self, q: str | None, filters: SearchFilters) -> np.ndarray:
        """Bool per doc: live, within `filters` and (when `q` has terms) matching it as `keyword` would."""
        selected = self.mask(filters)
        if q and q.strip() and self._keyword is not None:
            hits = self._keyword.search(q, filters, k=max(self.size, 1), allowed=selected)
            inside = np.zeros(self.size, bool)
            inside[hits.docs] = True
            selected &= inside
        return selected

    def facets(self, q: str | None, filters: SearchFilters) -> dict:
        """Counts per licence group, year, journal (top 20), panel type, concept (top 30) over the matching docs."""
        selected = self.matching(q, filters)
        c = self.columns
        years = c.year[selected]
        year_counts = np.bincount(years[years >= 0]) if (years >= 0).any() else np.zeros(0, np.int64)
        return {
            "license_group": _by_count(c.license_group.counts(selected)),
            "year": {int(y): int(year_counts[y]) for y in np.flatnonzero(year_counts)},
            "journal": _by_count(c.journal.counts(selected), JOURNAL_FACETS),
            "panel_type": _by_count(c.panel_type.counts(selected)),
            "concept": _by_count(c.concepts.counts(selected), CONCEPT_FACETS),
        }

    def embedding_names(self) -> list[str]:
        return list(self.state.get("embeddings", {}))

    def embedding_meta(self, name: str) -> dict:
        """The embedding folder's meta.json as recorded when indexed (model spec, pretrained, dim)."""
        return dict(self.state.get("embeddings", {}).get(name, {}).get("meta", {}))

    def vectors(self, name: str | None, kind: str):
        """The VectorIndex of embedding `name` (None: the first) and `kind` (image | text), None if not indexed.

        A folder without its manifest (an update that died before its first commit, after a
        re-embed cleared the folder) is "not indexed": serve then says to run `biomedica index`.
        """
        names = self.embedding_names()
        if name is None:
            name = names[0] if names else None
        if name is None or name not in names:
            return None
        if kind not in self.state["embeddings"][name].get("kinds", {}):
            return None
        if (name, kind) not in self._vectors:
            from biomedica.search.vectors import VectorIndex, VectorIndexMissing

            folder = self.layout.vectors(name, kind)
            try:
                self._vectors[(name, kind)] = VectorIndex.open(folder) if folder.is_dir() else None
            except VectorIndexMissing:
                self._vectors[(name, kind)] = None
        return self._vectors[(name, kind)]

    @property
    def unindexed_units(self) -> int:
        """Units of the archive that this index does not hold yet (a later ingest added them)."""
        from biomedica.archive.units import completed_units

        indexed = set(self.state.get("units", []))
        return sum(1 for unit in completed_units(self.archive) if unit not in indexed)

    def keys(self, docs: np.ndarray) -> list[str]:
        """The sample keys of `docs`."""
        return pc.take(self.docs.column("key"), pa.array(np.asarray(docs, np.int64))).to_pylist()


def _by_count(counts: dict[str, int], top: int | None = None) -> dict[str, int]:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(ordered[:top] if top else ordered)
