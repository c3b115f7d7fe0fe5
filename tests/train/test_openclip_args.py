from collections import Counter

import pytest

from biomedica.net.stream import FetchOptions
from biomedica.train.config import parse_config
from biomedica.train.openclip_args import PlanError, build_plan, mixture_weights, plan_epochs
from biomedica.train.sources import ResolvedSource, Shard

from .conftest import tiny_config, write_shards


def _source(name, sizes, weight=1.0, prefix="/data"):
    shards = [Shard(f"{prefix}/{name}/{i:06d}.tar", n) for i, n in enumerate(sizes)]
    return ResolvedSource(name, weight, shards, FetchOptions(), "sizes.json")


def _flag(argv, name):
    return argv[argv.index(name) + 1]


def test_bmca_recipe_maps_onto_openclip_flags(tmp_path):
    config = parse_config(tiny_config(
        tmp_path, [{"name": "c", "urls": "x"}],
        model={"name": "ViT-L-14", "pretrained": "commonpool_xl_clip_s13b_b90k", "precision": "amp_bf16"},
        optim={"lr": 1e-6, "beta1": 0.9, "beta2": 0.95, "warmup": 1000, "batch_size": 1024, "accum_freq": 2,
               "grad_clip_norm": 1.0},
        schedule={"total_steps": 20000, "checkpoint_every_steps": 1000},
        data={"sources": [{"name": "c", "urls": "x"}], "workers": 8},
    ))
    plan = build_plan(config, world_size=4, sources=[_source("c", [5000] * 10)])
    argv = plan.argv
    assert (_flag(argv, "--lr"), _flag(argv, "--beta1"), _flag(argv, "--beta2")) == ("1e-06", "0.9", "0.95")
    assert (_flag(argv, "--warmup"), _flag(argv, "--batch-size"), _flag(argv, "--accum-freq")) == ("1000", "1024", "2")
    assert _flag(argv, "--grad-clip-norm") == "1"
    assert (_flag(argv, "--model"), _flag(argv, "--pretrained")) == ("ViT-L-14", "commonpool_xl_clip_s13b_b90k")
    assert plan.epochs.global_batch == 8192
    # an OpenCLIP "epoch" is one checkpoint interval: 1000 steps x 8192 samples
    assert _flag(argv, "--train-num-samples") == str(1000 * 8192) and _flag(argv, "--epochs") == "20"
    assert {"--dataset-resampled", "--save-most-recent"} <= set(argv) and _flag(argv, "--resume") == "latest"
    assert "--train-data-upsampling-factors" not in argv  # one source: no weights needed
    assert _flag(argv, "--train-data").split("::")[:2] == ["/data/c/000000.tar", "/data/c/000001.tar"]


def test_epoch_rounding_to_worker_batches_is_reported(tmp_path):
    config = parse_config(tiny_config(tmp_path, [{"name": "c", "urls": "x"}],
                                      schedule={"total_steps": 10, "checkpoint_every_steps": 5},
                                      data={"sources": [{"name": "c", "urls": "x"}], "workers": 2}))
    epochs = plan_epochs(config, world_size=1, source_samples=100)
    assert (epochs.steps_per_epoch, epochs.epochs, epochs.total_steps) == (6, 2, 12)  # 5 batches -> 3 per worker
    plan = build_plan(config, world_size=1, sources=[_source("c", [50, 50])])
    assert any("12 steps will run" in note for note in plan.notes)


def test_without_resampling_one_epoch_is_one_pass(tmp_path):
    config = parse_config(tiny_config(tmp_path, [{"name": "c", "urls": "x"}],
                                      data={"sources": [{"name": "c", "urls": "x"}], "resampled": False, "workers": 1}))
    epochs = plan_epochs(config, world_size=1, source_samples=100)
    assert (epochs.steps_per_epoch, epochs.samples_per_epoch) == (7, 112)
    with pytest.raises(PlanError, match="every worker needs a shard"):
        build_plan(config.model_copy(update={"data": config.data.model_copy(update={"workers": 4})}),
                   world_size=1, sources=[_source("c", [50, 50])])


