"""The cluster catalogue read through DuckDB equals the same catalogue built from every index row in Python."""

from __future__ import annotations

import math
from collections import Counter

import pyarrow as pa

from biomedica.annotate.catalogue import ClusterCatalogue, _terms
from biomedica.archive.annotations import AnnotationStore
from biomedica.archive.reader import read_member, read_shard_index


def _reference(archive, store: AnnotationStore, per_cluster: int, top: int) -> dict[int, tuple[int, list[str], list[str]]]:
    """cluster -> (size, shown keys, top terms), the way the catalogue did it with all rows in memory."""
    by_key = {r["key"]: r for r in read_shard_index(archive, columns=["key", "caption"]).to_pylist()}
    members: dict[int, list[tuple[float, str]]] = {}
    for row in store.read("clusters").to_pylist():
        if row["cluster"] is None or row["cluster"] < 0 or row["key"] not in by_key:
            continue
        members.setdefault(row["cluster"], []).append((row["distance"] or 0.0, row["key"]))
    counts = {c: Counter(t for _, k in keyed for t in _terms(by_key[k]["caption"] or "")) for c, keyed in members.items()}
    df = Counter(t for c in counts.values() for t in c)
    out = {}
    for c, keyed in members.items():
        keyed.sort()
        total = sum(counts[c].values()) or 1
        ranked = sorted(counts[c], key=lambda t, c=c, total=total: (-(counts[c][t] / total) * math.log(1 + len(members) / df[t]), t))
        out[c] = (len(keyed), [k for _, k in keyed[:per_cluster]], ranked[:top])
    return out


def test_catalogue_equals_the_in_memory_build(clustered):
    archive, annotations = clustered
    store = AnnotationStore(annotations)
    catalogue = ClusterCatalogue(archive, store, samples_per_cluster=3, top_terms=5)
    got = {c: (s.size, [r.key for r in s.samples], s.top_terms) for c, s in catalogue.clusters.items()}
    assert got == _reference(archive, store, 3, 5)
    assert catalogue.order() == sorted(got, key=lambda c: (-got[c][0], c))


def test_unknown_clusters_and_keys_outside_the_index_are_left_out_and_any_image_is_served(clustered):
    archive, annotations = clustered
    store = AnnotationStore(annotations)
    table = store.read("clusters")
    extra = pa.table({"key": ["PMC0_000", table["key"][0].as_py()], "cluster": pa.array([0, -1], pa.int32()),
                      "distance": pa.array([0.0, None], pa.float32())}, schema=table.schema)
    store.write("clusters", pa.concat_tables([table.slice(1), extra]))
    catalogue = ClusterCatalogue(archive, store, samples_per_cluster=2)
    reference = _reference(archive, store, 2, 8)
    assert {c: (s.size, [r.key for r in s.samples]) for c, s in catalogue.clusters.items()} == {
        c: (size, keys) for c, (size, keys, _) in reference.items()}
    index = read_shard_index(archive, columns=["key", "shard", "image_offset", "image_size"]).to_pylist()
    shown = {r.key for s in catalogue.clusters.values() for r in s.samples}
    hidden = next(r for r in index if r["key"] not in shown)  # not in any grid: looked up in the index
    data, media_type = catalogue.image(hidden["key"])
    assert data == read_member(archive, catalogue._lookup(hidden["key"]).group, hidden["shard"],
                               hidden["image_offset"], hidden["image_size"])
    assert media_type in ("image/jpeg", "image/png")
    try:
        catalogue.image("PMC0_000")
    except KeyError:
        pass
    else:
        raise AssertionError("an unknown key must raise KeyError")


def test_superseded_samples_are_not_shown(clustered, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    from biomedica.archive.superseded import SUPERSEDED_NAME, SUPERSEDED_SCHEMA

    source, annotations = clustered
    archive = tmp_path / "archive"
    shutil.copytree(source, archive)
    store = AnnotationStore(annotations)
    first = ClusterCatalogue(archive, store, samples_per_cluster=2)
    gone = first.clusters[first.order()[0]].samples[0]
    pq.write_table(pa.table({"key": [gone.key], "article_id": [gone.key.split("_")[0]], "group": [gone.group],
                             "unit_id": [0], "shard": [gone.shard], "reason": ["changed"], "kept_unit": [1]},
                            schema=SUPERSEDED_SCHEMA), archive / SUPERSEDED_NAME)
    catalogue = ClusterCatalogue(archive, store, samples_per_cluster=2, top_terms=5)
    got = {c: (s.size, [r.key for r in s.samples], s.top_terms) for c, s in catalogue.clusters.items()}
    assert got == _reference(archive, store, 2, 5)
    assert gone.key not in {k for _, keys, _ in got.values() for k in keys}
    assert sum(s.size for s in catalogue.clusters.values()) == sum(s.size for s in first.clusters.values()) - 1
