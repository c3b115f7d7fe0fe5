"""Expert cluster labels propagated to every sample of the cluster (`annotations/labels.parquet`).

The annotation app exports one row per cluster (`CLUSTER_LABELS_SCHEMA`: the majority
vote of the annotators and their agreement); this module joins it with
`clusters.parquet` so each sample carries its cluster's labels. Clusters marked
`ambiguous` or `split` are propagated with their status and no concepts, so `select`
treats their samples as unlabelled rather than trusting a mixed cluster. Panel type is
also propagated (`label_panel_type`), but `panels.parquet` holds each image's own
evidence and should be preferred for single-vs-compound decisions.
"""

from __future__ import annotations

import pyarrow as pa

from biomedica.archive.annotations import AnnotationStore

CLUSTER_LABELS_SCHEMA = pa.schema(
    [
        ("cluster", pa.int32()),
        ("status", pa.string()),  # labelled | ambiguous | split
        ("global_concepts", pa.list_(pa.string())),
        ("local_concepts", pa.list_(pa.string())),
        ("panel_type", pa.string()),
        ("annotators", pa.int16()),
        ("agreement", pa.float32()),  # share of annotators who voted the majority status/global concept
        ("taxonomy", pa.string()),
    ]
)
LABELS_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("label_cluster", pa.int32()),
        ("label_status", pa.string()),
        ("label_global", pa.list_(pa.string())),
        ("label_local", pa.list_(pa.string())),
        ("label_panel_type", pa.string()),
        ("label_annotators", pa.int16()),
        ("label_agreement", pa.float32()),
        ("label_taxonomy", pa.string()),
    ]
)


def propagate_cluster_labels(clusters: pa.Table, cluster_labels: pa.Table) -> pa.Table:
    """LABELS_SCHEMA rows: every sample of a labelled cluster gets that cluster's labels."""
    by_cluster = {row["cluster"]: row for row in cluster_labels.to_pylist()}
    rows = []
    for key, cluster in zip(clusters.column("key").to_pylist(), clusters.column("cluster").to_pylist()):
        label = by_cluster.get(cluster)
        if label is None:
            continue
        usable = label["status"] == "labelled"
        rows.append({
            "key": key,
            "label_cluster": cluster,
            "label_status": label["status"],
            "label_global": label["global_concepts"] if usable else [],
            "label_local": label["local_concepts"] if usable else [],
            "label_panel_type": label["panel_type"] if usable else None,
            "label_annotators": label["annotators"],
            "label_agreement": label["agreement"],
            "label_taxonomy": label["taxonomy"],
        })
    return pa.Table.from_pylist(rows, schema=LABELS_SCHEMA)


def write_labels(store: AnnotationStore, cluster_labels: pa.Table) -> pa.Table:
    """Save the cluster labels (`cluster_labels.parquet`) and their propagation (`labels.parquet`)."""
    store.write("cluster_labels", cluster_labels.cast(CLUSTER_LABELS_SCHEMA))
    table = propagate_cluster_labels(store.read("clusters"), cluster_labels)
    store.write("labels", table)
    return table
