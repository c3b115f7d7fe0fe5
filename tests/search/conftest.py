"""An index over the curation archive with real annotation tables, built once per session."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest


@dataclass(frozen=True)
class Indexed:
    archive: Path
    annotations: Path
    index_dir: Path


def write_concept_tables(archive: Path, annotations: Path) -> None:
    """clusters / concepts / labels tables in curate's schemas, values derived from the key (no model needed)."""
    from biomedica.archive.annotations import AnnotationStore
    from biomedica.archive.labels import LABELS_SCHEMA
    from biomedica.archive.reader import read_shard_index
    from biomedica.curate.cluster import CLUSTERS_SCHEMA
    from biomedica.curate.concepts import CONCEPTS_SCHEMA

    keys = sorted(read_shard_index(archive, columns=["key"]).column("key").to_pylist())
    code = {k: zlib.crc32(k.encode()) for k in keys}
    store = AnnotationStore(annotations)
    store.write("clusters", pa.Table.from_pylist(
        [{"key": k, "cluster": code[k] % 4, "distance": 0.5} for k in keys], schema=CLUSTERS_SCHEMA))
    globals_ = ["radiology", "microscopy", "chart"]
    store.write("concepts", pa.Table.from_pylist([
        {"key": k, "zs_global": globals_[code[k] % 3], "zs_global_score": 0.9,
         "zs_local": None if code[k] % 5 == 0 else f"local-{code[k] % 7}", "zs_local_score": 0.5,
         "zs_local_top": [], "zs_local_top_scores": [], "taxonomy": "t", "model": "m"} for k in keys
    ], schema=CONCEPTS_SCHEMA))
    labelled = keys[::4]  # expert labels win over zero-shot ones where present
    store.write("labels", pa.Table.from_pylist([
        {"key": k, "label_cluster": code[k] % 4, "label_status": "labelled", "label_global": ["expert-global"],
         "label_local": ["expert-local"] if code[k] % 2 else [], "label_panel_type": None, "label_annotators": 2,
         "label_agreement": 1.0, "label_taxonomy": "t"} for k in labelled
    ], schema=LABELS_SCHEMA))


def _mark_some_multiple(annotations: Path) -> None:
    """The demo's figures are all single-panel; every third row becomes "multiple" so the filter splits the data."""
    import pyarrow.compute as pc

    from biomedica.archive.annotations import AnnotationStore

    store = AnnotationStore(annotations)
    panels = store.read("panels")
    kinds = ["multiple" if i % 3 == 0 else kind for i, kind in enumerate(panels.column("panel_type").to_pylist())]
    index = panels.schema.get_field_index("panel_type")
    store.write("panels", panels.set_column(index, "panel_type", pa.array(kinds, pa.string())))
    assert pc.sum(pc.equal(store.read("panels").column("panel_type"), "multiple")).as_py() > 0


@pytest.fixture(scope="session")
def indexed_curation(curation_archive, tmp_path_factory) -> Indexed:
    from biomedica.curate.run import run_curate
    from biomedica.index.build import build_index
    from biomedica.index.config import IndexConfig

    root = tmp_path_factory.mktemp("search")
    annotations = root / "annotations"
    run_curate(curation_archive, annotations)  # dedup, quality, panels: the real steps
    _mark_some_multiple(annotations)
    write_concept_tables(curation_archive, annotations)
    index_dir = root / "index"
    build_index(IndexConfig(archive=curation_archive, annotations=annotations, index_dir=index_dir))
    return Indexed(curation_archive, annotations, index_dir)
