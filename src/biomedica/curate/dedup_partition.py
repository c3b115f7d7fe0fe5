"""Near-duplicate search over tens of millions of pHashes as independent units with a memory budget.

Why: one process searching 24M hashes holds every hash, index and candidate at once and uses
one core. Pigeonhole: split the 64 bits into m = t + 1 substrings; two hashes within t bits
agree exactly in at least one of them. So a unit = (substring p, a range of p's values) only
has to search the hashes whose substring p falls in its range, and the union of all units
finds every pair within t (a pair met in several substrings is met again: harmless for a
union). Inside a unit, hashes are grouped by the substring's value into batches of about
`search_batch` and each batch is searched with multi-index hashing (`curate.hamming`).

Memory: a unit holds at most `unit_hashes` hashes (from the budget, about 80 bytes each).
A single substring value holding more than that (real pHashes cluster, e.g. blank panels)
is cut into blocks and searched block pair by block pair (k blocks: k(k+1)/2 units).

Units run through `exec.run_units` (local processes or Ray); each reads the distinct hashes
from a memory-mapped `.npy` in the run folder and spills a spanning forest of what it found
(node -> smallest node of its local group, at most one row per hash) to a Parquet part. The
merge streams the parts into a vectorised union-find, so the parent holds one int64 label
per distinct hash, never the pairs. The labels (smallest index of each group) equal
`connected_components` over all pairs of the single-process search.
"""

from __future__ import annotations

import math
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.curate.components import connected_components
from biomedica.curate.hamming import HASH_BITS, MAX_PAIRS_PER_STEP, hamming_pairs, plan_chunks
from biomedica.io.atomic import write_parquet_atomic
from biomedica.io.memory import parse_size, peak_rss

HIST_BITS = 16  # substring values are counted on their top 16 bits (2^16 counters per substring)
SCAN_BLOCK = 1 << 20  # hashes read from the memory map at once
SMALL_GROUP = 256  # value groups with fewer hashes are searched together, without dropping bits
BYTES_PER_HASH = 80  # a unit's arrays per hash it holds (hash, index, value, order, union-find, batch copies)
DEFAULT_MEMORY = 2 << 30
RUN_DIR_PREFIX = ".dedup-run-"


def parse_memory(text: str | int | None) -> int:
    """Bytes of a budget written like '2GB' (io.memory.parse_size); None: DEFAULT_MEMORY."""
    return DEFAULT_MEMORY if text is None else parse_size(text)


class UnionFind:
    """Union-find over nodes 0..n-1 fed with edge batches (vectorised); a root is the smallest node of its set."""

    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, nodes: np.ndarray) -> np.ndarray:
        roots = self.parent[nodes]
        while True:
            up = self.parent[roots]
            if np.array_equal(up, roots):
                self.parent[nodes] = roots  # path compression for the nodes asked about
                return roots
            roots = up

    def union(self, first: np.ndarray, second: np.ndarray) -> None:
        """Join the sets of first[i] and second[i] for every i."""
        if len(first) == 0:
            return
        a, b = self.find(np.asarray(first, dtype=np.int64)), self.find(np.asarray(second, dtype=np.int64))
        differ = a != b
        if not differ.any():
            return
        a, b = a[differ], b[differ]
        roots, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
        # components of the roots' graph; the label is the smallest root (roots are sorted), which keeps
        # "parent <= node", so every set's root stays its smallest node
        local = connected_components(len(roots), inverse[: len(a)], inverse[len(a) :])
        self.parent[roots] = roots[local]

    def labels(self) -> np.ndarray:
        """Each node's root (the smallest node of its set), fully compressed."""
        labels = self.parent
        while True:
            up = labels[labels]
            if np.array_equal(up, labels):
                return labels
            labels = up


