"""The pmc-cloud ingest plan as a Parquet file, so workers read their slice instead of a pickled copy.

A 6M-article listing pickled into every worker costs ~600 MB per worker. Instead the parent
writes the selected versions once (item id, pmcid, version, xml etag, json etag, order),
sorted by item id in row groups of ~64k rows, and a worker opens the file by path and reads
only the row group(s) holding its unit's items (found from the row groups' min/max
statistics, so a unit of consecutive items touches one or two row groups).

Columns: item_id (str, sorted, unique), pmcid (str), version (int32), xml_etag (str),
json_etag (str), order (int64, position in the plan, 0-based).
"""

from __future__ import annotations

import bisect
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.io.atomic import atomic_path
from biomedica.io.duckdb_sql import copy_to_parquet, sql_string

ROW_GROUP_ROWS = 65_536
PLAN_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("pmcid", pa.string()),
        ("version", pa.int32()),
        ("xml_etag", pa.string()),
        ("json_etag", pa.string()),
        ("order", pa.int64()),
    ]
)


class PlanRow(Protocol):
    """What a plan row is made from (pmc_cloud.VersionListing has these fields)."""

    item_id: str
    pmcid: str
    version: int
    xml_etag: str
    json_etag: str


class PlanError(ValueError):
    """A plan that cannot be written or read (names the file and the fix)."""


def write_plan(listings: Iterable[PlanRow], path: Path, row_group_rows: int = ROW_GROUP_ROWS) -> int:
    """Write `listings` (sorted by item id, unique) to `path` atomically; return the row count.

    Streams one row group at a time: memory is one row group's columns, whatever the count.
    """
    path = Path(path)
    count = 0
    last: str | None = None
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, PLAN_SCHEMA, compression="zstd") as writer:
        for batch in _batches(listings, row_group_rows):
            first = batch[0][0]
            if last is not None and first <= last:
                raise PlanError(f"{path}: plan rows not sorted by item id ({first!r} after {last!r})")
            ids = [row[0] for row in batch]
            if any(a >= b for a, b in pairwise(ids)):
                raise PlanError(f"{path}: plan rows not sorted by item id or not unique near {first!r}")
            last = ids[-1]
            columns = list(zip(*batch))
            table = pa.table(
                [
                    pa.array(columns[0], pa.string()),
                    pa.array(columns[1], pa.string()),
                    pa.array(columns[2], pa.int32()),
                    pa.array(columns[3], pa.string()),
                    pa.array(columns[4], pa.string()),
                    pa.array(range(count, count + len(batch)), pa.int64()),
                ],
                schema=PLAN_SCHEMA,
            )
            writer.write_table(table, row_group_size=row_group_rows)
            count += len(batch)
    return count


def _batches(listings: Iterable[PlanRow], size: int) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for v in listings:
        batch.append((v.item_id, v.pmcid, int(v.version), v.xml_etag, v.json_etag))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def plan_versions(
    objects: Iterable[tuple[str, str, int, str, str]],
    path: Path,
    all_versions: bool = False,
    memory: str = "1GB",
    batch_rows: int = ROW_GROUP_ROWS,
) -> int:
    """Plan from (item id, pmcid, version, kind 'xml'|'json', etag) rows in any order; return the count.

    Keeps the versions holding both objects, the latest per pmcid unless `all_versions`, sorted by
    item id: the same choice as the in-memory scan. Rows are spilled to Parquet in batches and
    grouped by DuckDB under `memory` (it spills to disk beyond that), so peak memory does not
    grow with the inventory (6M articles, ~40M objects at PMC size).
    """
    path = Path(path)
    spill = Path(tempfile.mkdtemp(prefix=".plan-spill-", dir=path.parent))
    try:
        parts = spill / "objects.parquet"
        schema = pa.schema([("item_id", pa.string()), ("pmcid", pa.string()), ("version", pa.int32()),
                            ("kind", pa.string()), ("etag", pa.string())])
        with pq.ParquetWriter(parts, schema) as writer:
            batch: list[tuple] = []
            for row in objects:
                batch.append(row)
                if len(batch) >= batch_rows:
                    writer.write_table(pa.table([pa.array(c) for c in zip(*batch)], schema=schema))
                    batch = []
            if batch:
                writer.write_table(pa.table([pa.array(c) for c in zip(*batch)], schema=schema))
        latest = "" if all_versions else "QUALIFY row_number() OVER (PARTITION BY pmcid ORDER BY version DESC, item_id DESC) = 1"
        query = f"""
            WITH v AS (
                SELECT item_id, any_value(pmcid) AS pmcid, CAST(any_value(version) AS INTEGER) AS version,
                       max(etag) FILTER (WHERE kind = 'xml') AS xml_etag,
                       max(etag) FILTER (WHERE kind = 'json') AS json_etag
                FROM read_parquet({sql_string(parts)}) GROUP BY item_id
                HAVING count(*) FILTER (WHERE kind = 'xml') > 0 AND count(*) FILTER (WHERE kind = 'json') > 0
            ), chosen AS (SELECT * FROM v {latest})
            SELECT item_id, pmcid, version, xml_etag, json_etag,
                   CAST(row_number() OVER (ORDER BY item_id) - 1 AS BIGINT) AS "order"
            FROM chosen ORDER BY item_id
        """
        copy_to_parquet(query, path, memory=memory, spill=spill, row_group_rows=ROW_GROUP_ROWS)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    return pq.ParquetFile(path).metadata.num_rows


