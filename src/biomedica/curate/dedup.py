"""Duplicate groups over the archive: exact (sha256) and near (pHash), plus eval-set leaks.

Every sample gets a row in `annotations/dedup.parquet`:

| column | meaning |
|---|---|
| key | sample key |
| exact_group | smallest key with the same stored bytes (sha256) |
| dup_group | smallest key of its near-duplicate group (pHash within `near_threshold`, transitive) |
| dup_kind | `unique`, `exact` (only byte-identical copies) or `near` |
| group_size | samples in `dup_group` |
| cross_article | the group spans more than one article |
| canonical | True for the one sample per group that `select --canonical-only` keeps |
| canonical_key | that sample's key |
| distance_to_canonical | pHash distance to the canonical sample (0 for itself) |
| leak | the image matches an evaluation image (sha256 or pHash within `leak_threshold`) |
| leak_match, leak_distance | the closest evaluation image and its distance |

The canonical sample of a group is the most reusable one: the most permissive licence group
(commercial, then noncommercial, then other), then the most pixels, then the smallest key.
Near-duplicate search uses multi-index hashing (`curate.hamming`), never all pairs; at scale it
runs partitioned with a memory budget, in processes or on Ray (`curate.dedup_partition`).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from biomedica.archive.keys import sample_article
from biomedica.curate.components import connected_components
from biomedica.curate.config import DedupConfig
from biomedica.curate.dedup_partition import near_groups
from biomedica.curate.hamming import hamming_pairs, hashes_from_hex
from biomedica.images.phash import perceptual_hash
from biomedica.records import ErrorRecord

DEDUP_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("exact_group", pa.string()),
        ("dup_group", pa.string()),
        ("dup_kind", pa.string()),
        ("group_size", pa.int32()),
        ("cross_article", pa.bool_()),
        ("canonical", pa.bool_()),
        ("canonical_key", pa.string()),
        ("distance_to_canonical", pa.int16()),
        ("leak", pa.bool_()),
        ("leak_match", pa.string()),
        ("leak_distance", pa.int16()),
    ]
)
DEDUP_INPUT_COLUMNS = ["key", "pmcid", "sha256", "phash", "width", "height", "license_group"]
_GROUP_RANK = {"commercial": 0, "noncommercial": 1, "other": 2}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".gif", ".bmp", ".webp", ".jp2"}


@dataclass
class EvalImageSet:
    """Hashes of an evaluation set's images: ids (path or name), sha256 (may be None), pHash."""

    ids: list[str]
    sha256: list[str | None]
    phash: list[str | None]
    errors: list[ErrorRecord]


def load_eval_images(path: Path) -> EvalImageSet:
    """Hash a folder of evaluation images, or read a table with `phash` (and optional `sha256`, `id`).

    Tables: .parquet, .csv or .txt (one pHash per line). Unreadable images become
    ErrorRecords (kind `eval-image-unreadable`), not a failed run.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: evaluation image set not found; pass a folder of images or a hash table")
    if path.is_dir():
        return _hash_image_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
    elif suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    elif suffix == ".txt":
        rows = [{"phash": line.strip()} for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        raise ValueError(f"{path}: unknown evaluation set format {suffix!r}; use a folder, .parquet, .csv or .txt")
    if rows and "phash" not in rows[0] and "sha256" not in rows[0]:
        raise ValueError(f"{path}: needs a `phash` or `sha256` column (16 hex digits / 64 hex digits)")
    return EvalImageSet(
        ids=[str(r.get("id") or r.get("key") or f"{path.name}:{i}") for i, r in enumerate(rows)],
        sha256=[r.get("sha256") or None for r in rows],
        phash=[r.get("phash") or None for r in rows],
        errors=[],
    )


def _hash_image_folder(folder: Path) -> EvalImageSet:
    result = EvalImageSet([], [], [], [])
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        data = file.read_bytes()
        try:
            with Image.open(file) as image:
                phash = perceptual_hash(image)
        except Exception as exc:  # any decoder failure: record it, keep going
            result.errors.append(
                ErrorRecord(
                    id=str(file.relative_to(folder)), stage="curate", kind="eval-image-unreadable",
                    message=f"{file}: cannot decode evaluation image ({exc}); only its sha256 is checked",
                    source=str(file),
                )
            )
            phash = None
        result.ids.append(str(file.relative_to(folder)))
        result.sha256.append(hashlib.sha256(data).hexdigest())
        result.phash.append(phash)
    return result


def _codes(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Integer code per value (equal values, equal codes); each null or empty string gets its own code."""
    encoded = pc.dictionary_encode(pa.chunked_array([values]) if isinstance(values, pa.Array) else values).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.float64)
    dictionary = encoded.dictionary.to_pylist()
    missing = np.isnan(codes)
    if "" in dictionary:
        missing |= codes == dictionary.index("")
    codes = np.nan_to_num(codes, nan=0.0).astype(np.int64)
    codes[missing] = len(dictionary) + np.arange(int(missing.sum()))
    return codes


