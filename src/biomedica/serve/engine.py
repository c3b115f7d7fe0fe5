"""The search engine behind `biomedica serve`: keyword, semantic and hybrid search over one index.

Why a class apart from the app: every answer the API gives (search, image query, similar,
figure record, facets, export keys) is computed here from `biomedica.search.SearchIndex`, so
it is tested without HTTP and the app stays a thin layer of parameter checks and responses.

Ranking (the design page): keyword = BM25 (tantivy) with every query token required, falling
back to any token; semantic = reciprocal rank fusion (RRF) of the query text's embedding
against the caption vectors and against the image vectors (each that the index holds);
hybrid = RRF of the keyword ranking and that semantic ranking (the issue's "RRF of keyword and
semantic ranks": two lists, so keyword and semantic weigh the same, where three lists would let
the two vector lists outvote every keyword match), score sum 1/(k + rank) with k = `rrf_k` (60).
Image query = the upload's image embedding against the image vectors;
similar = the key's own image vector against the image vectors, the key itself left out and
near-duplicates (one dedup group) marked.

The query model is the one recorded in the embeddings' meta.json (or `ServeConfig.model`),
loaded once on the first semantic or image request; without torch/open_clip that request is a
400 naming `biomedica[clip]` and keyword search keeps working.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from biomedica.archive.keys import sample_article
from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.reader import read_member
from biomedica.search.filters import SearchFilters
from biomedica.search.reader import SearchIndex
from biomedica.serve.config import ServeConfig

Mode = Literal["keyword", "semantic", "hybrid"]
MODES = ("keyword", "semantic", "hybrid")
PMC_ARTICLE_URL = "https://pmc.ncbi.nlm.nih.gov/articles/{pmcid}/"
MIN_FUSION_DEPTH = 100  # ranks fused per list: deeper than one page so RRF sees each list's tail
IMAGE_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png"}


class ServeError(Exception):
    """A request the engine cannot answer; `status` is the HTTP status, the message one line for the user."""

    status = 400


class BadRequest(ServeError):
    status = 400


class NotFound(ServeError):
    status = 404


class Unavailable(ServeError):
    """The server lacks something (a model file) that this kind of request needs; other requests work."""

    status = 503


@dataclass(frozen=True)
class Ranked:
    """One page of ranked doc ids with their scores, the total it was cut from and how the query matched."""

    docs: list[int]
    scores: list[float]
    total: int
    match: str | None = None  # keyword: "all" (every token) or "any" (fallback); None for vector-only rankings


def rrf(rankings: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal rank fusion: (doc ids, scores) by descending sum of 1/(k + rank), rank 1-based; -1 ids skipped.

    Ties keep the order of first appearance (the first list's order first), so fusing one list returns it.
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking.tolist(), start=1):
            if doc >= 0:
                scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
    if not scores:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    docs = np.fromiter(scores, np.int64, len(scores))
    values = np.fromiter(scores.values(), np.float64, len(scores))
    order = np.argsort(-values, kind="stable")
    return docs[order], values[order].astype(np.float32)


def spec_from_meta(meta: dict) -> str:
    """The model spec that made an embeddings folder, from meta.json's recorded (model, pretrained) pair."""
    from biomedica.models.spec import spec_from_recorded

    model, pretrained = str(meta.get("model") or ""), meta.get("pretrained")
    if not model:
        raise Unavailable("the embeddings' meta.json names no model; restart `biomedica serve` with --model SPEC")
    try:
        return spec_from_recorded(model, pretrained)
    except ValueError as exc:
        raise Unavailable(f"the embeddings' meta.json: {exc}; restart `biomedica serve` with --model SPEC") from None


def licence_url(code: str | None, recorded: str | None = None) -> str | None:
    """The Creative Commons deed of a normalised licence (`CC BY 4.0` -> .../licenses/by/4.0/), else the recorded URL."""
    if recorded and "creativecommons.org" in recorded:
        return recorded
    if not code:
        return recorded or None
    parts = code.split()
    if parts[:1] == ["CC0"]:
        return "https://creativecommons.org/publicdomain/zero/1.0/"
    if len(parts) == 3 and parts[0] == "CC" and parts[2][:1].isdigit():
        return f"https://creativecommons.org/licenses/{parts[1].lower()}/{parts[2]}/"
    return recorded or None


def author_names(authors: list[dict] | None) -> str | None:
    """`Smith`, `Smith and Doe` or `Smith et al.` (surnames where known) for an attribution line."""
    names = []
    for author in authors or []:
        name = author.get("surname") or author.get("name") or author.get("given_names")
        if name:
            names.append(str(name).strip())
    if not names:
        return None
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


