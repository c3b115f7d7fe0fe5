"""End-to-end training with OpenCLIP's own loop on a tiny random-init model (CPU)."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import yaml

from biomedica.cli.train import make_eval_hook
from biomedica.train.config import parse_config
from biomedica.train.monitor import read_metrics
from biomedica.train.run import list_checkpoints, run_training

from .conftest import tiny_config, write_shards

pytestmark = pytest.mark.slow


def test_tiny_model_loss_falls_on_shards_streamed_over_http(train_demo_archive, serve, tmp_path, monkeypatch):
    server = serve(train_demo_archive, token="hub-token")
    monkeypatch.setenv("DEMO_HUB_TOKEN", "hub-token")
    source = {"name": "demo", "archive": server.url, "groups": ["commercial", "noncommercial"], "auth_env": "DEMO_HUB_TOKEN"}
    config = parse_config(tiny_config(
        tmp_path / "runs", [source],
        optim={"lr": 1e-3, "warmup": 3, "batch_size": 16, "weight_decay": 0.1},
        schedule={"total_steps": 12, "checkpoint_every_steps": 6},
        logging={"report_to": ["tensorboard"], "log_every_steps": 4},
    ))
    result = run_training(config)
    rows = read_metrics(result.run_dir)
    assert [r["step"] for r in rows] == list(range(12))
    first, last = np.mean([r["loss"] for r in rows[:3]]), np.mean([r["loss"] for r in rows[-3:]])
    assert last < first - 0.5, (first, last)
    assert rows[0]["lr"] == pytest.approx(1e-3 / 3)  # warm-up step 1 of 3
    assert all(0.0 <= r["data_wait_fraction"] <= 1.0 and r["samples_per_s"] > 0 for r in rows)
    assert [p.name for p in result.checkpoints] == ["epoch_1.pt", "epoch_2.pt"]
    shard_gets = server.shard_requests()
    assert shard_gets and all(r["headers"].get("Authorization") == "Bearer hub-token" for r in shard_gets)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/lr", "train/samples_per_second", "train/data_wait_fraction",
            "train/samples_per_s_window"} <= set(events.Tags()["scalars"])


def test_resume_after_a_kill_continues_from_the_last_checkpoint(tmp_path):
    write_shards(tmp_path / "data", "A", [20, 20, 20], (200, 30, 30), "a red square")
    config = tiny_config(
        tmp_path / "runs", [{"name": "red", "urls": str(tmp_path / "data" / "{000000..000002}.tar")}],
        schedule={"total_steps": 9, "checkpoint_every_steps": 3},
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen([sys.executable, "-m", "biomedica.train", str(path)], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = tmp_path / "runs" / "tiny" / "checkpoints"
    deadline = time.time() + 240
    while not zipfile.is_zipfile(checkpoints / "epoch_1.pt") and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # kill once epoch_1.pt is complete, maybe before epoch_latest.pt is written
    os.killpg(process.pid, signal.SIGKILL)  # the whole group: the trainer and its data workers
    process.wait()
    done_before = [p.name for p in list_checkpoints(tmp_path / "runs" / "tiny")]
    assert done_before and done_before != ["epoch_1.pt", "epoch_2.pt", "epoch_3.pt"], done_before
    rows_before = len(read_metrics(tmp_path / "runs" / "tiny"))

    result = run_training(parse_config(config))
    assert [p.name for p in result.checkpoints] == ["epoch_1.pt", "epoch_2.pt", "epoch_3.pt"]
    resumed = read_metrics(result.run_dir)[rows_before:]
    assert resumed[0]["step"] == 3 * len(done_before)
    assert [r["step"] for r in resumed] == list(range(3 * len(done_before), 9))
    log = (result.run_dir / "out.log").read_text()
    assert f"=> resuming checkpoint '{checkpoints / 'epoch_latest.pt'}' (epoch {len(done_before)})" in log


def _retrieval(model, preprocess, tokenizer, images, captions):
    import torch

    with torch.no_grad():
        image_features = model.encode_image(torch.stack([preprocess(i) for i in images]), normalize=True)
        text_features = model.encode_text(tokenizer(captions), normalize=True)
    similarity = (image_features @ text_features.T).numpy()
    ranks = [int((similarity[i] > similarity[i, i]).sum()) for i in range(len(images))]  # image -> its caption
    ranks_t = [int((similarity[:, i] > similarity[i, i]).sum()) for i in range(len(images))]  # caption -> its image
    return {
        "n": len(images),
        "i2t_R@1": float(np.mean(np.array(ranks) < 1)), "i2t_R@5": float(np.mean(np.array(ranks) < 5)),
        "t2i_R@1": float(np.mean(np.array(ranks_t) < 1)), "t2i_R@5": float(np.mean(np.array(ranks_t) < 5)),
        "mean_rank": float(np.mean(ranks + ranks_t)) + 1,
    }


def test_demo_held_out_retrieval_beats_chance(train_demo_archive, tmp_path):
    """Train on the articles not held out (a key manifest), evaluate on the held-out articles."""
    import io

    import open_clip
    from PIL import Image

    from biomedica.archive.reader import read_member, read_shard_index
    from biomedica.eval.adapters.archive import is_held_out

    index = read_shard_index(train_demo_archive).to_pylist()
    held = [r for r in index if is_held_out(r["pmcid"], 0.3)]
    train = [r for r in index if not is_held_out(r["pmcid"], 0.3)]
    assert held and train and not {r["pmcid"] for r in held} & {r["pmcid"] for r in train}
    selection = tmp_path / "train-keys.jsonl"
    selection.write_text("".join(json.dumps({"shard": f"{r['group']}/{r['shard']}", "key": r["key"]}) + "\n" for r in train))
    (tmp_path / "archive").symlink_to(train_demo_archive)  # relative shard paths resolve against the manifest's folder
    task = tmp_path / "demo-heldout.yaml"
    task.write_text(yaml.safe_dump({
        "name": "demo-heldout", "domain": "demo", "kind": "retrieval",
        "dataset": {"adapter": "biomedica_archive", "root": str(train_demo_archive),
                    "options": {"split": "test", "test_fraction": 0.3}},
    }))
    selection_in_archive = tmp_path / "archive-sel.jsonl"
    selection_in_archive.write_text(selection.read_text().replace('"shard": "', '"shard": "archive/'))
    config = parse_config(tiny_config(
        tmp_path / "runs", [{"name": "train-articles", "selection": str(selection_in_archive)}],
        optim={"lr": 2e-3, "warmup": 5, "batch_size": 16, "weight_decay": 0.1},
        schedule={"total_steps": 40, "checkpoint_every_steps": 20},
        eval={"tasks": [str(task)], "every_checkpoints": 1, "n_boot": 20},
    ))
    result = run_training(config, eval_hook=make_eval_hook(config))

    images = [Image.open(io.BytesIO(read_member(train_demo_archive, r["group"], r["shard"], r["image_offset"], r["image_size"])))
              for r in held]
    captions = [r["caption"] for r in held]
    tokenizer = open_clip.get_tokenizer("biomedica-tiny")
    trained, _, preprocess = open_clip.create_model_and_transforms(
        "biomedica-tiny", pretrained=str(result.latest_checkpoint))
    untrained, _, _ = open_clip.create_model_and_transforms("biomedica-tiny", pretrained=None)
    scores = _retrieval(trained.eval(), preprocess, tokenizer, images, captions)
    baseline = _retrieval(untrained.eval(), preprocess, tokenizer, images, captions)
    chance_mean_rank = (len(held) + 1) / 2
    print(f"\nheld-out retrieval on {len(held)} figures of {len({r['pmcid'] for r in held})} articles: "
          f"trained {scores}, random init {baseline}, chance R@1 {1 / len(held):.3f}, "
          f"R@5 {min(1.0, 5 / len(held)):.3f}, mean rank {chance_mean_rank:.1f}")
    assert scores["mean_rank"] < 0.8 * chance_mean_rank
    assert scores["t2i_R@5"] > 1.5 * 5 / len(held)
    eval_rows = [json.loads(line) for line in (result.run_dir / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in eval_rows] == [20, 40]
    assert eval_rows[-1]["scores"]["demo-heldout"] is not None
