"""What the annotators see: clusters with their sample keys, caption top terms, and image bytes.

Built once when the app starts from `annotations/clusters.parquet` and the shard indexes
(DuckDB over the Parquet files: memory does not grow with the archive).
Samples of a cluster are ordered nearest-to-centroid first, so the grid shows its most
typical members. Top terms are caption words ranked by TF-IDF with clusters as documents.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from biomedica.archive.annotations import AnnotationStore
from biomedica.archive.reader import read_member, shard_name, shard_paths
from biomedica.archive.superseded import superseded_keys
from biomedica.io.duckdb_sql import sql_list, sql_string
from biomedica.text import STOPWORDS

_TERM = re.compile(r"[a-z][a-z0-9\-]{2,}")
_CAPTION_NOISE = frozenset({"figure", "fig", "panel", "panels", "image", "images", "shown", "representative", "showing"})


@dataclass(frozen=True)
class SampleRef:
    key: str
    caption: str
    group: str
    shard: str
    image_offset: int
    image_size: int
    image_format: str


@dataclass
class ClusterSummary:
    cluster: int
    size: int
    samples: list[SampleRef]  # the first `samples_per_cluster`, nearest to the centroid first
    top_terms: list[str]


class ClusterCatalogue:
    """Clusters of one archive, ready to show.

    Read with DuckDB over the shard index files (only the needed columns, joined with
    clusters.parquet), so 2,500+ shards and 24M samples never become Python rows: captions
    stream through the term counter batch by batch, and only the shown samples are kept.
    """

    def __init__(self, archive: Path, store: AnnotationStore, samples_per_cluster: int = 24, top_terms: int = 8) -> None:
        self.archive = Path(archive)
        self.clusters: dict[int, ClusterSummary] = {}
        self._refs: dict[str, SampleRef] = {}
        if not store.has("clusters"):
            store.read("clusters")  # raises the one-line "run `biomedica curate clusters`" error
        self._clusters_path = store.table_path("clusters")
        self._files = [(str(tar.with_suffix(".parquet")), group, shard_name(group, tar))
                       for group, tar in shard_paths(self.archive)]
        if not self._files:
            return
        with self._connect() as connection:
            members = """
                SELECT c.cluster::BIGINT AS cluster, coalesce(c.distance, 0.0) AS distance, s.key, s.caption,
                       s."group", s.shard, s.image_offset, s.image_size, s.image_format
                FROM clustered c JOIN samples s USING (key)
                WHERE c.cluster IS NOT NULL AND c.cluster >= 0
            """
            sizes = dict(connection.execute(f"SELECT cluster, count(*) FROM ({members}) GROUP BY cluster").fetchall())
            shown = connection.execute(
                f"SELECT * FROM ({members}) QUALIFY row_number() OVER (PARTITION BY cluster ORDER BY distance, key) <= ? "
                "ORDER BY cluster, distance, key", [samples_per_cluster]
            ).fetchall()
            term_counts: dict[int, Counter[str]] = {c: Counter() for c in sizes}
            for batch in _record_batches(connection, f"SELECT cluster, caption FROM ({members})"):
                for cluster, caption in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                    term_counts[cluster].update(_terms(caption or ""))
        samples: dict[int, list[SampleRef]] = {c: [] for c in sizes}
        for cluster, _distance, key, caption, group, shard, offset, size, image_format in shown:
            ref = SampleRef(key, caption or "", group, shard, offset, size, image_format or "png")
            self._refs[key] = ref
            samples[cluster].append(ref)
        document_frequency = Counter(t for counts in term_counts.values() for t in counts)
        n_clusters = max(1, len(sizes))
        for cluster, size in sorted(sizes.items()):
            counts = term_counts[cluster]
            total = sum(counts.values()) or 1
            ranked = sorted(
                counts, key=lambda t: (-(counts[t] / total) * math.log(1 + n_clusters / document_frequency[t]), t)
            )
            self.clusters[cluster] = ClusterSummary(cluster, size, samples[cluster], ranked[:top_terms])

    def _connect(self):
        """A DuckDB connection with views `samples` (live shard index rows + group) and `clustered`."""
        import duckdb

        connection = duckdb.connect()
        files = pa.table({"filename": [f for f, _, _ in self._files], "group": [g for _, g, _ in self._files],
                          "shard_name": [n for _, _, n in self._files]})
        superseded = superseded_keys(self.archive)
        gone = pa.table({"shard_name": pa.array([n for n, keys in superseded.items() for _ in keys], pa.string()),
                         "key": pa.array([k for keys in superseded.values() for k in sorted(keys)], pa.string())})
        connection.register("shard_files", files)
        connection.register("superseded", gone)
        paths = sql_list(f for f, _, _ in self._files)
        connection.execute(f"""
            CREATE TEMP VIEW samples AS
            SELECT s.key, s.caption, f."group", s.shard, s.image_offset, s.image_size, s.image_format
            FROM read_parquet({paths}, filename = true) s JOIN shard_files f USING (filename)
            ANTI JOIN superseded g ON g.shard_name = f.shard_name AND g.key = s.key
        """)
        clusters = sql_string(self._clusters_path)
        names = set(pq.read_schema(self._clusters_path).names)
        distance = "distance" if "distance" in names else "NULL::DOUBLE AS distance"
        connection.execute(f"CREATE TEMP VIEW clustered AS SELECT key, cluster, {distance} FROM read_parquet({clusters})")
        return connection

    def order(self) -> list[int]:
        """Clusters in queue order: largest first (most samples affected per label), then id."""
        return sorted(self.clusters, key=lambda c: (-self.clusters[c].size, c))

    def image(self, key: str) -> tuple[bytes, str]:
        """(bytes, media type) of a sample's image; KeyError for an unknown key."""
        ref = self._refs.get(key) or self._lookup(key)
        data = read_member(self.archive, ref.group, ref.shard, ref.image_offset, ref.image_size)
        return data, "image/jpeg" if ref.image_format == "jpg" else "image/png"

    def _lookup(self, key: str) -> SampleRef:
        """A sample not shown in any grid, found in the shard index (a scan of the key column)."""
        if not self._files:
            raise KeyError(key)
        with self._connect() as connection:
            row = connection.execute(
                "SELECT key, caption, \"group\", shard, image_offset, image_size, image_format FROM samples "
                "WHERE key = ? LIMIT 1", [key]
            ).fetchone()
        if row is None:
            raise KeyError(key)
        return SampleRef(row[0], row[1] or "", row[2], row[3], row[4], row[5], row[6] or "png")


def _record_batches(connection, sql: str, rows: int = 65_536):
    """The result of `sql` as Arrow record batches (DuckDB 2's relation reader; `fetch_arrow_reader` before)."""
    relation = connection.sql(sql)
    if hasattr(relation, "to_arrow_reader"):
        return relation.to_arrow_reader(rows)
    return relation.fetch_arrow_reader(rows)


def _terms(caption: str) -> list[str]:
    english = STOPWORDS["en"]
    return [t for t in _TERM.findall(caption.lower()) if t not in english and t not in _CAPTION_NOISE]
