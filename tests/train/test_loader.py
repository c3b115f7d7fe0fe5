"""DataLoader settings: the automatic worker count, and pin_memory / prefetch_factor reaching OpenCLIP's loader."""

import os

import pytest

from biomedica.train.config import ConfigError, parse_config
from biomedica.train.loader import MAX_AUTO_WORKERS, auto_workers, openclip_loader_options, resolve_loader
from biomedica.train.openclip_args import build_plan

from .conftest import tiny_config, write_shards


@pytest.mark.parametrize(("cpus", "processes", "workers"), [
    (2, 1, 1),     # this machine: one core for the trainer, one worker
    (1, 1, 1),     # never 0: resampled draws are seeded per worker
    (8, 1, 7),
    (96, 8, 11),   # an 8-GPU node: 12 cores per GPU process, one kept for it
    (64, 1, MAX_AUTO_WORKERS),  # capped: more workers only multiply shuffle buffers
    (4, 8, 1),
])
def test_auto_workers_is_cores_per_process_less_one_within_bounds(cpus, processes, workers):
    assert auto_workers(cpus, processes) == workers


def test_resolve_reads_affinity_and_torchrun_local_world_size(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(48)))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    settings = resolve_loader("auto", "auto", 4, "cuda", world_size=8)
    assert (settings.workers, settings.pin_memory, settings.prefetch_factor) == (11, True, 4)
    assert settings.how == "auto: 48 cores / 4 process(es) on this node - 1"
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    capped = resolve_loader("auto", "auto", 2, "cpu", world_size=1)
    assert (capped.workers, capped.pin_memory) == (MAX_AUTO_WORKERS, False) and "capped at 16" in capped.how
    assert resolve_loader("auto", "auto", 2, "cpu", world_size=1, shards=3).workers == 3  # a worker per shard
    assert resolve_loader("auto", "auto", 2, "cpu", world_size=2, shards=3).workers == 1
    explicit = resolve_loader(0, True, 4, "cpu", world_size=1)
    assert (explicit.workers, explicit.pin_memory, explicit.prefetch_factor) == (0, True, None)  # no workers: no prefetch


def test_plan_resolves_auto_workers_into_the_argv_and_summary(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    write_shards(tmp_path / "d", "A", [4, 4, 4], (1, 1, 1), "x")
    urls = str(tmp_path / "d" / "{000000..000002}.tar")
    data = {"sources": [{"name": "a", "urls": urls}], "seed": 0}
    plan = build_plan(parse_config(tiny_config(tmp_path / "runs", [], data=data)), world_size=1)
    argv = plan.argv
    assert argv[argv.index("--workers") + 1] == "5"
    assert plan.summary()["loader"] == {"workers": 5, "pin_memory": False, "prefetch_factor": 4,
                                        "how": "auto: 6 cores / 1 process(es) on this node - 1"}
    assert plan.epochs.steps_per_epoch == 5  # OpenCLIP rounds an interval to whole batches per worker (2 -> 5)
    not_resampled = parse_config(tiny_config(tmp_path / "runs", [], data={**data, "resampled": False}))
    assert build_plan(not_resampled, world_size=1).loader.workers == 3  # never more workers than shards
    with pytest.raises(ConfigError, match="data.workers"):
        parse_config(tiny_config(tmp_path / "runs", [], data={**data, "workers": "many"}))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true but no accelerator")  # CPU-only here
def test_openclip_webloader_gets_pin_memory_and_prefetch_factor(tmp_path):
    """OpenCLIP's own get_wds_dataset, built inside the patch: its DataLoader has our options; outside, its own."""
    import open_clip
    import open_clip_train.data as openclip_data
    import webdataset
    from open_clip_train.params import parse_args

    from biomedica.train.compat import openclip_tar_reader_fixed
    from biomedica.train.run import register_models

    write_shards(tmp_path / "d", "A", [8, 8], (10, 200, 10), "a green square")
    data = {"sources": [{"name": "a", "urls": str(tmp_path / "d" / "{000000..000001}.tar")}], "workers": 1,
            "pin_memory": True, "prefetch_factor": 3, "seed": 0}
    config = parse_config(tiny_config(tmp_path / "runs", [], data=data, optim={"batch_size": 4}))
    register_models(config)
    plan = build_plan(config, world_size=1)
    args = parse_args(plan.argv)
    args.world_size, args.rank = 1, 0
    _, preprocess, _ = open_clip.create_model_and_transforms("biomedica-tiny", pretrained=None)
    tokenizer = open_clip.get_tokenizer("biomedica-tiny")

    with openclip_tar_reader_fixed(), openclip_loader_options(plan.loader):
        loader = openclip_data.get_wds_dataset(args, preprocess, is_train=True, epoch=0, tokenizer=tokenizer).dataloader
        images, texts = next(iter(loader))  # the options are ones a real DataLoader accepts and runs with
    torch_loader = loader.pipeline[0]
    assert (torch_loader.num_workers, torch_loader.pin_memory, torch_loader.prefetch_factor) == (1, True, 3)
    assert images.shape[0] == 4 and texts.shape[0] == 4
    assert openclip_data.wds is webdataset  # restored
    stock = openclip_data.get_wds_dataset(args, preprocess, is_train=True, epoch=0, tokenizer=tokenizer).dataloader
    assert (stock.pipeline[0].pin_memory, stock.pipeline[0].prefetch_factor) == (False, 2)  # OpenCLIP's / PyTorch's


def test_a_resume_on_a_machine_with_other_cores_is_noted(tmp_path, monkeypatch):
    """`auto` resolves per machine; a changed count changes later shard draws, so the plan says so and how to keep them."""
    import json

    from biomedica.train.run import _write_plan

    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    write_shards(tmp_path / "d", "A", [4], (1, 1, 1), "x")
    config = parse_config(tiny_config(tmp_path / "runs", [], data={"sources": [{"name": "a", "urls": str(tmp_path / "d" / "000000.tar")}]}))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)))
    _write_plan(config, build_plan(config))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(3)))
    plan = build_plan(config)
    _write_plan(config, plan)
    assert any("resolves to 2 here, 5 when this run started" in n and "data.workers: 5" in n for n in plan.notes)
    assert json.loads((config.run_dir / "plan.json").read_text())["plan"]["loader"]["workers"] == 5  # the first kept
    assert json.loads((config.run_dir / "plan-1.json").read_text())["plan"]["loader"]["workers"] == 2
