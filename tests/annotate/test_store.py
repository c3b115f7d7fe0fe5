import sqlite3

import pytest

from biomedica.annotate.consensus import agreement_report, consensus, consensus_table
from biomedica.annotate.store import ClusterLabel, LabelStore


def test_labels_survive_reopening_and_latest_wins(tmp_path):
    path = tmp_path / "labels.sqlite"
    store = LabelStore(path)
    store.add(ClusterLabel("alice", 3, "labelled", "single", ["microscopy"], ["immunohistochemistry"]))
    store.add(ClusterLabel("alice", 3, "split"))
    store.add(ClusterLabel("bob", 3, "labelled", "multiple", ["microscopy"], []))
    # no close(): a crash right after the request must not lose anything
    reopened = LabelStore(path)
    latest = reopened.latest()
    assert [(label.annotator, label.status) for label in latest] == [("alice", "split"), ("bob", "labelled")]
    assert reopened.history_size() == 3 and reopened.labelled_by("alice") == {3}
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bad_labels_are_refused(tmp_path):
    store = LabelStore(tmp_path / "l.sqlite")
    with pytest.raises(ValueError, match="status must be one of"):
        store.add(ClusterLabel("alice", 1, "maybe"))
    with pytest.raises(ValueError, match="type your name"):
        store.add(ClusterLabel("  ", 1, "labelled"))


def _votes():
    return [
        ClusterLabel("a", 0, "labelled", "single", ["clinical_imaging"], ["computed_tomography"], taxonomy="t 1"),
        ClusterLabel("b", 0, "labelled", "single", ["clinical_imaging"], ["computed_tomography", "x_ray_radiography"]),
        ClusterLabel("c", 0, "labelled", "multiple", ["clinical_imaging", "plots_and_charts"], ["computed_tomography"]),
        ClusterLabel("a", 1, "ambiguous"),
        ClusterLabel("b", 1, "labelled", "single", ["maps"], []),
        ClusterLabel("a", 2, "split"),
        ClusterLabel("b", 2, "split"),
    ]


def test_consensus_majority_per_cluster():
    items = {c.cluster: c for c in consensus(_votes())}
    assert items[0].status == "labelled" and items[0].global_concepts == ["clinical_imaging"]
    assert items[0].local_concepts == ["computed_tomography"] and items[0].panel_type == "single"
    assert items[0].annotators == 3 and items[0].agreement == pytest.approx(2 / 3, abs=1e-4)
    assert items[0].taxonomy == "t 1"
    assert items[1].status == "ambiguous" and items[1].global_concepts == []  # a tie is ambiguous
    assert items[2].status == "split" and items[2].agreement == 1.0
    table = consensus_table(list(items.values()))
    assert table.column("status").to_pylist() == ["labelled", "ambiguous", "split"]


def test_agreement_report_kappas():
    report = agreement_report(_votes())
    assert report.clusters_labelled == 3 and report.annotators == ["a", "b", "c"]
    assert report.fleiss_category is not None and -1 <= report.fleiss_category <= 1
    assert set(report.cohen_category) == {"a|b", "a|c", "b|c"}
    assert report.cohen_category["a|c"] is None  # they share one cluster only
