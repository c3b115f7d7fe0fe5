"""Curation: tables keyed by sample key under `annotations/`, never a rewrite of the shards.

Torch-free core: `run_curate` (dedup, quality, panels), `find_duplicates`,
`assess_quality`, `load_taxonomy`, `propagate_cluster_labels`. With torch/open_clip:
`curate.embed`, `curate.cluster` (scikit-learn or faiss), `curate.concepts` (zero-shot).
Subfigures (`curate.subfigures`: panel boxes, caption splits, pairing) are torch-free with the
gutter detector; its learned detector needs torch.
"""

from biomedica.archive.annotations import AnnotationStore, default_annotations_dir
from biomedica.archive.labels import propagate_cluster_labels
from biomedica.curate.config import ClusterConfig, DedupConfig, EmbedConfig, QualityConfig, ZeroShotConfig
from biomedica.curate.dedup import find_duplicates, load_eval_images
from biomedica.curate.quality import assess_quality
from biomedica.curate.run import run_curate
from biomedica.taxonomy import load_taxonomy

__all__ = [
    "AnnotationStore",
    "ClusterConfig",
    "DedupConfig",
    "EmbedConfig",
    "QualityConfig",
    "ZeroShotConfig",
    "assess_quality",
    "default_annotations_dir",
    "find_duplicates",
    "load_eval_images",
    "load_taxonomy",
    "propagate_cluster_labels",
    "run_curate",
]
