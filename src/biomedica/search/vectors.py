"""The dense vector index of one embedding (name, kind): exact search below `exact_max` vectors, IVF above.

Folder layout (`index/vectors/<name>/<kind>/`):

    manifest.json          written last by every update: dim, count, mode, the complete files, recall@10
    seg-NNNNNN.ids.npy     exact mode: the doc ids (int64) of one appended segment
    seg-NNNNNN.vec.npy     exact mode: its L2-normalised float32 vectors (memory-mapped, searched in place)
    ivf-NNNNNN.faiss       ivf mode: one faiss IndexIVFFlat part (inner product) holding ids and vectors

A crash before the manifest is replaced leaves the previous state: files are written under
temporary names and renamed (biomedica.io.atomic), new files get names the manifest has not
used, and files the manifest no longer lists are removed only after it is published.

Why float32 on disk: IndexIVFFlat stores float32 and BLAS multiplies float32, so the files are
searched where they lie (an mmap, no conversion, open in milliseconds, pages shared by every
server process). float16 would halve the exact segments but cost a conversion per search or a
full copy at open. Each vector is stored once: when the index first crosses `exact_max` the
segments are converted into the first IVF part and removed.

IVF parts: the centroids are trained (seeded spherical k-means on a seeded sample of every
vector stored plus every vector being added, so an index built in one run from 24M vectors is
trained on all of them, not on the first chunk); each later update adds one more part with the
same centroids, so probing the same lists in every part returns exactly what one big IVF
would. More than `MAX_PARTS` parts are compacted into two (the first part is not rewritten).

Retraining: centroids trained on n vectors fit an index of n; when an update takes the count
past `RETRAIN_GROWTH` (8) times the count they were trained on, they are retrained on a seeded
sample of all vectors, `nlist` is recomputed (about 4*sqrt(n)), and every vector goes into one
new part (written under a new name; the manifest switches to it; a crash leaves the previous
state). Amortised cost: retrains happen at counts n0, 8*n0, 64*n0, ..., so by the time the
index holds N vectors the re-adds sum to at most N*(1/8 + 1/64 + ...) = N/7, i.e. each vector
is added about 1.14 times in all; k-means costs sample*nlist*dim*iterations with the sample at
64 per list, so one retrain at 24M (nlist ~ 19.6k) is about 1.3e14 multiply-adds (512-d), a
few CPU hours, paid once per 8x growth. `biomedica index` says "retrained" in its summary.
Memory: a part is built in RAM before it is written (4*dim bytes per vector it holds).

Filters (`allowed`, a bool per doc id): exact mode masks the scores; ivf mode passes a faiss
IDSelectorBitmap, probing all lists (an exact search over the allowed subset) when the filter
is selective (<= 20k docs or < 2%), else `nprobe / fraction allowed` lists, so a filter keeps
the number of allowed candidates scanned, and with it the recall, of an unfiltered search.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from biomedica.io.atomic import atomic_path, fsync_dir, remove_stale_temporaries, write_json_atomic
from biomedica.lazy import require

DEFAULT_EXACT_MAX = 20_000  # exact search costs ~3.5 ms per query and kind here, 17.5 ms at 100k; IVF ~0.6 ms (benchmarks/search.py)
MANIFEST = "manifest.json"
FORMAT = 1
SMALL_FILTER = 20_000  # allowed docs at or below this: exact search over the allowed subset
SMALL_FILTER_FRACTION = 0.02  # ... or below this fraction of the stored vectors
RECALL_QUERIES = 200
MAX_PARTS = 8
TRAIN_POINTS_PER_LIST = 64  # k-means sample: 64 vectors per list (faiss asks for >= 39)
KMEANS_ITERATIONS = 10
RETRAIN_GROWTH = 8  # retrain the centroids when the count passes this many times the count they were trained on
_BLOCK = 65_536
_OWN_FILE = re.compile(r"(seg-\d{6}\.(ids|vec)\.npy|ivf-\d{6}\.faiss)")


class VectorIndexMissing(FileNotFoundError):
    """No vector index in the folder; the message says what to run."""


class VectorIndexError(ValueError):
    """A vector index that cannot be read or updated as asked; the message names the folder and the fix."""


@dataclass
class VectorUpdate:
    """What one `update_vectors` call did (the index stage prints it in its summary)."""

    added: int
    total: int
    mode: str
    recall_at_10: float | None
    seconds: float
    retrained: bool = False  # the IVF centroids were retrained (nlist recomputed) and every part rewritten


class VectorSource:
    """Vectors to add, as row selections of (memory-mapped) arrays: read block by block, never all at once.

    Why: `biomedica index` adds every embedding part of an archive in one update, so the first
    IVF is trained on a sample of all of them; holding them all in memory (24M x 512 float32 =
    49 GB) is what it must not do. `pieces`: (array [n, dim], rows or None for all rows).
    """

    def __init__(self, pieces: list[tuple[np.ndarray, np.ndarray | None]]):
        self.pieces = [(a, None if r is None else np.asarray(r, np.int64)) for a, r in pieces]
        sizes = [len(a) if r is None else len(r) for a, r in self.pieces]
        self.starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        dims = {a.shape[1] for a, _ in self.pieces if a.ndim == 2}
        if len(dims) > 1 or any(a.ndim != 2 for a, _ in self.pieces):
            raise VectorIndexError("vectors to add must be 2-d arrays of one dimension")
        self.dim = dims.pop() if dims else 0

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.dim

    def take(self, positions: np.ndarray) -> np.ndarray:
        """float32 rows at ascending `positions` (0 .. len-1) across the pieces."""
        positions = np.asarray(positions, np.int64)
        piece_of = np.searchsorted(self.starts, positions, side="right") - 1
        out = []
        for p in np.unique(piece_of):
            local = positions[piece_of == p] - self.starts[p]
            array, rows = self.pieces[p]
            out.append(np.asarray(array[local if rows is None else rows[local]], dtype=np.float32))
        return np.concatenate(out) if out else np.empty((0, self.dim), np.float32)

    def blocks(self, size: int = _BLOCK) -> Iterator[np.ndarray]:
        """Consecutive float32 blocks of at most `size` rows, in order."""
        for array, rows in self.pieces:
            n = len(array) if rows is None else len(rows)
            for start in range(0, n, size):
                part = array[start:start + size] if rows is None else array[rows[start:start + size]]
                yield np.asarray(part, dtype=np.float32)

    def all(self) -> np.ndarray:
        return np.concatenate(list(self.blocks())) if len(self) else np.empty((0, self.dim), np.float32)


def auto_nlist(n: int) -> int:
    """IVF lists for n vectors: about 4*sqrt(n), at most n/39 (enough k-means points per list), 1..65536."""
    return int(max(1, min(65_536, round(4 * math.sqrt(n)), n // 39)))


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm as contiguous float32 (inner product = cosine); zero rows stay zero."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def set_threads(threads: int | None) -> None:
    """Pin faiss (OpenMP) and, when threadpoolctl is installed, numpy's BLAS to `threads` threads."""
    if not threads:
        return
    _faiss().omp_set_num_threads(int(threads))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=int(threads))


