"""Superseded samples: the one rule that says which copy of an article is the archive's content.

Shards are never rewritten, so a changed document re-ingested by a later build, or the same
article read from two files of one build, leaves older copies in older tars. For each
article id (from the units' `articles/part-*.parquet`) the winning unit is the one of the
newest build (archive.builds), and within a build the lowest unit id; every sample of that
article in another unit is *superseded*. `write_superseded` (run by finalize) derives this
from the markers and Parquet tables alone and writes `ROOT/superseded.parquet` (empty when
nothing is superseded) plus the same-build duplicates as `errors/finalize-duplicates.parquet`.

The tars and sizes.json keep every sample (what plain WebDataset/OpenCLIP readers see);
biomedica's readers, select and train skip what `superseded_keys` lists. Keys repeat across
copies, so the listing is per shard: a key is superseded in one tar and live in another.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.archive.builds import read_builds, unit_builds
from biomedica.archive.errors import ErrorSink
from biomedica.archive.keys import article_of
from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.units import completed_units
from biomedica.io.atomic import write_parquet_atomic
from biomedica.records import ErrorRecord

SUPERSEDED_NAME = "superseded.parquet"
FINALIZE_STAGE = "finalize"
DUPLICATES_PART = "duplicates"
CHANGED = "changed"  # a newer build holds the article
DUPLICATE = "duplicate"  # another unit of the same build holds it (the lowest unit id wins)

SUPERSEDED_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("article_id", pa.string()),
    ("group", pa.string()),
    ("unit_id", pa.int64()),
    ("shard", pa.string()),  # the tar's name inside its group folder, "000003.tar"
    ("reason", pa.string()),  # "changed" | "duplicate"
    ("kept_unit", pa.int64()),
])


def compute_superseded(root: Path) -> pa.Table:
    """The superseded samples of the archive at `root` (SUPERSEDED_SCHEMA), ordered by unit, group, key."""
    root = Path(root)
    layout = ArchiveLayout(root)
    units = completed_units(root)
    ranks = unit_builds(read_builds(root))  # units outside every build count as one oldest build
    holders: dict[str, list[int]] = defaultdict(list)
    for unit_id in units:
        path = layout.articles(unit_id)
        if path.is_file():
            for article in set(pq.read_table(path, columns=["article_id"]).column(0).to_pylist()):
                if article:
                    holders[article].append(unit_id)
    winner = {
        article: max(found, key=lambda u: (ranks.get(u, -1), -u)) for article, found in holders.items() if len(found) > 1
    }
    rows = []
    if winner:
        for unit_id, stats in units.items():
            for group in sorted(stats.shards):
                shard = stats.shards[group].name
                index = layout.group_dir(group) / shard.replace(".tar", ".parquet")
                for key in pq.read_table(index, columns=["key"]).column(0).to_pylist():
                    article = article_of(key)
                    kept = winner.get(article)
                    if kept is None or kept == unit_id:
                        continue
                    reason = DUPLICATE if ranks.get(kept, -1) == ranks.get(unit_id, -1) else CHANGED
                    rows.append({"key": key, "article_id": article, "group": group, "unit_id": unit_id,
                                 "shard": shard, "reason": reason, "kept_unit": kept})
    rows.sort(key=lambda r: (r["unit_id"], r["group"], r["key"]))
    return pa.Table.from_pylist(rows, schema=SUPERSEDED_SCHEMA)


def write_superseded(root: Path) -> pa.Table:
    """Rewrite `superseded.parquet` and the duplicate-article error rows from scratch; return the listing."""
    root = Path(root)
    table = compute_superseded(root)
    path = root / SUPERSEDED_NAME
    write_parquet_atomic(path, table)  # also when empty: SQL over the archive can always anti-join it
    ErrorSink(root, FINALIZE_STAGE).write(DUPLICATES_PART, _duplicate_errors(root, table))
    return table


def _duplicate_errors(root: Path, table: pa.Table) -> list[ErrorRecord]:
    """One `duplicate-article` row per article and superseded unit of the same build."""
    found: dict[tuple[str, int], tuple[int, int]] = {}
    for row in table.to_pylist():
        if row["reason"] == DUPLICATE:
            article_unit = (row["article_id"], row["unit_id"])
            kept, count = found.get(article_unit, (row["kept_unit"], 0))
            found[article_unit] = (kept, count + 1)
    return [
        ErrorRecord(
            id=article, stage=FINALIZE_STAGE, kind="duplicate-article",
            message=f"article {article} was read by unit {unit} and unit {kept} of the same build (two input files "
                    f"hold it); its {count} sample(s) in unit {unit} are superseded by unit {kept} (listed in "
                    f"{SUPERSEDED_NAME}); keep one file per article version",
            source=f"unit {unit}",
        )
        for (article, unit), (kept, count) in sorted(found.items())
    ]


def read_superseded(root: Path) -> pa.Table:
    """The listing finalize wrote (empty when nothing is superseded or the archive predates it)."""
    path = Path(root) / SUPERSEDED_NAME
    if not path.is_file():
        return SUPERSEDED_SCHEMA.empty_table()
    return pq.read_table(path, schema=SUPERSEDED_SCHEMA)


def superseded_keys(root: Path) -> dict[str, frozenset[str]]:
    """`<group>/<shard>.tar` -> keys superseded in that tar: what every biomedica reader skips."""
    return _by_shard(read_superseded(root))


def superseded_from_bytes(data: bytes) -> dict[str, frozenset[str]]:
    """`superseded_keys` for a listing fetched over the network (a remote archive)."""
    import io

    return _by_shard(pq.read_table(io.BytesIO(data), schema=SUPERSEDED_SCHEMA))


def _by_shard(table: pa.Table) -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for key, group, shard in zip(*(table.column(c).to_pylist() for c in ("key", "group", "shard"))):
        found[f"{group}/{shard}"].add(key)
    return {name: frozenset(keys) for name, keys in found.items()}