class PlanReader:
    """Lookups in a plan file by item id, reading only the row groups asked for (two kept in memory).

    Pickles as its path: a worker that receives it opens the file on first use.
    """

    def __init__(self, path: Path, cached_groups: int = 2):
        self.path = Path(path)
        self.cached_groups = cached_groups
        self._bounds: list[tuple[str, str]] | None = None  # (min, max) item id per row group
        self._file: pq.ParquetFile | None = None
        self._groups: OrderedDict[int, tuple[list[str], list[str], list[str]]] = OrderedDict()

    def __getstate__(self) -> dict:
        return {"path": self.path, "cached_groups": self.cached_groups}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["cached_groups"])

    def __len__(self) -> int:
        return self._open().metadata.num_rows

    def _open(self) -> pq.ParquetFile:
        if self._file is None:
            try:
                self._file = pq.ParquetFile(self.path)
            except (OSError, pa.ArrowInvalid) as exc:
                raise PlanError(f"{self.path}: cannot read the ingest plan ({exc}); rerun `biomedica ingest`, "
                                "which writes it again") from None
            meta = self._file.metadata
            bounds = []
            for g in range(meta.num_row_groups):
                stats = meta.row_group(g).column(0).statistics
                if stats is None or not stats.has_min_max:
                    raise PlanError(f"{self.path}: plan without row-group statistics; rewrite it with write_plan")
                bounds.append((stats.min, stats.max))
            self._bounds = bounds
        return self._file

    def _group_of(self, item_id: str) -> int | None:
        self._open()
        assert self._bounds is not None
        g = bisect.bisect_right([b[0] for b in self._bounds], item_id) - 1
        if g < 0 or item_id > self._bounds[g][1]:
            return None
        return g

    def _group(self, g: int) -> tuple[list[str], list[str], list[str]]:
        cached = self._groups.get(g)
        if cached is not None:
            self._groups.move_to_end(g)
            return cached
        table = self._open().read_row_group(g, columns=["item_id", "xml_etag", "json_etag"])
        cached = tuple(table.column(name).to_pylist() for name in ("item_id", "xml_etag", "json_etag"))
        self._groups[g] = cached  # type: ignore[assignment]
        while len(self._groups) > self.cached_groups:
            self._groups.popitem(last=False)
        return cached  # type: ignore[return-value]

    def _locate(self, item_id: str) -> tuple[int, int] | None:
        g = self._group_of(item_id)
        if g is None:
            return None
        ids = self._group(g)[0]
        i = bisect.bisect_left(ids, item_id)
        return (g, i) if i < len(ids) and ids[i] == item_id else None

    def etags(self, item_id: str) -> tuple[str, str] | None:
        """(xml etag, json etag) of `item_id`, or None when it is not in the plan."""
        at = self._locate(item_id)
        if at is None:
            return None
        _, xml, js = self._group(at[0])
        return xml[at[1]], js[at[1]]

    def following(self, item_id: str, n: int) -> list[str]:
        """Up to `n` item ids after `item_id` in plan order ([] when it is not in the plan)."""
        at = self._locate(item_id)
        if at is None or n <= 0:
            return []
        g, i = at
        out: list[str] = []
        num_groups = self._open().metadata.num_row_groups
        while len(out) < n and g < num_groups:
            ids = self._group(g)[0]
            out += ids[i + 1 : i + 1 + n - len(out)]
            g, i = g + 1, -1
        return out
