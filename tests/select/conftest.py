"""Fixtures of the select tests: the shared curation archive, curated once, with hand-made concept labels."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest


@pytest.fixture(scope="session")
def curated(curation_archive, tmp_path_factory) -> tuple[Path, Path]:
    """(archive, annotations) with dedup/quality/panels and a concepts table from the captions.

    The concept of each sample is read off its caption (charts -> plots_and_charts, flow
    diagrams -> illustrative_diagrams, everything else clinical_imaging), so the
    strategies can be checked against a known truth without a model.
    """
    from biomedica.archive.reader import read_shard_index
    from biomedica.curate.concepts import CONCEPTS_SCHEMA
    from biomedica.curate.run import run_curate

    annotations = tmp_path_factory.mktemp("select-annotations")
    run_curate(curation_archive, annotations)
    rows = []
    index = read_shard_index(curation_archive, columns=["key", "caption"])
    for key, caption in zip(index.column("key").to_pylist(), index.column("caption").to_pylist()):
        text = caption.lower()
        if any(w in text for w in ("bar chart", "line plot", "scatter plot", "kaplan")):
            concept, local = "plots_and_charts", "bar_chart"
        elif "flow diagram" in text:
            concept, local = "illustrative_diagrams", "flow_diagram"
        else:
            concept, local = "clinical_imaging", "computed_tomography"
        rows.append({"key": key, "zs_global": concept, "zs_global_score": 0.9, "zs_local": local,
                     "zs_local_score": 0.8 if key.endswith("0") else 0.2, "zs_local_top": [local],
                     "zs_local_top_scores": [0.8], "taxonomy": "biomedica 1.0.0", "model": "caption-rules"})
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows, schema=CONCEPTS_SCHEMA), annotations / "concepts.parquet")
    return curation_archive, annotations


@pytest.fixture
def openclip_first_batch():
    """OpenCLIP's own webdataset loader (get_wds_dataset) over a shard pattern -> (images, texts, dataset info)."""
    return _openclip_first_batch


def _openclip_first_batch(pattern: str):
    """OpenCLIP's own webdataset loader (get_wds_dataset) over `pattern`: (images, texts, dataset info)."""
    import argparse

    import numpy as np
    import torch
    from open_clip_train.data import get_wds_dataset

    args = argparse.Namespace(train_data=pattern, val_data=None, dataset_resampled=False,
                              train_num_samples=None, train_data_upsampling_factors=None, seed=0, batch_size=4,
                              workers=0, world_size=1)

    def preprocess(image):
        return torch.tensor(np.asarray(image.convert("RGB").resize((16, 16))), dtype=torch.float32).permute(2, 0, 1)

    info = get_wds_dataset(args, preprocess, is_train=True, tokenizer=lambda texts: torch.zeros(len(texts), 8))
    images, texts = next(iter(info.dataloader))
    return images, texts, info