def _faiss() -> Any:
    return require("faiss", "the vector index")


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VectorIndexMissing(f"{folder}: no vector index; run `biomedica index ARCHIVE`") from None
    except (OSError, ValueError):
        raise VectorIndexError(f"{path}: unreadable vector index manifest; rerun `biomedica index ARCHIVE`") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise VectorIndexError(f"{path}: vector index format not {FORMAT}; delete the folder and rerun `biomedica index ARCHIVE`")
    return manifest


class _TopK:
    """Running top-k (largest score) of several blocks of candidates; -1 / -inf padding."""

    def __init__(self, nq: int, k: int):
        self.k = k
        self.scores = np.full((nq, k), -np.inf, dtype=np.float32)
        self.ids = np.full((nq, k), -1, dtype=np.int64)

    def push(self, scores: np.ndarray, ids: np.ndarray) -> None:
        """Merge candidate `scores` [nq, m] with ids [m] (or [nq, m])."""
        if scores.shape[1] == 0:
            return
        ids = np.broadcast_to(ids, scores.shape)
        if scores.shape[1] > self.k:
            keep = np.argpartition(-scores, self.k - 1, axis=1)[:, : self.k]
            scores = np.take_along_axis(scores, keep, axis=1)
            ids = np.take_along_axis(ids, keep, axis=1)
        all_scores = np.concatenate([self.scores, scores.astype(np.float32, copy=False)], axis=1)
        all_ids = np.concatenate([self.ids, ids], axis=1)
        keep = np.argpartition(-all_scores, self.k - 1, axis=1)[:, : self.k]
        self.scores = np.take_along_axis(all_scores, keep, axis=1)
        self.ids = np.take_along_axis(all_ids, keep, axis=1)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each row by score descending then doc id; no candidate -> id -1, score -inf."""
        missing = ~np.isfinite(self.scores) | (self.ids < 0)
        scores = np.where(missing, -np.inf, self.scores).astype(np.float32)
        ids = np.where(missing, -1, self.ids)
        order = np.lexsort((np.where(missing, np.iinfo(np.int64).max, ids), -scores), axis=-1)
        return np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)


def _list_view(invlists: Any, list_no: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 vectors [n, dim]) of one inverted list: views on faiss's memory (mmap'd or not)."""
    faiss = _faiss()
    n = invlists.list_size(list_no)
    if n == 0:
        return np.empty(0, np.int64), np.empty((0, dim), np.float32)
    ids = faiss.rev_swig_ptr(invlists.get_ids(list_no), n).view(np.int64)
    codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), n * dim * 4).view(np.float32).reshape(n, dim)
    return ids, codes