@dataclass(frozen=True)
class Substrings:
    """The m = t + 1 substrings of the 64 bits (widths from the top) and the histogram bits of each."""

    widths: tuple[int, ...]

    @classmethod
    def for_threshold(cls, threshold: int) -> Substrings:
        m = min(threshold + 1, HASH_BITS)
        base, extra = divmod(HASH_BITS, m)
        return cls(tuple(base + (1 if i < extra else 0) for i in range(m)))

    def shift(self, p: int) -> int:
        return HASH_BITS - sum(self.widths[: p + 1])

    def hist_bits(self, p: int) -> int:
        return min(self.widths[p], HIST_BITS)

    def field(self, p: int) -> tuple[int, int]:
        """(shift, width) of the bits `values` reads: equal in every hash of one value group."""
        return self.shift(p) + self.widths[p] - self.hist_bits(p), self.hist_bits(p)

    def values(self, hashes: np.ndarray, p: int) -> np.ndarray:
        """The top `hist_bits(p)` bits of substring p of each hash (int64)."""
        drop = self.shift(p) + self.widths[p] - self.hist_bits(p)
        return ((hashes >> np.uint64(drop)) & np.uint64((1 << self.hist_bits(p)) - 1)).astype(np.int64)


@dataclass(frozen=True)
class NearUnit:
    """Hashes whose substring `substring` has top bits in [lo, hi); for an oversized value, blocks (i, j)."""

    index: int
    substring: int
    lo: int
    hi: int
    blocks: tuple[int, int] | None = None
    block_size: int = 0


@dataclass(frozen=True)
class NearJob:
    """What every unit shares (sent once per worker): the run folder and the search settings."""

    run_dir: Path
    threshold: int
    substrings: Substrings
    search_batch: int
    step_pairs: int

    @property
    def hashes_path(self) -> Path:
        return Path(self.run_dir) / "hashes.npy"

    def part_path(self, unit: NearUnit) -> Path:
        return Path(self.run_dir) / f"edges-{unit.index:06d}.parquet"


