import pyarrow as pa

from biomedica.archive.annotations import AnnotationStore
from biomedica.archive.labels import CLUSTER_LABELS_SCHEMA, LABELS_SCHEMA, propagate_cluster_labels, write_labels


def _cluster_labels():
    return pa.Table.from_pylist(
        [
            {"cluster": 0, "status": "labelled", "global_concepts": ["clinical_imaging"],
             "local_concepts": ["computed_tomography"], "panel_type": "single", "annotators": 3,
             "agreement": 0.67, "taxonomy": "biomedica 1.0.0"},
            {"cluster": 1, "status": "split", "global_concepts": ["microscopy"], "local_concepts": [],
             "panel_type": "multiple", "annotators": 2, "agreement": 1.0, "taxonomy": "biomedica 1.0.0"},
        ],
        schema=CLUSTER_LABELS_SCHEMA,
    )


def test_labels_reach_every_sample_of_a_labelled_cluster():
    clusters = pa.table({"key": ["A_000", "B_000", "C_000", "D_000"], "cluster": pa.array([0, 0, 1, 2], pa.int32())})
    table = propagate_cluster_labels(clusters, _cluster_labels())
    assert table.schema == LABELS_SCHEMA
    rows = {r["key"]: r for r in table.to_pylist()}
    assert set(rows) == {"A_000", "B_000", "C_000"}  # cluster 2 has no label
    assert rows["A_000"]["label_local"] == ["computed_tomography"] and rows["B_000"]["label_annotators"] == 3
    # a cluster to split propagates its status but no concepts
    assert rows["C_000"]["label_status"] == "split" and rows["C_000"]["label_global"] == []
    assert rows["C_000"]["label_panel_type"] is None


def test_write_labels_saves_both_tables(tmp_path):
    store = AnnotationStore(tmp_path)
    store.write("clusters", pa.table({"key": ["A_000"], "cluster": pa.array([0], pa.int32()),
                                      "distance": pa.array([0.1], pa.float32())}))
    write_labels(store, _cluster_labels())
    assert store.read("cluster_labels").num_rows == 2
    assert store.read("labels").column("label_global").to_pylist() == [["clinical_imaging"]]
    assert store.tables() == ["clusters", "labels", "cluster_labels"]
