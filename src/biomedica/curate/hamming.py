"""Near-neighbour search over 64-bit hashes by Hamming distance, with multi-index hashing.

All-pairs comparison is quadratic; multi-index hashing (Norouzi et al., CVPR 2012) is not.
Split the 64 bits into m chunks: if two hashes differ in at most t bits, then by the
pigeonhole principle at least one chunk differs in at most floor(t / m) bits. So for each
chunk we sort the hashes by that chunk and look up, for every hash, the chunk values within
radius floor(t / m) of its own (an offset-table lookup, or a binary search for chunks wider
than 24 bits); only those candidates get a full 64-bit comparison. `plan_chunks` picks m
from a measured cost model so buckets stay small, so the work grows far slower than N^2.

Everything is vectorised numpy (bincount, repeat, bitwise_count) and runs in blocks of
queries so memory stays bounded. Equal hashes should be collapsed before calling (the
callers do: `np.unique`), because a bucket of k equal hashes has k^2 pairs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HASH_BITS = 64
QUERY_BLOCK = 65_536  # queries per vectorised step
MAX_PAIRS_PER_STEP = 8_000_000  # candidate pairs materialised at once (8 bytes each, a few arrays)
PROBE_COST = 4.0  # one chunk probe (table lookup or binary search) in units of one candidate check
DIRECT_TABLE_BITS = 24  # chunks up to this width get an offset table (2^24 int64 = 128 MiB at most)


def hashes_from_hex(values: list[str | None] | np.ndarray | pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hashes, bool valid) from 16-hex-digit strings; None/invalid -> valid False.

    Vectorised: validity by an Arrow regex, then one `bytes.fromhex` over all valid values
    read as big-endian uint64 (about 50x faster than int(value, 16) per row).
    """
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values), pa.string())
    valid = pc.fill_null(pc.match_substring_regex(array, r"^[0-9a-fA-F]{16}$"), False).to_numpy(zero_copy_only=False)
    out = np.zeros(len(valid), dtype=np.uint64)
    if valid.any():
        kept = pc.filter(array, pa.array(valid)).to_pylist()
        out[valid] = np.frombuffer(bytes.fromhex("".join(kept)), dtype=">u8").astype(np.uint64)
    return out, valid