def _search_preassigned(part: Any, q: np.ndarray, k: int, coarse: np.ndarray, coarse_scores: np.ndarray, params: Any
                        ) -> tuple[np.ndarray, np.ndarray]:
    """IndexIVF.search_preassigned with search parameters (faiss's Python wrapper refuses them; the C++ takes them)."""
    faiss = _faiss()
    scores = np.empty((len(q), k), dtype=np.float32)
    ids = np.empty((len(q), k), dtype=np.int64)
    coarse = np.ascontiguousarray(coarse, dtype=np.int64)
    coarse_scores = np.ascontiguousarray(coarse_scores, dtype=np.float32)
    part.search_preassigned_c(len(q), faiss.swig_ptr(q), k, faiss.swig_ptr(coarse), faiss.swig_ptr(coarse_scores),
                              faiss.swig_ptr(scores), faiss.swig_ptr(ids), False, params)
    return scores, ids


class VectorIndex:
    """A vector index opened for search: exact segments or IVF parts, memory-mapped, read-only."""

    def __init__(self, folder: Path, manifest: dict, segments: list[tuple[np.ndarray, np.ndarray]], parts: list[Any]):
        self.folder = Path(folder)
        self.manifest = manifest
        self.dim: int = int(manifest["dim"])
        self.count: int = int(manifest["count"])
        self.mode: str = manifest["mode"]
        self.recall_at_10: float | None = manifest.get("recall_at_10")
        self.nprobe: int = int(manifest.get("nprobe") or 32)
        self.nlist: int | None = manifest.get("nlist")
        self.max_doc: int = int(manifest.get("max_doc", -1))
        self._segments = segments
        self._parts = parts

    @classmethod
    def open(cls, folder: Path, threads: int | None = None) -> VectorIndex:
        """Open the folder's index (memory-mapped: milliseconds, whatever its size)."""
        folder = Path(folder)
        set_threads(threads)
        for attempt in range(3):
            manifest = _read_manifest(folder)
            try:
                return cls._load(folder, manifest)
            except FileNotFoundError:
                if attempt == 2:
                    raise VectorIndexError(
                        f"{folder}: vector index files listed in {MANIFEST} are missing; rerun `biomedica index ARCHIVE`"
                    ) from None
                time.sleep(0.05)  # an update replaced the files between our manifest read and open: read again
        raise AssertionError("unreachable")

    @classmethod
    def _load(cls, folder: Path, manifest: dict) -> VectorIndex:
        segments = []
        for seg in manifest.get("segments", []):
            ids = np.load(folder / f"{seg['name']}.ids.npy", mmap_mode="r")
            vecs = np.load(folder / f"{seg['name']}.vec.npy", mmap_mode="r")
            segments.append((ids, vecs))
        parts = []
        if manifest.get("parts"):
            faiss = _faiss()
            flags = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP) | faiss.IO_FLAG_READ_ONLY
            for part in manifest["parts"]:
                path = folder / part["file"]
                if not path.is_file():
                    raise FileNotFoundError(path)
                parts.append(faiss.read_index(str(path), flags))
        return cls(folder, manifest, segments, parts)

    # --- what the index holds -------------------------------------------------------------------

    def _lists(self) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """(part, list, ids, vectors) of every non-empty IVF list."""
        for p, part in enumerate(self._parts):
            invlists = part.invlists
            for list_no in range(part.nlist):
                if invlists.list_size(list_no):
                    ids, vecs = _list_view(invlists, list_no, self.dim)
                    yield p, list_no, ids, vecs

    def _blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, float32 vectors) blocks covering every stored vector once."""
        for ids, vecs in self._segments:
            for start in range(0, len(ids), _BLOCK):
                yield np.asarray(ids[start:start + _BLOCK]), vecs[start:start + _BLOCK]
        for _, _, ids, vecs in self._lists():
            yield ids, vecs

    @cached_property
    def doc_ids(self) -> np.ndarray:
        """The doc ids that have a vector, ascending."""
        chunks = [np.asarray(ids) for ids, _ in self._segments] + [ids.copy() for _, _, ids, _ in self._lists()]
        return np.sort(np.concatenate(chunks)) if chunks else np.empty(0, np.int64)

    @cached_property
    def _stored_bitmap(self) -> np.ndarray:
        present = np.zeros(self.max_doc + 1, dtype=bool)
        present[self.doc_ids] = True
        return np.packbits(present, bitorder="little")

    @cached_property
    def _where(self) -> tuple[np.ndarray, np.ndarray]:
        """Per doc id: its segment/part (-1 none) and row (exact) or list << 32 | offset (ivf)."""
        part = np.full(self.max_doc + 1, -1, dtype=np.int32)
        row = np.zeros(self.max_doc + 1, dtype=np.int64)
        for s, (ids, _) in enumerate(self._segments):
            ids = np.asarray(ids)
            part[ids] = s
            row[ids] = np.arange(len(ids))
        for p, list_no, ids, _ in self._lists():
            part[ids] = p
            row[ids] = (list_no << 32) | np.arange(len(ids))
        return part, row

    def vector(self, doc: int) -> np.ndarray | None:
        """The stored (L2-normalised, float32) vector of `doc`, or None when it has none."""
        if doc < 0 or doc > self.max_doc:
            return None
        part, row = self._where
        p = int(part[doc])
        if p < 0:
            return None
        if self.mode == "exact":
            return np.array(self._segments[p][1][row[doc]], dtype=np.float32)
        where = int(row[doc])
        _, vecs = _list_view(self._parts[p].invlists, where >> 32, self.dim)
        return vecs[where & 0xFFFFFFFF].copy()

    # --- search ---------------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k doc ids [n, k] (int64, -1 padded) and inner-product scores [n, k] (float32, -inf padded).

        Queries are L2-normalised first; `allowed` is a bool per doc id (missing ids count as not allowed).
        """
        q = normalise(np.asarray(queries))
        if q.shape[1] != self.dim:
            raise VectorIndexError(f"{self.folder}: query has {q.shape[1]} dimensions, the index {self.dim}")
        if k < 1:
            raise VectorIndexError(f"k must be at least 1, got {k}")
        mask = None if allowed is None else self._mask(allowed)
        if self.count == 0 or (mask is not None and not mask.any()):
            return _TopK(len(q), k).result()
        if self.mode == "exact":
            return self._search_exact(q, k, mask)
        return self._search_ivf(q, k, mask)

    def _mask(self, allowed: np.ndarray) -> np.ndarray:
        """`allowed` cut or padded to doc ids 0..max_doc."""
        allowed = np.asarray(allowed, dtype=bool).ravel()
        n = self.max_doc + 1
        if len(allowed) >= n:
            return allowed[:n]
        return np.concatenate([allowed, np.zeros(n - len(allowed), dtype=bool)])

    def _search_exact(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Brute-force inner product over every stored vector (or the allowed ones), in blocks."""
        top = _TopK(len(q), k)
        for ids, vecs in self._blocks():
            if mask is None:
                top.push(q @ vecs.T, ids)
                continue
            keep = mask[ids]
            n_keep = int(np.count_nonzero(keep))
            if n_keep == 0:
                continue
            if n_keep < len(ids) // 4:  # few allowed: multiply only their rows
                rows = np.flatnonzero(keep)
                top.push(q @ np.asarray(vecs[rows]).T, ids[rows])
            else:
                scores = q @ vecs.T
                scores[:, ~keep] = -np.inf
                top.push(scores, ids)
        return top.result()

    def _search_ivf(self, q: np.ndarray, k: int, mask: np.ndarray | None, nprobe: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        nlist = int(self.nlist or self._parts[0].nlist)
        nprobe = min(nlist, int(nprobe or self.nprobe))
        params = faiss.SearchParametersIVF()
        bitmap = None
        if mask is not None:
            bitmap = np.packbits(mask, bitorder="little")
            n_allowed = int(np.bitwise_count(bitmap & self._stored_bitmap).sum())
            if n_allowed == 0:
                return _TopK(len(q), k).result()
            if n_allowed <= SMALL_FILTER or n_allowed < SMALL_FILTER_FRACTION * self.count:
                nprobe = nlist  # every list: an exact search over the allowed subset
            else:
                nprobe = min(nlist, math.ceil(nprobe * self.count / n_allowed))
            params.sel = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        params.nprobe = nprobe
        if len(self._parts) == 1:
            scores, ids = self._parts[0].search(q, k, params=params)
            top = _TopK(len(q), k)
            top.push(np.where(ids < 0, -np.inf, scores), ids)
            return top.result()
        coarse_scores, coarse = faiss.downcast_index(self._parts[0].quantizer).search(q, nprobe)
        top = _TopK(len(q), k)
        for part in self._parts:
            scores, ids = _search_preassigned(part, q, k, coarse, coarse_scores, params)
            top.push(np.where(ids < 0, -np.inf, scores), ids)
        del bitmap  # the selector read it until here
        return top.result()

    def exact_search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """`search` by brute force whatever the mode (the reference the IVF's recall is measured against)."""
        q = normalise(np.asarray(queries))
        mask = None if allowed is None else self._mask(allowed)
        return self._search_exact(q, k, mask)

    def measure_recall(self, n_queries: int = RECALL_QUERIES, k: int = 10, seed: int = 0) -> float | None:
        """recall@k of `search` against exact search, on up to `n_queries` stored vectors (seeded) as queries.

        Each query's own doc is left out of both lists (it is trivially found), so the number
        measures the neighbours a user sees. None in exact mode.
        """
        if self.mode != "ivf" or self.count < 2:
            return None
        rng = np.random.default_rng(seed)
        doc_ids = self.doc_ids
        picked = doc_ids[np.sort(rng.choice(len(doc_ids), size=min(n_queries, len(doc_ids)), replace=False))]
        queries = np.stack([self.vector(int(doc)) for doc in picked])
        approx, _ = self._search_ivf(queries, k + 1, None)
        exact, _ = self._search_exact(queries, k + 1, None)
        hits = total = 0
        for doc, got, truth in zip(picked, approx, exact):
            truth = [d for d in truth if d != doc and d >= 0][:k]
            got = {d for d in got if d != doc and d >= 0}
            hits += sum(d in got for d in truth)
            total += len(truth)
        return round(hits / total, 4) if total else None


# --- updates ------------------------------------------------------------------------------------


def update_vectors(
    folder: Path, doc_ids: np.ndarray, vectors: np.ndarray | VectorSource, exact_max: int = DEFAULT_EXACT_MAX,
    nlist: int | None = None, nprobe: int = 32, *, seed: int = 0, threads: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> VectorUpdate:
    """Append vectors for new doc ids; a crash at any point leaves the previous state.

    Exact segments while the total stays <= exact_max; the first crossing trains an IVF
    (`nlist` lists, auto when None) on a sample of every vector stored and added and converts;
    later calls add an IVF part with the same centroids (`nlist` ignored) until the count
    passes RETRAIN_GROWTH times the count trained on, which retrains (see the module
    docstring). Every call that changes the IVF measures recall@10 against exact search and
    records it. `vectors` may be a VectorSource (memory-mapped pieces, read in blocks). The
    caller holds the index's write lock.
    """
    start = time.perf_counter()
    folder = Path(folder)
    ids = np.asarray(doc_ids)
    if not isinstance(vectors, VectorSource) and np.ndim(vectors) != 2:
        raise VectorIndexError(f"{folder}: {len(ids)} doc ids but vectors of shape {np.shape(vectors)}")
    source = vectors if isinstance(vectors, VectorSource) else VectorSource([(np.asarray(vectors), None)])
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise VectorIndexError(f"{folder}: doc ids must be a 1-d integer array")
    ids = ids.astype(np.int64)
    if len(source) != len(ids):
        raise VectorIndexError(f"{folder}: {len(ids)} doc ids but vectors of shape {source.shape}")
    if ids.size and (ids.min() < 0 or len(np.unique(ids)) != len(ids)):
        raise VectorIndexError(f"{folder}: doc ids must be distinct and non-negative")
    if not isinstance(vectors, VectorSource):
        _check_finite(folder, source.pieces[0][0])
    set_threads(threads)
    manifest = _read_manifest(folder) if (folder / MANIFEST).exists() else None
    if manifest is not None and len(ids) and manifest["dim"] != source.dim:
        raise VectorIndexError(
            f"{folder}: vectors have {source.dim} dimensions, the index {manifest['dim']}; "
            "delete the folder to index another model"
        )
    if len(ids) == 0:
        current = VectorIndex._load(folder, manifest) if manifest else None
        return VectorUpdate(0, current.count if current else 0, current.mode if current else "exact",
                            current.recall_at_10 if current else None, time.perf_counter() - start)
    folder.mkdir(parents=True, exist_ok=True)
    _sweep(folder, manifest)
    old = VectorIndex._load(folder, manifest) if manifest else None
    if old is not None and old.count:
        clash = ids[ids <= old.max_doc]
        if clash.size and (np.unpackbits(old._stored_bitmap, count=old.max_doc + 1, bitorder="little")[clash]).any():
            raise VectorIndexError(f"{folder}: some doc ids already have a vector (ids are never reused)")
    draft = dict(manifest) if manifest else {
        "format": FORMAT, "dim": int(source.dim), "count": 0, "max_doc": -1, "mode": "exact", "next_file": 0,
        "segments": [], "parts": [], "nlist": None, "trained_on": None, "trained_count": None, "seed": seed,
        "recall_at_10": None, "recall_queries": None,
    }
    draft["count"] = int(draft["count"]) + len(ids)
    draft["max_doc"] = max(int(draft["max_doc"]), int(ids.max()))
    draft["nprobe"] = int(nprobe)
    draft["exact_max"] = int(exact_max)
    retrained = False
    if draft["mode"] == "exact" and draft["count"] <= exact_max:
        vecs = normalise(source.all())
        _check_finite(folder, vecs)
        name = _next_name(draft, "seg")
        _save_npy(folder / f"{name}.ids.npy", ids)
        _save_npy(folder / f"{name}.vec.npy", vecs)
        draft["segments"] = [*draft["segments"], {"name": name, "count": len(ids)}]
        if progress:
            progress(len(ids))
    else:
        trained_count = int(draft.get("trained_count") or draft.get("trained_on") or 0)
        retrained = draft["mode"] == "ivf" and draft["count"] > RETRAIN_GROWTH * trained_count
        if draft["mode"] == "exact" or retrained:
            part = _train_ivf(folder, old, ids, source, draft, nlist, seed, progress)
            draft["segments"] = []
            draft["parts"] = []
            draft["mode"] = "ivf"
        else:
            part = _empty_like(old._parts[0])
            _add(folder, part, ids, source.blocks(), progress)
        name = _next_name(draft, "ivf")
        _write_index(part, folder / f"{name}.faiss")
        draft["parts"] = [*draft["parts"], {"file": f"{name}.faiss", "count": int(part.ntotal)}]
        del part
        if len(draft["parts"]) > MAX_PARTS:
            _compact(folder, draft)
        index = VectorIndex._load(folder, draft)
        draft["recall_at_10"] = index.measure_recall(seed=seed)
        draft["recall_queries"] = min(RECALL_QUERIES, draft["count"])
        index.recall_at_10 = draft["recall_at_10"]
    write_json_atomic(folder / MANIFEST, draft)  # the commit point
    _sweep(folder, draft)
    return VectorUpdate(len(ids), draft["count"], draft["mode"], draft["recall_at_10"], time.perf_counter() - start,
                        retrained)


def _check_finite(folder: Path, vecs: np.ndarray) -> None:
    for start in range(0, len(vecs), _BLOCK):
        if not np.isfinite(vecs[start:start + _BLOCK]).all():
            raise VectorIndexError(f"{folder}: vectors contain NaN or infinity; recompute the embeddings")


def _next_name(draft: dict, prefix: str) -> str:
    number = int(draft["next_file"])
    draft["next_file"] = number + 1
    return f"{prefix}-{number:06d}"


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def _write_index(index: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        _faiss().write_index(index, str(tmp))


def _sweep(folder: Path, manifest: dict | None) -> None:
    """Remove our files the manifest does not list (a crashed run's, or replaced ones) and stale temporaries."""
    remove_stale_temporaries(folder)
    manifest = manifest or {}
    listed = {f"{s['name']}.{suffix}.npy" for s in manifest.get("segments", []) for suffix in ("ids", "vec")}
    listed |= {p["file"] for p in manifest.get("parts", [])}
    removed = False
    for path in folder.iterdir():
        if _OWN_FILE.fullmatch(path.name) and path.name not in listed:
            path.unlink(missing_ok=True)
            removed = True
    if removed:
        fsync_dir(folder)


def _train_ivf(folder: Path, old: VectorIndex | None, ids: np.ndarray, source: VectorSource, draft: dict,
               nlist: int | None, seed: int, progress: Callable[[int], None] | None) -> Any:
    """A new IVF holding every vector: k-means on a seeded sample of the stored ones plus `source`, then all added.

    Nothing is held whole in memory but the sample and the index being built: the stored
    vectors are read list by list (or segment by segment), `source` block by block.
    """
    faiss = _faiss()
    n_old = old.count if old is not None else 0
    n, dim = n_old + len(ids), source.dim
    nlist = int(nlist) if nlist else auto_nlist(n)
    nlist = max(1, min(nlist, n))
    rng = np.random.default_rng(seed)
    sample_size = min(n, nlist * TRAIN_POINTS_PER_LIST)
    picked = np.sort(rng.choice(n, size=sample_size, replace=False)) if sample_size < n else np.arange(n)
    sample = [np.asarray(b) for b in _gather(old, picked[picked < n_old])]
    sample.append(normalise(source.take(picked[picked >= n_old] - n_old)))
    sample = np.ascontiguousarray(np.concatenate(sample), dtype=np.float32)
    _check_finite(folder, sample)
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.niter = KMEANS_ITERATIONS
    index.cp.spherical = True
    index.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST + 1  # we sampled already: no second sampling
    index.cp.min_points_per_centroid = 1
    index.cp.verbose = False
    index.train(sample)
    del sample
    if old is not None:
        for old_ids, old_vecs in old._blocks():
            index.add_with_ids(np.ascontiguousarray(old_vecs), np.ascontiguousarray(old_ids))
    _add(folder, index, ids, source.blocks(), progress)
    draft["nlist"] = nlist
    draft["trained_on"] = int(sample_size)
    draft["trained_count"] = int(n)
    draft["seed"] = seed
    return index


def _gather(index: VectorIndex | None, positions: np.ndarray) -> Iterator[np.ndarray]:
    """Stored vectors at ascending `positions` of the `_blocks()` order (one sequential pass)."""
    if index is None or not len(positions):
        return
    offset = 0
    for block_ids, block_vecs in index._blocks():
        end = offset + len(block_ids)
        lo, hi = np.searchsorted(positions, [offset, end])
        if hi > lo:
            yield np.asarray(block_vecs[positions[lo:hi] - offset], dtype=np.float32)
        offset = end
        if hi == len(positions):
            return


def _add(folder: Path, index: Any, ids: np.ndarray, blocks: Iterator[np.ndarray],
         progress: Callable[[int], None] | None) -> None:
    """Add the new vectors (normalised block by block, refused if not finite), reporting each block."""
    start = 0
    for block in blocks:
        vecs = normalise(block)
        _check_finite(folder, vecs)
        index.add_with_ids(vecs, np.ascontiguousarray(ids[start:start + len(vecs)]))
        start += len(vecs)
        if progress:
            progress(len(vecs))


def _empty_like(part: Any) -> Any:
    """An empty IVF with the same (trained) centroids: new vectors land in the same lists."""
    faiss = _faiss()
    quantizer = faiss.clone_index(faiss.downcast_index(part.quantizer))
    index = faiss.IndexIVFFlat(quantizer, part.d, part.nlist, faiss.METRIC_INNER_PRODUCT)  # keeps a reference
    index.is_trained = True
    return index


def _compact(folder: Path, draft: dict) -> None:
    """Merge every part after the first into one new part (copies list by list; nothing is retrained)."""
    faiss = _faiss()
    flags = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP) | faiss.IO_FLAG_READ_ONLY
    tail = [faiss.read_index(str(folder / p["file"]), flags) for p in draft["parts"][1:]]
    merged = _empty_like(tail[0])
    dim = merged.d
    for part in tail:
        for list_no in range(part.nlist):
            ids, vecs = _list_view(part.invlists, list_no, dim)
            if len(ids):
                merged.invlists.add_entries(list_no, len(ids), faiss.swig_ptr(np.ascontiguousarray(ids)),
                                            faiss.swig_ptr(np.ascontiguousarray(vecs).view(np.uint8)))
        merged.ntotal += part.ntotal
    name = _next_name(draft, "ivf")
    _write_index(merged, folder / f"{name}.faiss")
    draft["parts"] = [draft["parts"][0], {"file": f"{name}.faiss", "count": int(merged.ntotal)}]
