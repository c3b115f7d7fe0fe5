"""From stored labels to one label per cluster: majority vote, agreement, kappa, and the export.

A cluster's status is the majority of its annotators' statuses (a tie counts as
`ambiguous`: experts disagree). For a `labelled` cluster, a concept (global or local) is
kept when more than half of the annotators who labelled it chose it; panel type is the
majority among them. Agreement is reported per cluster (share of annotators behind the
majority category) and overall (Fleiss' kappa, Cohen's kappa per pair) on two questions:
the category (status, or the set of global concepts when labelled) and the panel type.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from biomedica.annotate.agreement import fleiss_kappa, majority, pairwise_cohen
from biomedica.annotate.store import ClusterLabel
from biomedica.archive.labels import CLUSTER_LABELS_SCHEMA


def category(label: ClusterLabel) -> str:
    """What 'agreeing' means for the category question: same status, and same global concepts."""
    if label.status != "labelled":
        return label.status
    return "labelled:" + ",".join(sorted(label.global_concepts))


@dataclass
class ClusterConsensus:
    cluster: int
    status: str
    global_concepts: list[str]
    local_concepts: list[str]
    panel_type: str | None
    annotators: int
    agreement: float
    taxonomy: str | None


@dataclass
class AgreementReport:
    clusters_labelled: int
    annotators: list[str]
    fleiss_category: float | None
    fleiss_panel_type: float | None
    cohen_category: dict[str, float | None] = field(default_factory=dict)
    cohen_panel_type: dict[str, float | None] = field(default_factory=dict)


def _by_cluster(labels: list[ClusterLabel]) -> dict[int, list[ClusterLabel]]:
    grouped: dict[int, list[ClusterLabel]] = {}
    for label in labels:
        grouped.setdefault(label.cluster, []).append(label)
    return grouped


def consensus(labels: list[ClusterLabel]) -> list[ClusterConsensus]:
    """One ClusterConsensus per cluster with at least one label (latest label per annotator)."""
    result = []
    for cluster, votes in sorted(_by_cluster(labels).items()):
        status, _ = majority([v.status for v in votes])
        status = status or "ambiguous"
        _, agreement = majority([category(v) for v in votes])
        labelled = [v for v in votes if v.status == "labelled"]
        half = len(labelled) / 2
        global_votes = Counter(c for v in labelled for c in set(v.global_concepts))
        local_votes = Counter(c for v in labelled for c in set(v.local_concepts))
        panel, _ = majority([v.panel_type for v in labelled if v.panel_type])
        result.append(
            ClusterConsensus(
                cluster=cluster,
                status=status,
                global_concepts=sorted(c for c, n in global_votes.items() if n > half) if status == "labelled" else [],
                local_concepts=sorted(c for c, n in local_votes.items() if n > half) if status == "labelled" else [],
                panel_type=panel if status == "labelled" else None,
                annotators=len(votes),
                agreement=round(agreement, 4),
                taxonomy=next((v.taxonomy for v in votes if v.taxonomy), None),
            )
        )
    return result


def agreement_report(labels: list[ClusterLabel]) -> AgreementReport:
    grouped = _by_cluster(labels)
    categories = {c: {v.annotator: category(v) for v in votes} for c, votes in grouped.items()}
    panels = {c: {v.annotator: v.panel_type for v in votes if v.status == "labelled" and v.panel_type}
              for c, votes in grouped.items()}
    return AgreementReport(
        clusters_labelled=len(grouped),
        annotators=sorted({v.annotator for v in labels}),
        fleiss_category=fleiss_kappa(categories),
        fleiss_panel_type=fleiss_kappa(panels),
        cohen_category=pairwise_cohen(categories),
        cohen_panel_type=pairwise_cohen(panels),
    )


def consensus_table(items: list[ClusterConsensus]) -> pa.Table:
    """CLUSTER_LABELS_SCHEMA rows for `archive.labels.write_labels`."""
    return pa.Table.from_pylist(
        [
            {"cluster": c.cluster, "status": c.status, "global_concepts": c.global_concepts,
             "local_concepts": c.local_concepts, "panel_type": c.panel_type, "annotators": c.annotators,
             "agreement": c.agreement, "taxonomy": c.taxonomy}
            for c in items
        ],
        schema=CLUSTER_LABELS_SCHEMA,
    )
