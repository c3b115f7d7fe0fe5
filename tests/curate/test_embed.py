import json

import numpy as np
import pytest

pytest.importorskip("open_clip")

from biomedica.archive.annotations import AnnotationStore  # noqa: E402
from biomedica.curate.config import EmbedConfig  # noqa: E402
from biomedica.curate.embed import embed_archive, read_embeddings  # noqa: E402


def _config(tiny_clip_config, **overrides):
    values = dict(model=tiny_clip_config.stem, model_config_json=tiny_clip_config, batch_size=8, device="cpu")
    values.update(overrides)
    return EmbedConfig(**values)


def test_embed_writes_float16_parts_and_resumes(curation_archive, tiny_clip_config, tmp_path):
    store = AnnotationStore(tmp_path)
    config = _config(tiny_clip_config)
    first = embed_archive(curation_archive, store, config)
    assert (first.shards_done, first.shards_skipped, first.samples, first.failed, first.dim) == (9, 0, 51, 0, 32)
    keys, images = read_embeddings(store, config.folder_name(), "image")
    text_keys, texts = read_embeddings(store, config.folder_name(), "text")
    assert keys == sorted(keys) == text_keys and len(keys) == 51
    assert images.dtype == np.float16 and images.shape == (51, 32) and texts.shape == (51, 32)
    assert np.allclose(np.linalg.norm(images.astype(np.float32), axis=1), 1.0, atol=1e-2)
    # byte-identical copies embed identically
    assert np.array_equal(images[keys.index("PMC9000004_000")], images[keys.index("PMC9000100_000")])
    meta = json.loads((store.embeddings_dir(config.folder_name()) / "meta.json").read_text())
    assert meta["dim"] == 32 and meta["dtype"] == "float16" and meta["model"] == tiny_clip_config.stem

    # an interrupted run: one part lost its completion file -> only that shard is redone
    part = sorted(store.embeddings_dir(config.folder_name()).glob("*.keys.parquet"))[3]
    part.unlink()
    again = embed_archive(curation_archive, store, config)
    assert (again.shards_done, again.shards_skipped) == (1, 8)
    assert np.array_equal(read_embeddings(store, config.folder_name())[1], images)


def test_other_model_into_same_folder_is_refused(curation_archive, tiny_clip_config, tmp_path):
    store = AnnotationStore(tmp_path)
    embed_archive(curation_archive, store, _config(tiny_clip_config, name="shared"))
    other = tmp_path / "other-tiny-clip.json"
    other.write_text(tiny_clip_config.read_text())
    with pytest.raises(ValueError, match="choose another --name"):
        embed_archive(curation_archive, store, _config(other, name="shared"))


def test_missing_inputs_are_clear(tiny_clip_config, tmp_path):
    with pytest.raises(FileNotFoundError, match="curate embed"):
        read_embeddings(AnnotationStore(tmp_path), "nothing")
    with pytest.raises(FileNotFoundError, match="checkpoint file not found"):
        from biomedica.curate.embed import load_encoder

        load_encoder(_config(tiny_clip_config, pretrained=str(tmp_path / "missing.pt")))


def test_timm_image_model_with_local_weights(curation_archive, tmp_path):
    """The DINOv2 route (`timm:<name>` + local weights), with timm's tiny test ViT: image-only embeddings."""
    timm = pytest.importorskip("timm")
    import torch

    weights = tmp_path / "test_vit.pth"
    torch.save(timm.create_model("test_vit", pretrained=False, num_classes=0).state_dict(), weights)
    store = AnnotationStore(tmp_path / "ann")
    config = EmbedConfig(model="timm:test_vit", pretrained=str(weights), batch_size=16, device="cpu")
    result = embed_archive(curation_archive, store, config)
    keys, vectors = read_embeddings(store, config.folder_name(), "image")
    assert result.samples == 51 and vectors.shape[0] == 51 and vectors.dtype == np.float16
    assert not list(store.embeddings_dir(config.folder_name()).glob("*.text.npy"))  # no text tower
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        embed_archive(curation_archive, store, EmbedConfig(model="timm:test_vit", pretrained=str(tmp_path / "x.pth"),
                                                           name="other", device="cpu"))


def test_decoding_threads_give_the_same_vectors_and_progress_counts_every_image(curation_archive, tiny_clip_config,
                                                                               tmp_path):
    inline = embed_archive(curation_archive, AnnotationStore(tmp_path / "a"), _config(tiny_clip_config))
    counted: list[int] = []
    threaded_config = _config(tiny_clip_config, workers=2)
    threaded = embed_archive(curation_archive, AnnotationStore(tmp_path / "b"), threaded_config, progress=counted.append)
    assert (threaded.samples, threaded.failed) == (inline.samples, inline.failed) and sum(counted) == inline.samples
    a = read_embeddings(AnnotationStore(tmp_path / "a"), threaded_config.folder_name())[1]
    b = read_embeddings(AnnotationStore(tmp_path / "b"), threaded_config.folder_name())[1]
    assert np.array_equal(a, b)


def test_a_folder_embedded_under_another_decode_rule_is_refused(curation_archive, tiny_clip_config, tmp_path):
    from biomedica.models.decode import DECODE_RULE

    store = AnnotationStore(tmp_path)
    config = _config(tiny_clip_config)
    embed_archive(curation_archive, store, config)
    meta_path = store.embeddings_dir(config.folder_name()) / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["decode"] == DECODE_RULE
    del meta["decode"]  # as written before the decode rule was recorded
    meta_path.write_text(json.dumps(meta))
    next(store.embeddings_dir(config.folder_name()).glob("*.keys.parquet")).unlink()  # one shard left to resume
    with pytest.raises(ValueError, match=r"started with other settings \(decode: None -> .*delete the folder"):
        embed_archive(curation_archive, store, config)
