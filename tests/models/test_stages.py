"""The same spec in every stage: curate and eval embed an archive to identical vectors, curate takes every form."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

pytest.importorskip("open_clip")

from biomedica.archive.annotations import AnnotationStore  # noqa: E402
from biomedica.archive.reader import iter_shard, shard_paths  # noqa: E402
from biomedica.curate.config import EmbedConfig  # noqa: E402
from biomedica.curate.embed import embed_archive, read_embeddings  # noqa: E402


@pytest.fixture(scope="module")
def mixed_archive(tmp_path_factory):
    """A small archive of large JPEGs (reduced-scale decode applies) and one 16-bit grey PNG."""
    from biomedica.ingest.config import IngestConfig
    from biomedica.ingest.run import run_ingest
    from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus

    root = tmp_path_factory.mktemp("mixed")
    write_demo_corpus(root / "corpus", DemoCorpusConfig(n_articles=4, seed=0, image_size=512))
    ramp = (np.add.outer(np.arange(300), np.arange(400)) * 90 + 2000).astype(np.uint16)  # values far above 255
    Image.fromarray(ramp).save(sorted((root / "corpus").rglob("*.png"))[0])
    run_ingest(IngestConfig(input=root / "corpus", output=root / "archive", workers=1, progress=False))
    return root / "archive"


def test_curate_and_eval_embed_an_archive_to_identical_vectors(mixed_archive, tmp_path):
    from biomedica.eval.embeddings import EmbeddingCache, embed_images
    from biomedica.eval.images import FileSliceImage
    from biomedica.models import load_model

    config = EmbedConfig(model="tiny-random", batch_size=4, device="cpu", captions=False)
    store = AnnotationStore(tmp_path)
    embed_archive(mixed_archive, store, config)
    curate_keys, curate_vectors = read_embeddings(store, "tiny-random")

    model = load_model("tiny-random", device="cpu")
    eval_keys, eval_chunks, modes = [], [], set()
    for _, tar_path in shard_paths(mixed_archive):  # eval's archive adapter: tar members by index offset
        index = pq.read_table(tar_path.with_suffix(".parquet"), columns=["key", "image_offset", "image_size"]).to_pylist()
        where = {row["key"]: row for row in index}
        keys = []
        for record, data in iter_shard(tar_path):
            image = Image.open(io.BytesIO(data))
            modes.add((image.format, image.mode, min(image.size) >= 256))
            keys.append(record["key"])
        refs = [FileSliceImage(tar_path, where[k]["image_offset"], where[k]["image_size"], k) for k in keys]
        vectors, _ = embed_images(model, refs, "mixed", EmbeddingCache(None), batch_size=4)
        eval_keys += keys
        eval_chunks.append(vectors)
    assert ("PNG", "I;16", True) in modes and ("JPEG", "RGB", True) in modes
    order = np.argsort(np.array(eval_keys, dtype=object), kind="stable")
    eval_vectors = np.concatenate(eval_chunks)[order].astype(np.float16)
    assert [eval_keys[i] for i in order] == curate_keys
    assert np.isfinite(curate_vectors.astype(np.float32)).all()
    assert curate_vectors.tobytes() == eval_vectors.tobytes()


def _curate(args, tmp_path):
    import typer
    from typer.testing import CliRunner

    from biomedica.cli.curate import curate_app

    app = typer.Typer()
    app.add_typer(curate_app)
    return CliRunner().invoke(app, ["curate", *args[:1], str(args[1]), "--annotations", str(tmp_path), *args[2:]])


def test_curate_takes_tiny_random_end_to_end(curation_archive, tmp_path):
    result = _curate(["embed", curation_archive, "--model", "tiny-random", "--device", "cpu"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "embedded 51 samples from 9 shards" in " ".join(result.output.split())
    assert (tmp_path / "embeddings" / "tiny-random" / "meta.json").is_file()
    result = _curate(["zeroshot", curation_archive, "--model", "tiny-random", "--device", "cpu"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "labelled 51 samples" in " ".join(result.output.split())
    assert pq.read_table(tmp_path / "concepts.parquet").column("model").to_pylist() == ["tiny-random"] * 51


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model", "tiny-random@x"], "invalid option model: bad seed in 'tiny-random@x'"),
        (["--model", "ViT-B-16:"], "invalid option model: model 'ViT-B-16:': give ARCH:TAG"),
        (["--model", "tiny-random", "--pretrained", "laion2b"], "already names its weights; drop pretrained 'laion2b'"),
        (["--model", "biomedica-tiny:/no/such/epoch_1.pt"], "/no/such/epoch_1.pt: checkpoint file not found"),
        (["--model", "tiny-random", "--device", "gpu"], "device 'gpu': use auto, cpu, cuda, cuda:N or mps"),
        (["--model", "NoSuchNet:random"], "unknown OpenCLIP architecture 'NoSuchNet'"),
    ],
)
@pytest.mark.parametrize("command", ["embed", "zeroshot"])
def test_curate_model_errors_are_one_message_without_traceback(curation_archive, tmp_path, command, options, message):
    result = _curate([command, curation_archive, *options], tmp_path)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert message in " ".join(result.output.split()) and result.output.count("error:") == 1


# (model, pretrained) as older configs give them -> today's folder name; the spec of the same weights -> the same folder
LEGACY = [
    ({"model": "ViT-B-32"}, "ViT-B-32", "ViT-B-32:random"),
    ({"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k"}, "ViT-B-32--laion2b_s34b_b79k", "ViT-B-32:laion2b_s34b_b79k"),
    ({"model": "ViT-B-32", "pretrained": "/ckpt/epoch_3.pt"}, "ViT-B-32", "ViT-B-32:/ckpt/epoch_3.pt"),
    ({"model": "hf-hub:org/BMC-CLIP"}, "org--BMC-CLIP", "hf-hub:org/BMC-CLIP"),
    ({"model": "timm:vit_small", "pretrained": "w/dino.safetensors"}, "timm-vit_small", "timm:vit_small:w/dino.safetensors"),
]


@pytest.mark.parametrize(("legacy", "folder", "spec"), LEGACY)
def test_older_embed_configs_keep_their_folder_and_resume_from_the_spec_form(legacy, folder, spec):
    old = EmbedConfig(**legacy)
    new = EmbedConfig(model=spec)
    assert old.folder_name() == new.folder_name() == folder
    assert old.spec() == new.spec() == spec
    assert old.recorded_model() == new.recorded_model() == (legacy["model"], legacy.get("pretrained"))


def test_spec_forms_that_differ_get_different_folders():
    names = {EmbedConfig(model=m).folder_name() for m in
             ["tiny-random", "tiny-random@1", "ViT-B-32:random", "ViT-B-32:random@1", "timm:vit_small", "timm:vit_small:random"]}
    assert names == {"tiny-random", "tiny-random@1", "ViT-B-32", "ViT-B-32--random@1", "timm-vit_small--hub", "timm-vit_small"}
