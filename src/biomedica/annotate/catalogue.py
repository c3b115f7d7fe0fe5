"""What the annotators see: clusters with their sample keys, caption top terms, and image bytes.

Built once when the app starts from `annotations/clusters.parquet` and the shard indexes.
Samples of a cluster are ordered nearest-to-centroid first, so the grid shows its most
typical members. Top terms are caption words ranked by TF-IDF with clusters as documents.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from biomedica.archive.annotations import AnnotationStore
from biomedica.archive.reader import read_member, read_shard_index
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
    """Clusters of one archive, ready to show."""

    def __init__(self, archive: Path, store: AnnotationStore, samples_per_cluster: int = 24, top_terms: int = 8) -> None:
        self.archive = Path(archive)
        clusters = store.read("clusters").to_pylist()
        index = read_shard_index(
            self.archive, columns=["key", "caption", "shard", "image_offset", "image_size", "image_format"]
        ).to_pylist()
        by_key = {row["key"]: row for row in index}
        members: dict[int, list[tuple[float, str]]] = {}
        for row in clusters:
            if row["cluster"] is None or row["cluster"] < 0 or row["key"] not in by_key:
                continue
            distance = row.get("distance")
            members.setdefault(int(row["cluster"]), []).append((distance if distance is not None else 0.0, row["key"]))
        self._refs = {
            key: SampleRef(key, row["caption"] or "", row["group"], row["shard"], row["image_offset"], row["image_size"],
                           row["image_format"] or "png")
            for key, row in by_key.items()
        }
        term_counts = {c: Counter(t for _, key in keys for t in _terms(self._refs[key].caption)) for c, keys in members.items()}
        document_frequency = Counter(t for counts in term_counts.values() for t in counts)
        n_clusters = max(1, len(members))
        self.clusters: dict[int, ClusterSummary] = {}
        for cluster, keyed in members.items():
            keyed.sort()
            counts = term_counts[cluster]
            total = sum(counts.values()) or 1
            ranked = sorted(
                counts, key=lambda t: (-(counts[t] / total) * math.log(1 + n_clusters / document_frequency[t]), t)
            )
            self.clusters[cluster] = ClusterSummary(
                cluster, len(keyed), [self._refs[k] for _, k in keyed[:samples_per_cluster]], ranked[:top_terms]
            )

    def order(self) -> list[int]:
        """Clusters in queue order: largest first (most samples affected per label), then id."""
        return sorted(self.clusters, key=lambda c: (-self.clusters[c].size, c))

    def image(self, key: str) -> tuple[bytes, str]:
        """(bytes, media type) of a sample's image; KeyError for an unknown key."""
        ref = self._refs[key]
        data = read_member(self.archive, ref.group, ref.shard, ref.image_offset, ref.image_size)
        return data, "image/jpeg" if ref.image_format == "jpg" else "image/png"


def _terms(caption: str) -> list[str]:
    english = STOPWORDS["en"]
    return [t for t in _TERM.findall(caption.lower()) if t not in english and t not in _CAPTION_NOISE]
