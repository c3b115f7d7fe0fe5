"""Fixtures of the annotation tests: the shared archive with a hand-made clusters table (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest


def _cluster_of(caption: str) -> int:
    text = caption.lower()
    if any(w in text for w in ("bar chart", "line plot", "scatter plot", "kaplan", "flow diagram")):
        return 0  # charts and diagrams
    if "ultrasound" in text or "echocardiography" in text:
        return 1
    return 2  # other imaging


@pytest.fixture()
def clustered(curation_archive, tmp_path) -> tuple[Path, Path]:
    """(archive, annotations folder) with clusters.parquet: 3 clusters chosen from the captions."""
    from biomedica.archive.annotations import AnnotationStore
    from biomedica.archive.reader import read_shard_index
    from biomedica.curate.cluster import CLUSTERS_SCHEMA

    index = read_shard_index(curation_archive, columns=["key", "caption"])
    keys = index.column("key").to_pylist()
    clusters = [_cluster_of(c) for c in index.column("caption").to_pylist()]
    table = pa.table({"key": keys, "cluster": pa.array(clusters, pa.int32()),
                      "distance": pa.array([float(i % 7) for i in range(len(keys))], pa.float32())},
                     schema=CLUSTERS_SCHEMA)
    annotations = tmp_path / "annotations"
    AnnotationStore(annotations).write("clusters", table)
    return curation_archive, annotations