def test_mixture_weights_give_each_source_its_share_of_samples():
    small, large = _source("small", [5, 5, 5, 5], weight=3.0), _source("large", [20, 20], weight=1.0)
    weights = mixture_weights([small, large])
    assert weights == pytest.approx([3 / 20] * 4 + [1 / 40] * 2)
    drawn = [w * n for w, n in zip(weights, [5, 5, 5, 5, 20, 20], strict=True)]  # expected samples per shard draw
    assert sum(drawn[:4]) / sum(drawn) == pytest.approx(0.75)


def test_openclip_pipeline_draws_the_sources_at_the_set_ratio(tmp_path):
    """Two sources with different shard sizes, 3:1, through OpenCLIP's own resampled loader."""
    import torch
    from open_clip_train.data import get_wds_dataset
    from open_clip_train.params import parse_args

    write_shards(tmp_path / "black", "B", [5, 5, 5, 5], (0, 0, 0), "black")
    write_shards(tmp_path / "white", "W", [20, 20], (255, 255, 255), "white")
    config = parse_config(tiny_config(tmp_path / "runs", [
        {"name": "black", "urls": str(tmp_path / "black" / "{000000..000003}.tar"), "weight": 3},
        {"name": "white", "urls": str(tmp_path / "white" / "{000000..000001}.tar"), "weight": 1},
    ], data={"sources": [
        {"name": "black", "urls": str(tmp_path / "black" / "{000000..000003}.tar"), "weight": 3},
        {"name": "white", "urls": str(tmp_path / "white" / "{000000..000001}.tar"), "weight": 1},
    ], "workers": 0, "seed": 0}, schedule={"total_steps": 150, "checkpoint_every_steps": 150}))
    plan = build_plan(config, world_size=1)
    args = parse_args(plan.argv)
    args.world_size, args.rank = 1, 0

    def preprocess(image):
        return torch.tensor(image.convert("L").getpixel((0, 0)) / 255.0)

    data = get_wds_dataset(args, preprocess, is_train=True, epoch=0, tokenizer=lambda texts: torch.zeros(1, 1))
    counts = Counter()
    for images, _ in data.dataloader:
        counts.update(["white" if v > 0.5 else "black" for v in images.tolist()])
    total = counts["black"] + counts["white"]
    assert total == 150 * 16
    assert counts["black"] / total == pytest.approx(0.75, abs=0.06)


def test_shard_draws_depend_only_on_seed_and_epoch():
    """What a resumed run streams in epoch k is what an uninterrupted run would have streamed.

    OpenCLIP seeds the draws from the DataLoader worker seed (torch seed + worker id) and the
    epoch, so they repeat for the same (seed, epoch) and differ between epochs.
    """
    import torch
    from open_clip_train.data import ResampledShards2, SharedEpoch

    urls = "::".join(f"/d/{i}.tar" for i in range(10))
    weights = "::".join(["1"] * 10)

    def draws(epoch):
        torch.manual_seed(0)  # what open_clip_train's random_seed(seed, rank) does before building the loader
        shards = ResampledShards2(urls, weights, deterministic=True, epoch=SharedEpoch(epoch), nshards=30)
        return [d["url"] for d in torch.utils.data.DataLoader(shards, batch_size=None, num_workers=1)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


def test_key_filtered_shards_become_pipes_with_key_files(tmp_path):
    config = parse_config(tiny_config(tmp_path / "runs", [{"name": "sel", "selection": "x.jsonl"}]))
    dense = Shard("https://h/a/000000.tar", 3, ("K1", "K2", "K3"), shard_samples=4)
    sparse = Shard("https://h/a/000001.tar", 1, ("K9",), shard_samples=4)
    source = ResolvedSource("sel", 1.0, [dense, sparse], FetchOptions(), "selection")
    urls = _flag(build_plan(config, world_size=1, sources=[source]).argv, "--train-data").split("::")
    assert all(u.startswith("pipe:") and "--keys" in u for u in urls)
    assert "--no-ranges" in urls[0] and "--no-ranges" not in urls[1]
    key_files = sorted((tmp_path / "runs" / "tiny" / "selection" / "sel").glob("*.keys"))
    assert sorted(p.read_text() for p in key_files) == ["K1\nK2\nK3\n", "K9\n"]