def attribution(record: dict, article: dict, url: str | None) -> str:
    """One line to paste under a reused figure: what, from where, by whom, and under which licence."""
    label = record.get("fig_label") or "Figure"
    title = article.get("title") or record.get("article_title")
    journal = article.get("journal") or record.get("journal")
    year = article.get("year") or record.get("year")
    source = ", ".join(p for p in [title, f"{journal} ({year})" if journal and year else journal or (str(year) if year else None),
                                   author_names(article.get("authors"))] if p)
    ids = [record["pmcid"]] if record.get("pmcid") else []
    doi = article.get("doi") or record.get("doi")
    if doi:
        ids.append(f"doi:{doi}")
    where = ", ".join(p for p in [source, *ids] if p)
    licence = record.get("figure_license") or record.get("license")
    if licence:
        terms = f"licensed {licence}" + (f" ({url})" if url else "")
    else:
        terms = "licence not stated: check the article before reuse"
    return f"{label} from {where}; {terms}" if where else f"{label}; {terms}"


class SearchEngine:
    """Answers the API's questions from one SearchIndex; opened once per server, safe across threads."""

    def __init__(self, config: ServeConfig, index: SearchIndex | None = None) -> None:
        self.config = config
        self.archive = Path(config.archive)
        self.index = index or SearchIndex.open(config.index_dir(), self.archive)
        names = self.index.embedding_names()
        if config.embedding is not None and config.embedding not in names:
            raise FileNotFoundError(
                f"no embeddings {config.embedding!r} in the index (it has: {', '.join(names) or 'none'}); "
                "run `biomedica curate embed` + `biomedica index`, or pick another --embedding"
            )
        self.embedding = config.embedding or (names[0] if names else None)
        self._model = None
        self._model_error: ServeError | None = None
        self._model_lock = threading.Lock()
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._dup_codes: np.ndarray | None = None
        self._vectored: np.ndarray | None = None

    # ---- vectors and the query model -------------------------------------------------------------

    def vectors(self, kind: str):
        """The VectorIndex of `kind` (image|text) of the served embedding, or None."""
        return self.index.vectors(self.embedding, kind) if self.embedding else None

    def _require_vectors(self) -> None:
        if self.embedding is None or (self.vectors("image") is None and self.vectors("text") is None):
            raise BadRequest("no embeddings indexed; run biomedica curate embed + biomedica index")

    def model(self):
        """The query embedding model, loaded once; a missing extra is a 400 naming it, a missing file a 503."""
        if self._model is not None:
            return self._model
        if self._model_error is not None:
            raise self._model_error
        with self._model_lock:
            if self._model is None and self._model_error is None:
                self._model, self._model_error = self._load_model()
        if self._model_error is not None:
            raise self._model_error
        return self._model

    def _load_model(self):
        spec = self.config.model or spec_from_meta(self.index.embedding_meta(self.embedding))
        try:
            from biomedica.lazy import require

            require("torch", "semantic and image search")  # a MissingExtra (ImportError) names biomedica[clip]
            from biomedica.models.load import load_model
            from biomedica.models.spec import ModelLoadError

            try:
                return load_model(spec, self.config.device), None
            except ModelLoadError as exc:
                return None, Unavailable(f"the query model {spec} does not load ({exc}); restart with --model SPEC")
        except ImportError as exc:
            top = (exc.name or "torch").partition(".")[0]
            return None, BadRequest(f"semantic and image search need {top}: pip install 'biomedica[clip]' "
                                    "and restart `biomedica serve` (keyword search works without it)")

    def text_vector(self, q: str) -> np.ndarray:
        """The query's text embedding (float32 [dim]); recent queries are cached (search + facets + paging)."""
        with self._cache_lock:
            if q in self._text_cache:
                self._text_cache.move_to_end(q)
                return self._text_cache[q]
        model = self.model()
        if model.tokenizer is None:
            raise BadRequest(f"the embedding model {model.name} has no text tower: use keyword search or an image query")
        vector = np.asarray(model.text_vectors([q])[0], np.float32)
        with self._cache_lock:
            self._text_cache[q] = vector
            while len(self._text_cache) > 256:
                self._text_cache.popitem(last=False)
        return vector

    def image_vector(self, data: bytes) -> np.ndarray:
        """The embedding of an uploaded image, decoded as curate embed decodes archive images."""
        from biomedica.models.decode import decode_image
        from biomedica.web.images import ImageError, open_image

        model = self.model()
        try:
            open_image(data).close()  # the header first: a decompression bomb is refused before decoding
            image = decode_image(data, model.image_size)
        except ImageError as exc:
            raise BadRequest(f"the upload is not an image this server can read ({exc}): send a PNG or JPEG file") from None
        except (OSError, ValueError, SyntaxError):
            raise BadRequest("the upload is not an image this server can read: send a PNG or JPEG file") from None
        return np.asarray(model.image_vectors([image])[0], np.float32)

    # ---- rankings ---------------------------------------------------------------------------------

    def mask(self, filters: SearchFilters) -> np.ndarray:
        return self.index.mask(filters)

    def figures(self) -> int:
        """Live figures in the index (what an unfiltered search can reach)."""
        return int(self.mask(SearchFilters()).sum())

    def _vector_ranking(self, kind: str, query: np.ndarray, depth: int, allowed: np.ndarray) -> np.ndarray | None:
        vectors = self.vectors(kind)
        if vectors is None:
            return None
        if query.shape[-1] != vectors.dim:
            raise Unavailable(f"the query model gives {query.shape[-1]}-d vectors, the index holds {vectors.dim}-d; "
                              "restart with the --model that made the embeddings")
        ids, _ = vectors.search(query.reshape(1, -1).astype(np.float32), depth, allowed=allowed)
        return ids[0]

    def _has_vector(self, size: int) -> np.ndarray:
        """Bool per doc: it has a vector of some kind. Computed once: the index does not change under a server."""
        if self._vectored is None or len(self._vectored) != size:
            has = np.zeros(size, bool)
            for kind in ("image", "text"):
                vectors = self.vectors(kind)
                if vectors is not None and len(vectors.doc_ids):
                    ids = np.asarray(vectors.doc_ids)
                    has[ids[ids < size]] = True
            self._vectored = has
        return self._vectored

    def _vector_total(self, allowed: np.ndarray) -> int:
        """Filter-passing docs with a vector of any kind: what semantic and hybrid rank."""
        return int((self._has_vector(len(allowed)) & allowed).sum())

    def _keyword(self, q: str, filters: SearchFilters, depth: int):
        hits = self.index.keyword(q, filters, depth)
        return np.asarray(hits.docs, np.int64), np.asarray(hits.scores, np.float32), int(hits.total), hits.match

    def rank(self, q: str, mode: Mode, filters: SearchFilters, limit: int, offset: int) -> Ranked:
        """The page [offset, offset + limit) of `q` under `mode`, `filters`; total = figures the query ranks."""
        q = q.strip()
        if not q:
            raise BadRequest("q is empty: type a word to search (or use an image query)")
        if mode not in MODES:
            raise BadRequest(f"mode must be one of {', '.join(MODES)}")
        end = offset + limit
        if mode == "keyword":
            docs, scores, total, match = self._keyword(q, filters, end)
            return Ranked(docs[offset:end].tolist(), scores[offset:end].tolist(), total, match)
        self._require_vectors()
        depth = max(end, MIN_FUSION_DEPTH)
        allowed = self.mask(filters)
        query = self.text_vector(q)
        lists = [r for r in (self._vector_ranking(k, query, depth, allowed) for k in ("text", "image")) if r is not None]
        total = self._vector_total(allowed)
        docs, scores = rrf(lists, self.config.rrf_k)
        match = None
        if mode == "hybrid":  # keyword and semantic weigh the same: two lists, not keyword against two vector lists
            kw_docs, _, kw_total, match = self._keyword(q, filters, depth)
            docs, scores = rrf([kw_docs, docs[:depth]], self.config.rrf_k)
            total = max(total, kw_total)
        return Ranked(docs[offset:end].tolist(), scores[offset:end].tolist(), total, match)

    def rank_image(self, data: bytes, filters: SearchFilters, limit: int, offset: int) -> Ranked:
        """Nearest figures (image vectors) to an uploaded image."""
        self._require_vectors()
        if self.vectors("image") is None:
            raise BadRequest("no image embeddings indexed; run biomedica curate embed + biomedica index")
        allowed = self.mask(filters)
        end = offset + limit
        vectors = self.vectors("image")
        ids, scores = vectors.search(self.image_vector(data).reshape(1, -1), end, allowed=allowed)
        keep = ids[0] >= 0
        docs, values = ids[0][keep], scores[0][keep]
        return Ranked(docs[offset:end].tolist(), values[offset:end].tolist(), self._vector_total(allowed))

    # ---- answers ----------------------------------------------------------------------------------

    def doc(self, key: str) -> int:
        doc = self.index.doc_of(key)
        if doc is None:
            raise NotFound(f"no figure {_short(key)!r} in this index")
        return doc

    def result(self, doc: int, score: float) -> dict:
        """One search result as the API contract names its fields (plus the figure label and caption title)."""
        row = self.index.row(doc)
        key = row["key"]
        return {
            "key": key, "pmcid": row.get("pmcid"), "caption": row.get("caption") or "", "score": round(float(score), 6),
            "license": row.get("license"), "license_group": row.get("license_group"), "year": row.get("year"),
            "journal": row.get("journal"), "image_url": f"/api/image/{key}?size=thumb",
            "fig_label": row.get("fig_label"), "caption_title": row.get("caption_title"),
            "width": row.get("width"), "height": row.get("height"),
        }

    def page(self, ranked: Ranked, mode: str) -> dict:
        answer = {"total": ranked.total, "results": [self.result(d, s) for d, s in zip(ranked.docs, ranked.scores)],
                  "mode": mode}
        if ranked.match is not None:
            answer["match"] = ranked.match
        return answer

    def search(self, q: str, mode: Mode = "keyword", filters: SearchFilters | None = None,
               limit: int = 20, offset: int = 0) -> dict:
        return self.page(self.rank(q, mode, filters or SearchFilters(), limit, offset), mode)

    def search_image(self, data: bytes, filters: SearchFilters | None = None, limit: int = 20, offset: int = 0) -> dict:
        return self.page(self.rank_image(data, filters or SearchFilters(), limit, offset), "image")

    def _dup_groups(self) -> np.ndarray | None:
        """int32 dedup group code per doc (-1: none), from the index's filter columns; checked once."""
        if self._dup_codes is None:
            with self._cache_lock:
                if self._dup_codes is None:
                    self._dup_codes = self._read_dup_groups()
        return self._dup_codes if len(self._dup_codes) else None

    def _read_dup_groups(self) -> np.ndarray:
        groups = self.index.columns.dup_group  # memory-mapped codes (filters.arrow)
        return groups if len(groups) and (groups >= 0).any() else np.zeros(0, np.int32)

    def duplicates_of(self, doc: int) -> list[int]:
        """Other docs in `doc`'s dedup group (near-duplicates by curate dedup), live only."""
        groups = self._dup_groups()
        if groups is None or doc >= len(groups) or groups[doc] < 0:
            return []
        live = self.index.columns.live
        same = np.nonzero((groups == groups[doc]) & live[: len(groups)])[0]
        return [int(d) for d in same if d != doc]

    def similar(self, key: str, filters: SearchFilters | None = None, limit: int = 20) -> dict:
        """Image neighbours of `key`'s own image vector; the key left out, duplicates marked `duplicate: true`."""
        doc = self.doc(key)
        self._require_vectors()
        vectors = self.vectors("image")
        vector = vectors.vector(doc) if vectors is not None else None
        if vector is None or not np.isfinite(vector).all():
            raise NotFound(f"figure {_short(key)!r} has no image embedding (its image did not decode, or it is newer "
                           "than the embeddings); run biomedica curate embed + biomedica index")
        allowed = self.mask(filters or SearchFilters())
        ids, scores = vectors.search(np.asarray(vector, np.float32).reshape(1, -1), limit + 1, allowed=allowed)
        groups = self._dup_groups()
        group = groups[doc] if groups is not None and doc < len(groups) else -1
        results = []
        for d, s in zip(ids[0].tolist(), scores[0].tolist()):
            if d < 0 or d == doc:
                continue
            item = self.result(d, s)
            item["duplicate"] = bool(group >= 0 and groups is not None and d < len(groups) and groups[d] == group)
            results.append(item)
        return {"key": key, "total": len(results[:limit]), "results": results[:limit]}

    def record(self, doc: int) -> dict:
        """The figure record (.json member of the sample), one seek into its shard."""
        row = self.index.row(doc)
        data = read_member(self.archive, row["group"], row["shard"], int(row["json_offset"]), int(row["json_size"]))
        return json.loads(data)

    def article(self, row: dict) -> dict:
        """The article row (title, journal, year, authors, doi, licence URL) of a doc, from its unit's articles part."""
        import pyarrow.parquet as pq

        unit = row.get("unit")
        if unit is None:
            return {}
        path = ArchiveLayout(self.archive).articles(int(unit))
        if not path.is_file():
            return {}
        article_id = sample_article(row["key"], row.get("pmcid"))
        columns = ["article_id", "version", "title", "journal", "year", "doi", "authors", "license", "license_url"]
        table = pq.read_table(path, columns=columns, filters=[("article_id", "=", article_id)])
        rows = table.to_pylist()
        if not rows:
            return {}
        return max(rows, key=lambda r: r.get("version") or 0)  # the newest version a unit holds

    def figure(self, key: str) -> dict:
        """Everything the figure view shows: record, mentions, article, links, licence and an attribution line."""
        doc = self.doc(key)
        row = self.index.row(doc)
        record = self.record(doc)
        article = self.article(row)
        pmcid = record.get("pmcid") or row.get("pmcid")
        url = licence_url(record.get("figure_license") or record.get("license"), article.get("license_url"))
        doi = record.get("doi") or article.get("doi")
        return {
            "key": key, "pmcid": pmcid, "fig_label": record.get("fig_label"), "caption_title": record.get("caption_title"),
            "caption": record.get("caption") or "", "mentions": list(record.get("mentions") or []),
            "article_title": article.get("title") or record.get("article_title"),
            "journal": record.get("journal") or article.get("journal"), "year": record.get("year") or article.get("year"),
            "authors": [a.get("name") or " ".join(p for p in (a.get("given_names"), a.get("surname")) if p)
                        for a in article.get("authors") or []],
            "doi": doi, "doi_url": f"https://doi.org/{doi}" if doi else None,
            "pmc_url": PMC_ARTICLE_URL.format(pmcid=pmcid) if pmcid else None,
            "license": record.get("figure_license") or record.get("license"), "license_group": row.get("license_group"),
            "license_url": url, "attribution": attribution({**record, "pmcid": pmcid}, article, url),
            "image_url": f"/api/image/{key}?size=full", "thumb_url": f"/api/image/{key}?size=thumb",
            "similar_url": f"/api/similar/{key}",
            "duplicates": [self.index.row(d)["key"] for d in self.duplicates_of(doc)],
            "record": record,
        }

    def image_bytes(self, key: str) -> tuple[bytes, str]:
        """(stored image bytes, media type) of a figure: the original member, found by key only."""
        row = self.index.row(self.doc(key))
        data = read_member(self.archive, row["group"], row["shard"], int(row["image_offset"]), int(row["image_size"]))
        return data, IMAGE_TYPES.get(str(row.get("image_format") or "").lower(), "application/octet-stream")

    def facets(self, q: str | None, filters: SearchFilters | None = None) -> dict:
        q = (q or "").strip() or None
        return self.index.facets(q, filters or SearchFilters())

    # ---- export -----------------------------------------------------------------------------------

    def export_docs(self, q: str | None, mode: Mode, filters: SearchFilters, keys: list[str] | None,
                    limit: int | None) -> list[int]:
        """The docs an export holds: the listed keys (404 naming unknown ones), or the query's ranking.

        Keyword exports every hit (up to max_export); semantic and hybrid rank every figure, so they export
        the top `limit` (default 1,000).
        """
        cap = self.config.max_export
        if limit is not None and limit > cap:
            raise BadRequest(f"limit {limit} is over what one export holds ({cap}); give a smaller limit")
        if keys is not None:
            found = self.index.docs_of(keys)  # one vectorised pass, not a lookup per key
            unknown = [key for key, doc in zip(keys, found.tolist()) if doc < 0]
            if unknown:
                more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
                raise NotFound(f"no figure {', '.join(repr(_short(k)) for k in unknown[:3])}{more} in this index")
            return list(dict.fromkeys(found.tolist()))
        if not q or not q.strip():  # no query: every figure the filters keep
            docs = np.nonzero(self.mask(filters))[0]
            self._within_cap(len(docs), limit)
            return docs[: limit or cap].tolist()
        if mode == "keyword":
            ranked = self.rank(q, mode, filters, limit or cap, 0)
            self._within_cap(ranked.total, limit)
        else:
            ranked = self.rank(q, mode, filters, min(limit or 1000, cap), 0)
        return ranked.docs

    def _within_cap(self, matches: int, limit: int | None) -> None:
        """An export of every match never cuts silently: over max_export without a limit is a 400."""
        if limit is None and matches > self.config.max_export:
            raise BadRequest(f"the query matches {matches} figures, more than one export holds "
                             f"({self.config.max_export}); narrow it with filters, or give limit to export the top N")

    def export(self, docs: list[int], include_held_out: bool = False) -> tuple[bytes, int, int]:
        """(Parquet bytes of the select manifest for `docs`, rows written, held-out rows left out).

        The rows are the docs table's (every member offset is there), live copies only, as select sees them.
        """
        import pyarrow as pa

        from biomedica.serve.export import ROW_COLUMNS, manifest_bytes

        ids = np.asarray(docs, np.int64)
        ids = ids[self.index.columns.live[ids]] if len(ids) else ids
        rows = self.index.docs.select(ROW_COLUMNS).take(pa.array(ids))
        return manifest_bytes(self.archive, rows, include_held_out)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
