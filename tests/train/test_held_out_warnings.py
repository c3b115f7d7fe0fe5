"""Training sources that may hold the articles evaluation holds out are warned about, with the count or the reason.

Real shards: the demo archive's own shards (raw `urls`), `biomedica select --output shards` outputs
of it (with and without the held-out split), key manifests, and a copy of shards without indexes.
The demo archive's 12 articles hold none at eval's 5% split, so counts are checked at a 30% split.
"""

import json
import shutil

import pyarrow.parquet as pq
import pytest

from biomedica.archive.split import HeldOutSplit
from biomedica.train.config import SourceConfig, parse_config
from biomedica.train.openclip_args import build_plan
from biomedica.train.sources import resolve_source

from .conftest import tiny_config

SPLIT = 0.3


@pytest.fixture(scope="module")
def selections(demo_archive, tmp_path_factory):
    """select outputs of the demo archive: shards with eval's split left out (default) and with none (fraction 0)."""
    from biomedica.select.config import SelectConfig
    from biomedica.select.run import run_select

    base = tmp_path_factory.mktemp("train-held-out")
    for name, fraction in (("default", None), ("included", 0.0)):
        extra = {} if fraction is None else {"held_out_fraction": fraction}
        run_select(SelectConfig(archive=demo_archive, out=base / name, output="shards", samples_per_shard=8, **extra))
        run_select(SelectConfig(archive=demo_archive, out=base / f"{name}-manifest", **extra))
    return base


def _held(index_paths, split: HeldOutSplit) -> tuple[int, int]:
    """(samples of held-out articles, samples) over shard indexes, counted here independently."""
    held = total = 0
    for path in index_paths:
        table = pq.read_table(path, columns=["key", "pmcid"]).to_pylist()
        total += len(table)
        held += sum(split.holds(row["key"], row["pmcid"]) for row in table)
    return held, total


def _urls(folder, count=None) -> str:
    count = count if count is not None else len(list(folder.glob("0*.tar")))
    return str(folder / f"{{000000..{count - 1:06d}}}.tar")


def test_raw_archive_shard_urls_are_counted_from_their_indexes(demo_archive):
    groups = ["commercial", "noncommercial", "other"]
    urls = [_urls(demo_archive / g, len(list((demo_archive / g).glob("0*.tar")))) for g in groups]
    indexes = sorted(p for g in groups for p in (demo_archive / g).glob("0*.parquet"))
    clean = resolve_source(SourceConfig(name="raw", urls=urls))  # eval's split: none of the 12 articles
    assert clean.warnings == []
    checked = _held(indexes, HeldOutSplit())[1]
    assert clean.notes == [f"source raw: no held-out eval article in {checked} sample(s) of {len(indexes)} of {len(indexes)} shard(s) checked"]
    held, total = _held(indexes, HeldOutSplit(SPLIT))
    assert 0 < held < total
    resolved = resolve_source(SourceConfig(name="raw", urls=urls, held_out_fraction=SPLIT))
    [warning] = resolved.warnings
    assert warning.startswith(f"source raw: {held} of {total} sample(s) in {len(indexes)} of {len(indexes)} shard(s) "
                              f"belong to held-out eval articles (fraction {SPLIT:g}); ")
    assert "biomedica select --exclude-held-out" in warning and "`archive` source" in warning
    assert resolved.samples == total  # a warning, not a filter: urls stream what they name


def test_shards_without_indexes_cannot_be_checked(demo_archive, tmp_path):
    folder = tmp_path / "bare"
    folder.mkdir()
    for tar in (demo_archive / "commercial").glob("0*.tar"):
        shutil.copy(tar, folder / tar.name)
    shutil.copy(demo_archive / "commercial" / "sizes.json", folder / "sizes.json")
    resolved = resolve_source(SourceConfig(name="bare", urls=_urls(folder), held_out_fraction=SPLIT))
    assert resolved.warnings == []
    [note] = resolved.notes
    assert note == ("source bare: no selection.json and no shard index (NNNNNN.parquet) beside its shards, "
                    "so whether it holds held-out eval articles cannot be checked")


