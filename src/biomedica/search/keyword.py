"""The keyword index: tantivy (BM25 per field, boosts), biomedical tokenizer, archive filters inside.

Why tantivy: every commit adds segments and BM25 statistics are summed over segments at
search time, so units appended later are indexed without touching the rest and score as in
a full build; the index is memory-mapped, so a server opens it in milliseconds.

Fields: caption, caption_title, mentions, article_title, keywords (compound terms, with
positions for phrases), `parts` (all of them split at punctuation, so `weighted` finds
`T2-weighted`), u64 fast `doc` (the doc id) and `batch` (the index run that added it), and
the archive filters license_group, journal, article_type (raw terms), year, has_mentions.
Nothing is stored: the docs table holds what a result shows.

Query semantics: every query term (or `"quoted phrase"`) must match in some field (AND);
if none matches so, any may (OR) and the hits say match="any".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biomedica.search.tokenize import COMPOUND_ANALYZER, PARTS_ANALYZER, fold, parts, query_groups, register_analyzers

TEXT_FIELDS = {"caption": 1.0, "caption_title": 1.5, "keywords": 1.2, "article_title": 0.8, "mentions": 0.5}
PARTS_FIELD = "parts"
PARTS_BOOST = 0.3  # a part match (`weighted` in `T2-weighted`) counts less than the whole term
RAW_FILTER_FIELDS = ("license_group", "journal", "article_type")
WRITER_HEAP = 256_000_000


@dataclass
class KeywordHits:
    """Keyword results: doc ids and scores (best first), the exact number of matching docs, and how they matched."""

    docs: np.ndarray  # int64
    scores: np.ndarray  # float32
    total: int
    match: str  # "all": every term matched; "any": none matched all, so any term counts; "none": empty query


def build_schema():
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("doc", indexed=True, fast=True)
    builder.add_unsigned_field("batch", indexed=True, fast=True)
    for name in TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name=COMPOUND_ANALYZER, index_option="position")
    builder.add_text_field(PARTS_FIELD, tokenizer_name=PARTS_ANALYZER, index_option="position")
    for name in RAW_FILTER_FIELDS:
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("year", indexed=True, fast=True)
    builder.add_unsigned_field("has_mentions", indexed=True)
    return builder.build()


def open_index(folder: Path, create: bool = False):
    """The tantivy Index at `folder` with the analyzers registered (created when `create`)."""
    import tantivy

    folder = Path(folder)
    if create:
        folder.mkdir(parents=True, exist_ok=True)
        index = tantivy.Index(build_schema(), path=str(folder), reuse=True)
    else:
        index = tantivy.Index.open(str(folder))
    register_analyzers(index)
    return index


def make_document(doc: int, batch: int, row: dict):
    """One tantivy document from a sample row (docs columns + full text columns)."""
    import tantivy

    d = tantivy.Document()
    d.add_unsigned("doc", int(doc))
    d.add_unsigned("batch", int(batch))
    texts = []
    for name in TEXT_FIELDS:
        value = row.get(name)
        for text in (value if isinstance(value, list) else [value]):
            if text:
                d.add_text(name, fold(text))  # CO₂ is indexed as co2, as the query side folds it (tokenize.fold)
                texts.append(fold(text))
    for text in texts:
        d.add_text(PARTS_FIELD, text)
    for name in RAW_FILTER_FIELDS:
        if row.get(name):
            d.add_text(name, row[name])
    if row.get("year") is not None and row["year"] >= 0:
        d.add_unsigned("year", int(row["year"]))
    d.add_unsigned("has_mentions", 1 if row.get("mentions") else 0)
    return d


class KeywordWriter:
    """Adds and deletes docs; nothing is visible to readers before `commit`."""

    def __init__(self, folder: Path, heap: int = WRITER_HEAP) -> None:
        self.index = open_index(folder, create=True)
        self.writer = self.index.writer(heap_size=heap)

    def add(self, doc: int, batch: int, row: dict) -> None:
        self.writer.add_document(make_document(doc, batch, row))

    def delete_docs(self, docs: Iterable[int]) -> None:
        """Delete docs by id (a term-set query: delete_documents_by_term would look for an i64 term and miss)."""
        import tantivy

        docs = [int(d) for d in docs]
        for start in range(0, len(docs), 65_536):
            chunk = docs[start : start + 65_536]
            self.writer.delete_documents_by_query(tantivy.Query.term_set_query(self.index.schema, "doc", chunk))

    def delete_batches_after(self, batch: int) -> None:
        """Delete every doc added by a run later than `batch` (a run that died before its state.json)."""
        import tantivy

        schema = self.index.schema
        self.writer.delete_documents_by_query(
            tantivy.Query.range_query(schema, "batch", tantivy.FieldType.Unsigned, lower_bound=batch + 1)
        )

    def commit(self) -> None:
        self.writer.commit()
        self.writer.wait_merging_threads()


class KeywordSearcher:
    """Queries the tantivy index (opened once; `reload` after a new commit)."""

    def __init__(self, folder: Path, doc_limit: int | None = None) -> None:
        self.doc_limit = doc_limit  # docs at or above it belong to a run state.json does not list yet: unseen
        self.index = open_index(folder)
        self.schema = self.index.schema
        self.searcher = self.index.searcher()

    @property
    def num_docs(self) -> int:
        return self.searcher.num_docs

    def text_query(self, groups: list[list[str]], require_all: bool):
        import tantivy

        Q, Occur = tantivy.Query, tantivy.Occur
        clauses = []
        for group in groups:
            if len(group) == 1:
                field_queries = [Q.term_query(self.schema, f, group[0]) for f in TEXT_FIELDS]
            else:
                field_queries = [Q.phrase_query(self.schema, f, group) for f in TEXT_FIELDS]
            pieces = parts(" ".join(group))
            part_query = (Q.term_query(self.schema, PARTS_FIELD, pieces[0]) if len(pieces) == 1
                          else Q.phrase_query(self.schema, PARTS_FIELD, pieces))
            boosted = [Q.boost_query(q, w) for q, w in zip(field_queries, TEXT_FIELDS.values())]
            boosted.append(Q.boost_query(part_query, PARTS_BOOST))
            clauses.append(Q.boolean_query([(Occur.Should, q) for q in boosted]))
        return Q.boolean_query([(Occur.Must if require_all else Occur.Should, c) for c in clauses])

    def filter_queries(self, filters) -> list:
        """The archive filters of a SearchFilters as tantivy queries (each scores 0)."""
        import tantivy

        Q = tantivy.Query
        found = []
        for name in RAW_FILTER_FIELDS:
            values = list(getattr(filters, name))
            if values:
                found.append(Q.term_set_query(self.schema, name, values))
        if filters.year_from is not None or filters.year_to is not None:
            found.append(Q.range_query(self.schema, "year", tantivy.FieldType.Unsigned,
                                       lower_bound=filters.year_from, upper_bound=filters.year_to))
        if filters.has_mentions is not None:
            found.append(Q.term_query(self.schema, "has_mentions", 1 if filters.has_mentions else 0))
        return [Q.const_score_query(q, 0.0) for q in found]

    def search(self, q: str, filters, k: int, allowed: np.ndarray | None = None) -> KeywordHits:
        """Top `k` docs for `q` within the archive `filters`; `allowed` (bool per doc id) narrows further.

        Without `allowed`, tantivy counts the hits; with it, every hit's doc id is read (a
        fast field) and masked, so `total` is exact either way.
        """
        import tantivy

        Q, Occur = tantivy.Query, tantivy.Occur
        groups = query_groups(q)
        extra = self.filter_queries(filters)
        if not groups:
            query = Q.boolean_query([(Occur.Must, Q.all_query()), *[(Occur.Must, f) for f in extra]])
            return self._collect(query, k, allowed, "none", by_doc=True)
        hits = None
        for require_all in ((True, False) if len(groups) > 1 else (True,)):
            text = self.text_query(groups, require_all)
            query = Q.boolean_query([(Occur.Must, text), *[(Occur.Must, f) for f in extra]]) if extra else text
            hits = self._collect(query, k, allowed, "all" if require_all else "any")
            if hits.total:
                break
        return hits

    def _collect(self, query, k: int, allowed: np.ndarray | None, match: str, by_doc: bool = False) -> KeywordHits:
        import tantivy

        if allowed is None and not by_doc:
            result = self.searcher.search(query, limit=max(k, 1), count=True)
            total = result.count
            scores = np.array([s for s, _ in result.hits], np.float32)
            docs = np.array(self.searcher.fast_field_values("doc", [a for _, a in result.hits]), np.int64)
            if self.doc_limit is not None:
                seen = docs < self.doc_limit
                docs, scores = docs[seen], scores[seen]
            order = np.lexsort((docs, -scores))[:k]
            return KeywordHits(docs[order], scores[order], total, match)
        limit = max(self.searcher.num_docs, 1)
        if by_doc and allowed is None:
            result = self.searcher.search(query, limit=max(k, 1), count=True,
                                          order_by_field="doc", order=tantivy.Order.Asc)
            docs = np.array(self.searcher.fast_field_values("doc", [a for _, a in result.hits]), np.int64)
            docs = np.sort(docs[docs < self.doc_limit] if self.doc_limit is not None else docs)
            return KeywordHits(docs[:k], np.zeros(min(k, len(docs)), np.float32), result.count, match)
        result = self.searcher.search(query, limit=limit, count=False)
        addresses = [a for _, a in result.hits]
        docs = np.array(self.searcher.fast_field_values("doc", addresses), np.int64) if addresses else np.zeros(0, np.int64)
        scores = np.zeros(len(docs), np.float32) if by_doc else np.array([s for s, _ in result.hits], np.float32)
        if allowed is None and self.doc_limit is not None:
            allowed = np.ones(self.doc_limit, bool)
        if allowed is not None and len(docs):
            inside = docs < len(allowed)
            keep = np.zeros(len(docs), bool)
            keep[inside] = allowed[docs[inside]]
            docs, scores = docs[keep], scores[keep]
        order = np.argsort(docs, kind="stable") if by_doc else np.lexsort((docs, -scores))
        top = order[:k]
        return KeywordHits(docs[top], scores[top], len(docs), match)
