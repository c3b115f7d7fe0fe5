import numpy as np
import pytest

from biomedica.curate.concepts import CONCEPTS_SCHEMA, score_concepts
from biomedica.taxonomy import load_taxonomy


def test_scores_pick_the_nearest_concept_and_sum_to_globals():
    taxonomy = load_taxonomy()
    local_ids = [c.id for c in taxonomy.local_concepts]
    rng = np.random.default_rng(0)
    text = rng.normal(size=(len(local_ids), 16)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    ct, bar = local_ids.index("computed_tomography"), local_ids.index("bar_chart")
    images = np.stack([text[ct], text[bar], np.full(16, np.nan)]).astype(np.float16)
    table = score_concepts(["A_000", "B_000", "C_000"], images, text, taxonomy, top_k=2, model="m")
    assert table.schema == CONCEPTS_SCHEMA
    rows = table.to_pylist()
    assert (rows[0]["zs_local"], rows[0]["zs_global"]) == ("computed_tomography", "clinical_imaging")
    assert (rows[1]["zs_local"], rows[1]["zs_global"]) == ("bar_chart", "plots_and_charts")
    assert rows[0]["zs_global_score"] >= rows[0]["zs_local_score"] > 0.5  # a global sums its locals
    assert len(rows[0]["zs_local_top"]) == 2 and rows[0]["zs_local_top_scores"][0] >= rows[0]["zs_local_top_scores"][1]
    assert rows[2]["zs_local"] is None and rows[2]["zs_local_top"] == []  # undecodable image
    assert rows[0]["taxonomy"] == "biomedica 1.0.0"


def test_zero_shot_end_to_end_with_tiny_model(curation_archive, tiny_clip_config, tmp_path):
    pytest.importorskip("open_clip")
    from biomedica.archive.annotations import AnnotationStore
    from biomedica.curate.concepts import zero_shot_labels
    from biomedica.curate.config import EmbedConfig, ZeroShotConfig

    store = AnnotationStore(tmp_path)
    embed = EmbedConfig(model=tiny_clip_config.stem, model_config_json=tiny_clip_config, captions=False, device="cpu")
    table = zero_shot_labels(curation_archive, store, ZeroShotConfig(embed=embed, top_k=3))
    taxonomy = load_taxonomy()
    assert table.num_rows == 51 and store.read("concepts").num_rows == 51
    assert set(table.column("zs_local").to_pylist()) <= set(taxonomy.local_by_id())
    assert set(table.column("zs_global").to_pylist()) <= set(taxonomy.global_by_id())
    scores = np.array(table.column("zs_global_score").to_pylist())
    assert ((scores > 0) & (scores <= 1.0 + 1e-6)).all()


def test_zero_shot_refuses_an_image_only_model_before_embedding(curation_archive, tmp_path):
    from biomedica.archive.annotations import AnnotationStore
    from biomedica.curate.concepts import zero_shot_labels
    from biomedica.curate.config import EmbedConfig, ZeroShotConfig
    from biomedica.models import ModelLoadError

    embed = EmbedConfig(model="timm:test_vit:random", captions=False, device="cpu")
    with pytest.raises(ModelLoadError, match="curate zeroshot needs a model with a text tower; 'timm:test_vit:random'"):
        zero_shot_labels(curation_archive, AnnotationStore(tmp_path / "ann"), ZeroShotConfig(embed=embed))
    assert not (tmp_path / "ann").exists()  # nothing embedded