def test_select_output_records_its_split_in_selection_json(selections, serve):
    included, default = selections / "included", selections / "default"
    assert json.loads((included / "selection.json").read_text())["held_out"]["fraction"] == 0
    [warning] = resolve_source(SourceConfig(name="inc", urls=_urls(included))).warnings
    assert warning.startswith(f"source inc: the selection in {included} was built with --include-held-out "
                              "(held-out fraction 0): it holds the eval articles; ")
    server = serve(selections)  # the same record read over HTTP
    [remote] = resolve_source(SourceConfig(name="inc", urls=server.url + "/included/" + _urls(included).rsplit("/", 1)[1])).warnings
    assert "--include-held-out" in remote and server.shard_requests() == []
    fine = resolve_source(SourceConfig(name="sel", urls=_urls(default)))
    assert fine.warnings == []
    assert fine.notes == [f"source sel: {default} is a selection that left out the held-out eval articles (fraction 0.05)"]
    [narrower] = resolve_source(SourceConfig(name="sel", urls=_urls(default), held_out_fraction=SPLIT)).warnings
    assert "left out held-out split (fraction 0.05, salt 'biomedica-eval-v1'), not the one evaluation holds out " \
           f"(fraction {SPLIT:g}" in narrower


def test_select_output_without_selection_json_falls_back_to_its_indexes(selections, tmp_path):
    copy = shutil.copytree(selections / "included", tmp_path / "copied")
    (copy / "selection.json").unlink()
    indexes = sorted(copy.glob("0*.parquet"))
    held, total = _held(indexes, HeldOutSplit(SPLIT))
    [warning] = resolve_source(SourceConfig(name="c", urls=_urls(copy, len(indexes)), held_out_fraction=SPLIT)).warnings
    assert warning.startswith(f"source c: {held} of {total} sample(s) in {len(indexes)} of {len(indexes)} shard(s)")


def test_archive_source_with_fraction_0_and_key_manifests(demo_archive, selections, tmp_path):
    [warning] = resolve_source(SourceConfig(name="a", archive=str(demo_archive), held_out_fraction=0)).warnings
    assert warning.startswith("source a: held_out_fraction 0 trains on the articles evaluation holds out")
    assert resolve_source(SourceConfig(name="a", archive=str(demo_archive))).warnings == []
    manifest = selections / "included-manifest" / "manifest.parquet"
    [recorded] = resolve_source(SourceConfig(name="m", selection=str(manifest))).warnings
    assert recorded.startswith("source m: its key manifest was built with --include-held-out")
    assert resolve_source(SourceConfig(name="m", selection=str(selections / "default-manifest" / "manifest.parquet"))).warnings == []
    rows = pq.read_table(manifest).to_pylist()  # the same keys as JSON Lines: no split recorded, keys are counted
    jsonl = tmp_path / "keys.jsonl"
    jsonl.write_text("".join(json.dumps({"shard": r["url"], "key": r["key"]}) + "\n" for r in rows))
    held = sum(HeldOutSplit(SPLIT).holds(r["key"]) for r in rows)
    assert held > 0
    [counted] = resolve_source(SourceConfig(name="j", selection=str(jsonl), held_out_fraction=SPLIT)).warnings
    assert counted.startswith(f"source j: the key manifest records no held-out split and {held} of its {len(rows)} sample(s)")
    assert resolve_source(SourceConfig(name="j", selection=str(jsonl))).notes[0].endswith(
        f"none of its {len(rows)} sample(s) belongs to a held-out eval article")


def test_validation_sources_are_not_warned_about(selections):
    assert resolve_source(SourceConfig(name="v", urls=_urls(selections / "included")), role="val").warnings == []


@pytest.mark.slow
def test_training_on_included_held_out_shards_warns_in_the_summary_and_plan_file(selections, tmp_path):
    """A real (tiny, 1-step) run: the warning is printed, kept in TrainResult.plan and in the run's plan.json."""
    from biomedica.train.run import run_training

    source = {"name": "inc", "urls": _urls(selections / "included")}
    config = parse_config(tiny_config(tmp_path / "runs", [source], schedule={"total_steps": 1, "checkpoint_every_steps": 1}))
    printed = []
    result = run_training(config, print_fn=printed.append)
    [warning] = result.plan.warnings
    assert f"warning: {warning}" in printed and any(line.startswith("loader: 1 worker(s)") for line in printed)
    record = json.loads((config.run_dir / "plan.json").read_text())
    assert record["plan"]["warnings"] == [warning]
    assert record["plan"]["loader"]["workers"] == 1 and record["plan"]["loader"]["pin_memory"] is False
    assert result.latest_checkpoint is not None
    assert build_plan(config).summary()["warnings"] == [warning]  # `biomedica train plan` shows it too


def test_train_plan_command_shows_the_warning(selections, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from biomedica.cli.train import app

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs", [{"name": "inc", "urls": _urls(selections / "included")}])))
    result = CliRunner().invoke(app, ["plan", str(path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    [warning] = summary["warnings"]
    assert "--include-held-out" in warning and summary["loader"]["workers"] == 1
    assert "warning: source inc:" in result.stderr