def popcount(values: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64."""
    return np.bitwise_count(values).astype(np.int64)


@dataclass(frozen=True)
class ChunkPlan:
    """How the 64 bits are split: chunk widths (bits) and the radius searched in each chunk."""

    widths: tuple[int, ...]
    radius: int

    @property
    def shifts(self) -> tuple[int, ...]:
        shifts, position = [], HASH_BITS
        for width in self.widths:
            position -= width
            shifts.append(position)
        return tuple(shifts)


def plan_chunks(n_items: int, threshold: int, bits: int = HASH_BITS) -> ChunkPlan:
    """The chunking with the lowest estimated cost per query for `n_items` hashes.

    `bits` < 64: only the top `bits` bits vary (the rest are equal in every hash), so only
    they are chunked (the partitioned search drops bits a whole group shares).

    For m chunks of ~64/m bits the pigeonhole radius is r = threshold // m; a query costs
    m x probes binary searches (probes = values within radius r of a chunk) plus the
    candidates they return (about probes x n / 2^width per chunk), each a full comparison.
    PROBE_COST was measured (vectorised numpy, 50k-400k hashes): one probe costs about as
    much as 4 candidate checks (random gathers miss the cache; candidates are read in order).
    """
    if not 0 <= threshold < HASH_BITS:
        raise ValueError(f"Hamming threshold must be in 0..63, got {threshold}")
    n = max(n_items, 2)
    search_cost = PROBE_COST
    best: tuple[float, ChunkPlan] | None = None
    for chunks in range(1, min(threshold + 1, 16, bits) + 1):
        base, extra = divmod(bits, chunks)
        widths = tuple(base + (1 if i < extra else 0) for i in range(chunks))
        radius = threshold // chunks
        cost = 0.0
        for width in widths:
            probes = sum(math.comb(width, r) for r in range(radius + 1))
            cost += probes * (search_cost + n / 2.0**width)
        if best is None or cost < best[0]:
            best = (cost, ChunkPlan(widths=widths, radius=radius))
    return best[1]


def _flip_masks(width: int, radius: int) -> np.ndarray:
    """Every value with at most `radius` of the low `width` bits set (XOR masks to probe)."""
    masks = [0]
    for r in range(1, radius + 1):
        for bits in itertools.combinations(range(width), r):
            masks.append(sum(1 << b for b in bits))
    return np.array(masks, dtype=np.uint64)


def _expand_ranges(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner index, position) for every position in the ragged ranges [start, stop)."""
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    owners = np.repeat(np.arange(len(starts)), lengths)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return owners, np.repeat(starts, lengths) + offsets


def hamming_pairs(
    queries: np.ndarray,
    database: np.ndarray | None,
    threshold: int,
    max_pairs_per_step: int = MAX_PAIRS_PER_STEP,
    plan: ChunkPlan | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield blocks of (query index, database index, distance) with distance <= threshold.

    With `database=None` the queries are searched against themselves and each unordered
    pair is reported once (query index < database index). Pairs are unique within the
    whole output. `plan` (default `plan_chunks(len(database), threshold)`) must cover every
    bit in which two hashes may differ. `max_pairs_per_step` caps the candidates checked at once (memory: about
    50 bytes each); a memory-budgeted caller lowers it.
    """
    queries = np.ascontiguousarray(queries, dtype=np.uint64)
    self_join = database is None
    db = queries if self_join else np.ascontiguousarray(database, dtype=np.uint64)
    if len(queries) == 0 or len(db) == 0:
        return
    plan = plan or plan_chunks(len(db), threshold)
    seen_chunks: list[tuple[np.ndarray, int, int]] = []  # to drop pairs already found in an earlier chunk
    for width, shift in zip(plan.widths, plan.shifts):
        mask = np.uint64((1 << width) - 1)
        db_chunk = (db >> np.uint64(shift)) & mask
        order = np.argsort(db_chunk, kind="stable")
        sorted_chunk = db_chunk[order]
        sorted_db = db[order]  # candidates of one probe are contiguous here: sequential reads
        # bucket of a chunk value: a direct offset table for chunks up to 24 bits (one
        # gather per probe), binary search beyond (random searches miss the cache)
        offsets = None
        if width <= DIRECT_TABLE_BITS and (1 << width) <= 16 * len(db) + 65_536:  # no 32 MiB table for 100 hashes
            offsets = np.zeros((1 << width) + 1, dtype=np.int64)
            np.cumsum(np.bincount(db_chunk.astype(np.int64), minlength=1 << width), out=offsets[1:])
        flips = _flip_masks(width, plan.radius)
        query_block = max(1, min(QUERY_BLOCK, max_pairs_per_step))
        for start in range(0, len(queries), query_block):
            block = queries[start : start + query_block]
            q_chunk = (block >> np.uint64(shift)) & mask
            for flip in flips:
                probe = q_chunk ^ flip
                if offsets is not None:
                    probe_index = probe.astype(np.int64)
                    lo, hi = offsets[probe_index], offsets[probe_index + 1]
                else:
                    lo = np.searchsorted(sorted_chunk, probe, side="left")
                    hi = np.searchsorted(sorted_chunk, probe, side="right")
                yield from _verified_pairs(
                    block, start, sorted_db, order, lo, hi, threshold, self_join, seen_chunks, plan, max_pairs_per_step
                )
        seen_chunks.append((mask, shift, width))


def _verified_pairs(block, start, sorted_db, order, lo, hi, threshold, self_join, seen_chunks, plan, step_pairs):
    """Full-distance check of the candidates in [lo, hi), in steps of bounded size.

    The distance is computed on the chunk-sorted copy of the database (contiguous reads);
    only the few pairs within the threshold are mapped back to database indexes and get
    the self-join order (q < d) and "already reported by an earlier chunk" checks.
    """
    lengths = hi - lo
    cumulative = np.cumsum(lengths)
    first = 0
    while first < len(block):
        base = cumulative[first - 1] if first else 0
        last = int(np.searchsorted(cumulative, base + step_pairs, side="right"))
        last = max(last, first + 1)
        owners, positions = _expand_ranges(lo[first:last], hi[first:last])
        owners += first
        first = last
        if len(owners) == 0:
            continue
        distance = np.bitwise_count(block[owners] ^ sorted_db[positions])
        near = np.flatnonzero(distance <= threshold)
        if len(near) == 0:
            continue
        q_local, positions, distance = owners[near], positions[near], distance[near]
        q_global = q_local + start
        d_index = order[positions]
        keep = q_global < d_index if self_join else np.ones(len(near), dtype=bool)
        q_vals, d_vals = block[q_local], sorted_db[positions]
        # a pair whose chunk in an earlier table was already within radius was reported there
        for mask, shift, _ in seen_chunks:
            earlier = np.bitwise_count(((q_vals >> np.uint64(shift)) & mask) ^ ((d_vals >> np.uint64(shift)) & mask))
            keep &= earlier > plan.radius
        if keep.any():
            yield q_global[keep], d_index[keep], distance[keep].astype(np.int64)