@dataclass
class NearSearch:
    """The result of a partitioned search: the group label of each hash and what the run did."""

    labels: np.ndarray
    units: int = 0
    block_units: int = 0
    largest_unit: int = 0
    pairs: int = 0
    edges: int = 0
    worker_peak_rss: int = 0  # bytes, the largest peak RSS (io.memory.peak_rss) a unit reported
    search_seconds: float = 0.0
    merge_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def budget_sizes(memory: int) -> tuple[int, int, int]:
    """(hashes per unit, hashes per search batch, candidate pairs per step) for a unit budget in bytes."""
    unit_hashes = max(256, memory // BYTES_PER_HASH)
    search_batch = int(min(65_536, max(256, memory // 1_600)))
    step_pairs = int(min(MAX_PAIRS_PER_STEP, max(1_024, memory // 640)))
    return unit_hashes, search_batch, step_pairs


def plan_units(
    hashes: np.ndarray, substrings: Substrings, unit_hashes: int, min_ranges: int = 1
) -> tuple[list[NearUnit], list[str]]:
    """Units covering every substring's values; each holds <= unit_hashes hashes (block pairs beyond).

    One streaming pass counts the values of every substring (2^16 counters each), so the plan
    needs no more memory than a scan block.
    """
    m = len(substrings.widths)
    counts = [np.zeros(1 << substrings.hist_bits(p), dtype=np.int64) for p in range(m)]
    for start in range(0, len(hashes), SCAN_BLOCK):
        block = np.asarray(hashes[start : start + SCAN_BLOCK])
        for p in range(m):
            counts[p] += np.bincount(substrings.values(block, p), minlength=len(counts[p]))
    target = max(1, min(unit_hashes, math.ceil(len(hashes) / max(1, min_ranges))))
    units: list[NearUnit] = []
    notes: list[str] = []
    for p in range(m):
        lo, held = 0, 0
        for value in np.flatnonzero(counts[p]).tolist():
            count = int(counts[p][value])
            if held and held + count > target:
                units.append(NearUnit(len(units), p, lo, value))
                lo, held = value, 0
            if count > unit_hashes:  # one value over the budget: block pairs of half a budget each
                if held:
                    units.append(NearUnit(len(units), p, lo, value))
                size = max(1, unit_hashes // 2)
                k = math.ceil(count / size)
                for i in range(k):
                    for j in range(i, k):
                        units.append(NearUnit(len(units), p, value, value + 1, (i, j), size))
                notes.append(
                    f"substring {p} value {value}: {count} hashes exceed the unit budget ({unit_hashes}); "
                    f"searched as {k * (k + 1) // 2} block pairs"
                )
                lo, held = value + 1, 0
                continue
            held += count
        if held:
            units.append(NearUnit(len(units), p, lo, 1 << substrings.hist_bits(p)))
    return units, notes


def _select(job: NearJob, unit: NearUnit) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, global indexes) of the unit, read from the memory map in blocks, in index order.

    A block-pair unit keeps only its two blocks (ranks within its value), block i first.
    """
    hashes = np.load(job.hashes_path, mmap_mode="r")
    parts_h, parts_i = [], []
    seen = 0
    for start in range(0, len(hashes), SCAN_BLOCK):
        block = np.asarray(hashes[start : start + SCAN_BLOCK])
        values = job.substrings.values(block, unit.substring)
        keep = np.flatnonzero((values >= unit.lo) & (values < unit.hi))
        if unit.blocks is not None:
            rank = (seen + np.arange(len(keep))) // unit.block_size
            seen += len(keep)
            keep = keep[(rank == unit.blocks[0]) | (rank == unit.blocks[1])]
        parts_h.append(block[keep])
        parts_i.append(keep.astype(np.int64) + start)
    del hashes
    return np.concatenate(parts_h), np.concatenate(parts_i)


def search_unit(unit: NearUnit, job: NearJob) -> dict[str, int]:
    """Search one unit and spill its groups (node, root) to a Parquet part; returns its counts."""
    from biomedica.exec import stop_if_orphaned

    hashes, index = _select(job, unit)
    local = UnionFind(len(hashes))
    pending = _Pending()
    pairs = 0
    field = job.substrings.field(unit.substring)
    if unit.blocks is not None:  # one value: every hash shares the field, so it is dropped before the search
        i, j = unit.blocks
        first = min(len(hashes), unit.block_size)  # block i, then block j (when i < j)
        packed = drop_field(hashes, *field)
        plan = plan_chunks(first, job.threshold, HASH_BITS - field[1])
        database = None if i == j else packed[first:]
        for q, d, _ in hamming_pairs(packed[:first], database, job.threshold, job.step_pairs, plan):
            pending.add(q, d if i == j else d + first)
            pairs += _flush(local, pending, job.step_pairs)
    else:
        values = job.substrings.values(hashes, unit.substring)
        order = np.argsort(values, kind="stable")
        sorted_values = values[order]
        bounds = np.r_[np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]]), len(order)]
        sizes = np.diff(bounds)
        small: list[np.ndarray] = []
        held = 0
        for group in range(len(sizes)):  # value group k is order[bounds[k]:bounds[k + 1]]
            members = order[bounds[group] : bounds[group + 1]]
            if sizes[group] >= SMALL_GROUP:  # searched alone on the bits that vary inside it
                packed = drop_field(hashes[members], *field)
                plan = plan_chunks(len(members), job.threshold, HASH_BITS - field[1])
                pairs += _search(local, pending, members, packed, job, plan)
            else:  # small groups are searched together (probes cost more than their few extra candidates)
                small.append(members)
                held += len(members)
                if held >= job.search_batch:
                    batch = np.concatenate(small)
                    pairs += _search(local, pending, batch, hashes[batch], job, None)
                    small, held = [], 0
            stop_if_orphaned()
        if small:
            batch = np.concatenate(small)
            pairs += _search(local, pending, batch, hashes[batch], job, None)
    pairs += _flush(local, pending, 0)
    labels = local.labels()
    moved = np.flatnonzero(labels != np.arange(len(labels)))
    write_parquet_atomic(
        job.part_path(unit),
        pa.table({"node": pa.array(index[moved]), "root": pa.array(index[labels[moved]])}),
    )
    return {"hashes": len(hashes), "pairs": pairs, "edges": len(moved), "peak_rss": peak_rss()}


def drop_field(hashes: np.ndarray, shift: int, width: int) -> np.ndarray:
    """The hashes without bits [shift, shift + width) (bits all of them share): the rest moved to the top.

    Distances are unchanged; a chunk plan over the top 64 - width bits then sees only bits
    that vary, instead of a chunk that is equal in every hash (all candidates).
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    low = (hashes & np.uint64((1 << shift) - 1)) << np.uint64(width) if shift else np.zeros_like(hashes)
    above = shift + width
    high = (hashes >> np.uint64(above)) << np.uint64(above) if above < HASH_BITS else np.zeros_like(hashes)
    return high | low


def _search(local: UnionFind, pending: _Pending, members: np.ndarray, values: np.ndarray, job: NearJob, plan) -> int:
    """Self-join `values` (the hashes of `members`, unit-local indexes); pairs go to `pending`."""
    found = 0
    for q, d, _ in hamming_pairs(values, None, job.threshold, job.step_pairs, plan):
        pending.add(members[q], members[d])
        found += _flush(local, pending, job.step_pairs)
    return found


class _Pending(list):
    """Pairs waiting for one vectorised union (a union per probe would cost more than the search)."""

    held = 0

    def add(self, first: np.ndarray, second: np.ndarray) -> None:
        self.append((first, second))
        self.held += len(first)


def _flush(local: UnionFind, pending: _Pending, at_least: int) -> int:
    """Union the pending pairs once they hold `at_least`; returns how many were joined."""
    held = pending.held
    if held == 0 or held < at_least:
        return 0
    local.union(np.concatenate([a for a, _ in pending]), np.concatenate([b for _, b in pending]))
    pending.clear()
    pending.held = 0
    return held


def merge_parts(run_dir: Path, n: int, batch_rows: int = 1 << 20) -> np.ndarray:
    """Group label (smallest member index) of each of n hashes from the spilled parts, streamed in batches."""
    groups = UnionFind(n)
    for part in sorted(Path(run_dir).glob("edges-*.parquet")):
        for batch in pq.ParquetFile(part).iter_batches(batch_size=batch_rows):
            groups.union(batch.column(0).to_numpy(), batch.column(1).to_numpy())
    return groups.labels()


def near_groups(
    hashes: np.ndarray,
    threshold: int,
    *,
    memory: int | str | None = None,
    workers: int = 1,
    executor: str = "local",
    partitions: int | None = None,
    work_dir: Path | None = None,
    progress: str | None = None,
    on_unit: Callable[[NearUnit, dict[str, int]], None] | None = None,
) -> NearSearch:
    """Group label of each distinct hash (smallest index of its group of hashes within `threshold`, transitive).

    `hashes` must be distinct (callers collapse equal ones with np.unique). The run folder
    `<work_dir>/.dedup-run-<id>/` is created here and removed when done, also after an error.
    """
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    n = len(hashes)
    if threshold == 0 or n < 2:  # distinct hashes: nothing is within distance 0
        return NearSearch(labels=np.arange(n, dtype=np.int64))
    budget = parse_memory(memory)
    unit_hashes, search_batch, step_pairs = budget_sizes(budget)
    substrings = Substrings.for_threshold(threshold)
    min_ranges = partitions or math.ceil(4 * max(1, workers) / len(substrings.widths))
    base = Path(work_dir) if work_dir is not None else Path(os.environ.get("TMPDIR", "/tmp"))
    run_dir = base / f"{RUN_DIR_PREFIX}{uuid.uuid4().hex[:12]}"
    run_dir.mkdir(parents=True)
    try:
        np.save(run_dir / "hashes.npy", hashes)
        units, notes = plan_units(hashes, substrings, unit_hashes, min_ranges)
        job = NearJob(run_dir, threshold, substrings, search_batch, step_pairs)
        result = NearSearch(labels=np.empty(0, dtype=np.int64), units=len(units), notes=notes)
        result.block_units = sum(1 for u in units if u.blocks is not None)
        from biomedica.exec import run_units

        started = time.perf_counter()
        for unit, counts in run_units(
            search_unit, units, executor=executor, workers=workers, context=job, progress=progress
        ):
            result.pairs += counts["pairs"]
            result.edges += counts["edges"]
            result.largest_unit = max(result.largest_unit, counts["hashes"])
            result.worker_peak_rss = max(result.worker_peak_rss, counts["peak_rss"])
            if on_unit is not None:
                on_unit(unit, counts)
        result.search_seconds = time.perf_counter() - started
        started = time.perf_counter()
        result.labels = merge_parts(run_dir, n)
        result.merge_seconds = time.perf_counter() - started
        return result
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
