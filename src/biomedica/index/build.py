"""build_index: bring ARCHIVE/index/ up to date with the archive and its annotations, incrementally.

One run (holding `index/.biomedica.lock`):
1. repair: a previous run that died after its tantivy commit but before state.json left docs
   of a later batch; they are deleted from tantivy and their docs part removed, then redone;
2. new units only: every sample of a unit the index does not hold gets the next doc id
   (docs/NNNN.arrow and key_order.npy, written before the tantivy commit); live ones go into tantivy;
3. superseded copies (archive.superseded) are deleted from tantivy and masked (`live`);
4. filters.arrow (every filter column as codes, memory-mapped by readers) is rebuilt when docs
   were added or the annotation tables or the superseded list changed;
5. vectors: for each embedding folder and kind (image, text), the parts not yet indexed are
   mapped key -> doc id (pyarrow index_in per shard, no per-key Python) and appended in one
   update (biomedica.search.vectors.update_vectors with a VectorSource over the memory-mapped
   parts: read block by block, so a first IVF is trained on a sample of all of them);
6. state.json, written last: what the index holds. A reader trusts only what it lists.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biomedica.archive.annotations import AnnotationStore
from biomedica.archive.reader import is_archive
from biomedica.archive.superseded import superseded_keys
from biomedica.archive.units import completed_units
from biomedica.index.config import IndexConfig
from biomedica.io.atomic import write_json_atomic
from biomedica.io.lock import ArchiveLock
from biomedica.search.docs import docs_part, part_rows, read_docs, unit_samples, write_docs_part, write_key_order
from biomedica.search.filters import annotation_fingerprint, build_filter_table, read_live, write_filter_columns
from biomedica.search.keyword import KeywordWriter
from biomedica.search.layout import KINDS, SCHEMA_VERSION, IndexLayout
from biomedica.search.reader import read_state

Progress = Callable[[int, int], None]  # (docs just indexed, docs to index in this run)
EMBED_HINT = "keyword search only: `biomedica curate embed ARCHIVE` computes embeddings, then rerun index for semantic search"


class NothingToIndex(ValueError):
    """The archive holds no complete unit (or is no archive); the message says what to run."""


@dataclass
class VectorSummary:
    name: str
    kind: str
    added: int
    total: int
    mode: str
    recall_at_10: float | None
    retrained: bool = False  # the IVF centroids were retrained this run (the count passed 8x their training count)


@dataclass
class IndexResult:
    index_dir: Path
    units_new: int
    units_skipped: int
    docs_added: int
    docs_removed: int  # deleted from the keyword index: newly superseded copies
    docs_repaired: int  # docs of an interrupted earlier run, removed and redone
    docs_total: int
    docs_live: int
    filters_refreshed: bool
    vectors: list[VectorSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def docs_per_second(self) -> float:
        return self.docs_added / self.seconds if self.seconds > 0 else 0.0


def build_index(config: IndexConfig, progress: Progress | None = None) -> IndexResult:
    """Index what is new in the archive (see the module docstring); returns counts for the summary."""
    started = time.monotonic()
    archive = Path(config.archive)
    if not is_archive(archive):
        raise NothingToIndex(f"{archive}: not a biomedica archive; run `biomedica ingest SOURCE --out {archive}` first")
    units = completed_units(archive)
    if not units:
        raise NothingToIndex(f"{archive}: the archive holds no ingested documents yet; "
                             f"run `biomedica ingest SOURCE --out {archive}` first")
    layout = IndexLayout(config.index_folder())
    store = AnnotationStore(config.annotations_folder())
    layout.root.mkdir(parents=True, exist_ok=True)
    with ArchiveLock(layout.root, "biomedica index"):
        result = _build(config, archive, units, layout, store, progress)
    result.seconds = time.monotonic() - started
    return result


def _build(config: IndexConfig, archive: Path, units: dict, layout: IndexLayout, store: AnnotationStore,
           progress: Progress | None) -> IndexResult:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    state = read_state(layout) or {"schema_version": SCHEMA_VERSION, "batch": 0, "units": [], "docs": 0,
                                   "created": now, "embeddings": {}}
    last = int(state["batch"])
    writer = KeywordWriter(layout.keyword)
    # 1. repair a run that died after its commit but before state.json
    repaired = 0
    for batch, path in layout.docs_parts():
        if batch > last:
            repaired += part_rows(path)
            path.unlink()
    writer.delete_batches_after(last)
    docs = read_docs(layout, through_batch=last)
    if docs.num_rows != state["docs"]:
        raise ValueError(f"{layout.root}: the docs table has {docs.num_rows} rows, state.json says {state['docs']}; "
                         "delete the index folder and run `biomedica index` again")
    previous_live = read_live(layout.filters, docs.num_rows)

    # 2. new units
    indexed = set(state["units"])
    new_units = [u for u in units if u not in indexed]
    superseded = superseded_keys(archive)
    batch = last + 1
    to_add = sum(units[u].total_samples for u in new_units)
    parts, next_doc = [], docs.num_rows
    for unit in new_units:
        part = index_unit(writer, unit_samples(archive, unit, units[unit]), next_doc, batch, superseded)
        next_doc += part.num_rows
        parts.append(part)
        if progress:
            progress(part.num_rows, to_add)
    if parts:
        write_docs_part(layout, batch, pa.concat_tables(parts))
        all_docs = read_docs(layout, through_batch=batch)  # memory-mapped, as a reader sees it
    else:
        all_docs = docs
    if parts or not layout.key_order.is_file():
        write_key_order(layout, all_docs)

    # 3. superseded copies leave the keyword index
    live = _live(all_docs, superseded)
    superseded_sig = _superseded_signature(superseded)
    old_live = previous_live if previous_live is not None else np.ones(docs.num_rows, bool)
    removed = int((old_live & ~live[: docs.num_rows]).sum())
    if superseded_sig != state.get("superseded") or parts:
        writer.delete_docs(np.flatnonzero(~live[: docs.num_rows]))
    writer.commit()

    # 4. annotation filters
    fingerprint = annotation_fingerprint(store)
    refresh = (bool(parts) or fingerprint != state.get("annotation_fingerprint")
               or superseded_sig != state.get("superseded") or not layout.filters.is_file())
    if refresh:
        write_filter_columns(layout.filters, all_docs, build_filter_table(all_docs, live, store))

    # 5. vectors
    vectors, notes = update_all_vectors(config, layout, store, all_docs, state)

    # 6. state, last
    state.update({
        "schema_version": SCHEMA_VERSION, "archive": str(archive), "annotations": str(store.root),
        "batch": batch if parts else last, "units": sorted(indexed | set(new_units)), "docs": all_docs.num_rows,
        "live_docs": int(live.sum()), "annotation_fingerprint": fingerprint, "superseded": superseded_sig,
        "updated": now,
    })
    write_json_atomic(layout.state, state)
    return IndexResult(
        index_dir=layout.root, units_new=len(new_units), units_skipped=len(units) - len(new_units),
        docs_added=all_docs.num_rows - docs.num_rows, docs_removed=removed, docs_repaired=repaired,
        docs_total=all_docs.num_rows, docs_live=int(live.sum()), filters_refreshed=refresh,
        vectors=vectors, notes=notes,
    )


def index_unit(writer: KeywordWriter, samples: pa.Table, first_doc: int, batch: int,
               superseded: dict[str, frozenset[str]]) -> pa.Table:
    """One unit's docs part (doc ids from `first_doc`); its live samples go into the keyword writer.

    Public so benchmarks/search.py builds its synthetic index through the same code.
    """
    part = docs_part(samples, first_doc)
    live = _live(part, superseded)
    for i, row in enumerate(samples.to_pylist()):
        if live[i]:
            writer.add(first_doc + i, batch, row)
    return part


def _live(docs: pa.Table, superseded: dict[str, frozenset[str]]) -> np.ndarray:
    """Bool per row of a docs table: not listed as superseded in its shard (vectorised: one is_in)."""
    if not superseded or not docs.num_rows:
        return np.ones(docs.num_rows, bool)
    listed = pa.array([f"{shard}\t{key}" for shard, keys in superseded.items() for key in keys], pa.string())
    tar = pc.replace_substring_regex(docs.column("shard"), pattern=r"^.*/", replacement="")  # shard_name: the file name
    names = pc.binary_join_element_wise(pc.binary_join_element_wise(docs.column("group"), tar, "/"),
                                        docs.column("key"), "\t")
    return ~np.asarray(pc.is_in(names, value_set=listed).to_numpy(zero_copy_only=False), bool)


def _superseded_signature(superseded: dict[str, frozenset[str]]) -> str:
    digest = hashlib.sha256()
    for shard in sorted(superseded):
        for key in sorted(superseded[shard]):
            digest.update(f"{shard}\t{key}\n".encode())
    return digest.hexdigest()


def _shard_ranges(docs: pa.Table) -> dict[str, tuple[int, int]]:
    """`<group>-<shard stem>` (an embedding part's name) -> the doc range of that shard (contiguous by construction)."""
    if not docs.num_rows:
        return {}
    shard = pc.binary_join_element_wise(docs.column("group"), docs.column("shard"), "\x00")
    codes = np.asarray(pc.dictionary_encode(shard).combine_chunks().indices.to_numpy(zero_copy_only=False))
    starts = np.concatenate([[0], np.flatnonzero(codes[1:] != codes[:-1]) + 1])
    stops = np.append(starts[1:], len(codes))
    groups = pc.take(docs.column("group"), pa.array(starts)).to_pylist()
    shards = pc.take(docs.column("shard"), pa.array(starts)).to_pylist()
    return {f"{g}-{Path(sh).stem}": (int(a), int(b)) for g, sh, a, b in zip(groups, shards, starts, stops)}


def _map_part(part_keys: pa.Array, keys: pa.ChunkedArray, start: int, stop: int, present: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """(rows of an embedding part, their doc ids) for its keys found in the shard's doc range [start, stop)
    and not yet holding a vector (`present`, bool per doc)."""
    shard_keys = keys.slice(start, stop - start).combine_chunks()
    where = pc.fill_null(pc.index_in(part_keys, value_set=shard_keys), -1).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(where >= 0)
    docs = start + where[rows].astype(np.int64)
    keep = ~present[docs]
    return rows[keep], docs[keep]


def _embedding_names(config: IndexConfig, store: AnnotationStore) -> list[str]:
    root = Path(store.root) / "embeddings"
    present = sorted(p.name for p in root.iterdir() if (p / "meta.json").is_file()) if root.is_dir() else []
    if not config.embeddings:
        return present
    missing = [n for n in config.embeddings if n not in present]
    if missing:
        raise ValueError(f"{root}: no embedding folder {', '.join(repr(n) for n in missing)} "
                         f"(present: {', '.join(present) or 'none'}); run `biomedica curate embed` first")
    return list(config.embeddings)


def update_all_vectors(config: IndexConfig, layout: IndexLayout, store: AnnotationStore, docs: pa.Table,
                        state: dict) -> tuple[list[VectorSummary], list[str]]:
    """Step 5 for every embedding folder and kind; records each in `state["embeddings"]` (written by the caller)."""
    names = _embedding_names(config, store)
    if not names:
        return [], [EMBED_HINT]
    ranges = _shard_ranges(docs)
    keys = docs.column("key")
    summaries = []
    recorded = state.setdefault("embeddings", {})
    for name in names:
        folder = store.embeddings_dir(name)
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        entry = recorded.get(name)
        same = ("model", "pretrained", "dim", "decode")
        if entry is not None and any(entry.get("meta", {}).get(k) != meta.get(k) for k in same):
            shutil.rmtree(layout.vectors(name, "image").parent, ignore_errors=True)  # re-embedded: start over
            entry = None
        entry = entry or {"kinds": {}}
        entry["meta"] = meta
        for kind in KINDS:
            summary = _update_kind(config, layout.vectors(name, kind), folder, kind, ranges, keys,
                                   entry["kinds"].get(kind))
            if summary is None:
                continue
            vector_summary, kind_state = summary
            entry["kinds"][kind] = kind_state
            vector_summary.name = name
            summaries.append(vector_summary)
        recorded[name] = entry
    return summaries, []


def _update_kind(config: IndexConfig, target: Path, folder: Path, kind: str, ranges: dict[str, tuple[int, int]],
                 keys: pa.ChunkedArray, kind_state: dict | None) -> tuple[VectorSummary, dict] | None:
    done = set((kind_state or {}).get("parts", []))
    stems = sorted(p.name[: -len(".keys.parquet")] for p in folder.glob("*.keys.parquet"))
    todo = [s for s in stems if s not in done and s in ranges and (folder / f"{s}.{kind}.npy").is_file()]
    if not todo and kind_state is None:
        return None
    from biomedica.search.vectors import VectorSource, update_vectors

    existing = _open_vectors(target)
    # a run that died after appending: its vectors are in, its state.json is not
    present = np.zeros(len(keys), bool)
    if existing is not None:
        stored = np.asarray(existing.doc_ids)
        present[stored[stored < len(present)]] = True
    pieces: list[tuple[np.ndarray, np.ndarray]] = []
    doc_ids: list[np.ndarray] = []
    for stem in todo:
        part_keys = pq.read_table(folder / f"{stem}.keys.parquet", columns=["key"]).column("key").combine_chunks()
        vectors = np.load(folder / f"{stem}.{kind}.npy", mmap_mode="r", allow_pickle=False)
        rows, docs = _map_part(part_keys, keys, *ranges[stem], present)
        if len(rows):
            finite = np.isfinite(vectors[rows]).all(axis=1)  # undecodable images are NaN rows: no vector
            pieces.append((vectors, rows[finite]))
            doc_ids.append(docs[finite])
        done.add(stem)
    update = None
    if doc_ids and sum(len(d) for d in doc_ids):
        # one update for every new part: a first IVF is trained on a sample of all of them (read block by block)
        update = update_vectors(target, np.concatenate(doc_ids), VectorSource(pieces),
                                exact_max=config.exact_max, nlist=config.nlist, nprobe=config.nprobe)
    if update is None:  # nothing new: report what is there
        if existing is None:
            return None
        added, total, mode, recall, retrained = 0, existing.count, existing.mode, existing.recall_at_10, False
    else:
        added, total, mode, recall, retrained = (update.added, update.total, update.mode, update.recall_at_10,
                                                 update.retrained)
    kind_state = {"parts": sorted(done), "count": total, "mode": mode, "recall_at_10": recall}
    return VectorSummary("", kind, added, total, mode, recall, retrained), kind_state


def _open_vectors(folder: Path):
    """The VectorIndex at `folder`, None when there is none (yet)."""
    from biomedica.search.vectors import VectorIndex, VectorIndexMissing

    if not folder.is_dir():
        return None
    try:
        return VectorIndex.open(folder)
    except VectorIndexMissing:
        return None