def _smallest_key_per_label(labels: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For each element, the smallest key among elements with the same label (keys sorted ascending)."""
    # keys are sorted, so the first index of each label holds its smallest key
    _, first_index, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return keys[first_index][inverse]


def find_duplicates(
    index: pa.Table,
    config: DedupConfig = DedupConfig(),
    eval_set: EvalImageSet | None = None,
    work_dir: Path | None = None,
    stats: dict[str, int] | None = None,
) -> pa.Table:
    """The dedup table (DEDUP_SCHEMA) for shard-index rows with DEDUP_INPUT_COLUMNS.

    With `config.partitioned` the near search runs as budgeted units (`curate.dedup_partition`)
    in a run folder under `work_dir` (the system temp folder if None); the table is the same.
    `stats`, when given, receives the partitioned search's counts (units, block units, pairs).
    """
    index = index.sort_by("key")
    keys = np.array(index.column("key").to_pylist(), dtype=object)
    n = len(keys)
    if n == 0:
        return DEDUP_SCHEMA.empty_table()
    if len(set(keys.tolist())) != n:
        raise ValueError("duplicate sample keys in the shard index: the archive is damaged; run `biomedica inspect --verify`")
    sha = index.column("sha256").to_pylist()  # for the eval leak check
    hashes, valid = hashes_from_hex(index.column("phash"))

    # exact groups: same sha256 (a missing sha256 is its own group); Arrow's dictionary
    # encoding does the string grouping in C
    exact_labels = _codes(index.column("sha256"))

    # near groups: collapse equal hashes, search the distinct ones, link samples through them
    valid_idx = np.nonzero(valid)[0]
    unique_hashes, hash_inverse = np.unique(hashes[valid_idx], return_inverse=True)
    # node ids: samples 0..n-1, exact groups n.., distinct hashes after them
    n_exact = int(exact_labels.max()) + 1
    hash_node = n + n_exact + hash_inverse
    edges_a = [n + exact_labels, hash_node]
    edges_b = [np.arange(n, dtype=np.int64), valid_idx.astype(np.int64)]
    if config.partitioned:  # each distinct hash linked to its group's label: the same components as all pairs
        search = near_groups(
            unique_hashes, config.near_threshold, memory=config.memory, workers=config.workers,
            executor=config.executor, partitions=config.partitions, work_dir=work_dir,
        )
        edges_a.append(n + n_exact + np.arange(len(unique_hashes), dtype=np.int64))
        edges_b.append(n + n_exact + search.labels)
        if stats is not None:
            stats.update(near_units=search.units, near_block_units=search.block_units, near_pairs=search.pairs)
    else:
        for first, second, _ in hamming_pairs(unique_hashes, None, config.near_threshold):
            edges_a.append(n + n_exact + first)
            edges_b.append(n + n_exact + second)
    total_nodes = n + n_exact + len(unique_hashes)
    components = connected_components(total_nodes, np.concatenate(edges_a), np.concatenate(edges_b))[:n]

    exact_group = _smallest_key_per_label(exact_labels, keys)
    dup_group = _smallest_key_per_label(components, keys)
    _, group_inverse, group_sizes = np.unique(components, return_inverse=True, return_counts=True)
    size = group_sizes[group_inverse]
    _, exact_inverse, exact_sizes = np.unique(exact_labels, return_inverse=True, return_counts=True)
    exact_size = exact_sizes[exact_inverse]

    # canonical: licence rank, then most pixels, then smallest key
    groups = index.column("license_group").to_pylist()
    rank = np.array([_GROUP_RANK.get(g or "other", 2) for g in groups], dtype=np.int64)
    width = np.array([w or 0 for w in index.column("width").to_pylist()], dtype=np.int64)
    height = np.array([h or 0 for h in index.column("height").to_pylist()], dtype=np.int64)
    order = np.lexsort((np.arange(n), -(width * height), rank, components))
    sorted_components = components[order]
    starts = np.flatnonzero(np.r_[True, sorted_components[1:] != sorted_components[:-1]])
    best_of_run = order[starts]  # the first of each component's run is its canonical sample
    run_of_sorted = np.cumsum(np.r_[True, sorted_components[1:] != sorted_components[:-1]]) - 1
    canonical_index = np.empty(n, dtype=np.int64)
    canonical_index[order] = best_of_run[run_of_sorted]
    canonical = canonical_index == np.arange(n)
    distance = np.where(
        valid & valid[canonical_index], np.bitwise_count(hashes ^ hashes[canonical_index]).astype(np.int64), -1
    )
    distance = np.where(canonical, 0, distance)

    articles = pa.array([sample_article(k, p) for p, k in zip(index.column("pmcid").to_pylist(), keys)], pa.string())
    article_codes = _codes(articles)[order]
    lowest = np.minimum.reduceat(article_codes, starts)
    highest = np.maximum.reduceat(article_codes, starts)
    cross = np.empty(n, dtype=bool)
    cross[order] = (lowest != highest)[run_of_sorted]

    kind = np.where(size == 1, "unique", np.where(exact_size == size, "exact", "near"))
    leak, leak_match, leak_distance = _leaks(sha, hashes, valid, eval_set, config.leak_threshold)
    return pa.table(
        {
            "key": pa.array(keys.tolist(), pa.string()),
            "exact_group": pa.array(exact_group.tolist(), pa.string()),
            "dup_group": pa.array(dup_group.tolist(), pa.string()),
            "dup_kind": pa.array(kind.tolist(), pa.string()),
            "group_size": pa.array(size, pa.int32()),
            "cross_article": pa.array(cross, pa.bool_()),
            "canonical": pa.array(canonical, pa.bool_()),
            "canonical_key": pa.array(keys[canonical_index].tolist(), pa.string()),
            "distance_to_canonical": pa.array(distance, pa.int16(), mask=distance < 0),
            "leak": pa.array(leak, pa.bool_()),
            "leak_match": pa.array(leak_match, pa.string()),
            "leak_distance": pa.array(leak_distance, pa.int16()),
        },
        schema=DEDUP_SCHEMA,
    )


def _leaks(
    sha: list[str | None], hashes: np.ndarray, valid: np.ndarray, eval_set: EvalImageSet | None, threshold: int
) -> tuple[list[bool], list[str | None], list[int | None]]:
    n = len(sha)
    leak = [False] * n
    match: list[str | None] = [None] * n
    best: list[int | None] = [None] * n
    if eval_set is None or not eval_set.ids:
        return leak, match, best
    by_sha = {s: i for i, s in enumerate(eval_set.sha256) if s}
    for i, s in enumerate(sha):
        if s and s in by_sha:
            leak[i], match[i], best[i] = True, eval_set.ids[by_sha[s]], 0
    eval_hashes, eval_valid = hashes_from_hex(eval_set.phash)
    eval_idx = np.nonzero(eval_valid)[0]
    sample_idx = np.nonzero(valid)[0]
    for q, d, dist in hamming_pairs(hashes[sample_idx], eval_hashes[eval_idx], threshold):
        for qi, di, distance in zip(sample_idx[q].tolist(), eval_idx[d].tolist(), dist.tolist()):
            if best[qi] is None or distance < best[qi]:
                leak[qi], match[qi], best[qi] = True, eval_set.ids[di], distance
    return leak, match, best
