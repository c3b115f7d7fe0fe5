"""The held-out eval split is one rule: articles eval tests on never reach a select or train subset."""

import pytest

from biomedica.archive import UnitWriter, finalize_archive, read_shard_index
from biomedica.archive.keys import article_of
from biomedica.archive.split import DEFAULT_HELD_OUT_FRACTION, HeldOutSplit, is_held_out

from .conftest import FIGURES, make_figure

IMAGE = FIGURES / "PMC10118017" / "fpls-14-1154535-g001.jpg"


def _articles(held: int, kept: int) -> list[str]:
    """PMCIDs of which the first `held` fall in the default held-out split and the rest do not."""
    ids = [f"PMC{n}" for n in range(4000, 9000)]
    inside = [i for i in ids if is_held_out(i, DEFAULT_HELD_OUT_FRACTION)]
    outside = [i for i in ids if not is_held_out(i, DEFAULT_HELD_OUT_FRACTION)]
    return inside[:held] + outside[:kept]


@pytest.fixture
def split_archive(tmp_path):
    root = tmp_path / "archive"
    with UnitWriter(root, 0) as writer:
        for number, pmcid in enumerate(_articles(held=3, kept=9)):
            for figure in range(2):
                group = ("commercial", "noncommercial")[number % 2]
                record = make_figure(f"{pmcid}_{figure:03d}", pmcid=pmcid, license_group=group,
                                     caption=f"Figure {figure} of article {pmcid}, a maize kernel.")
                writer.add_sample(record, IMAGE.read_bytes(), "jpg")
        writer.commit()
    finalize_archive(root, {}, {})
    return root


def _eval_articles(root, fraction=DEFAULT_HELD_OUT_FRACTION) -> set[str]:
    from biomedica.eval.adapters import load_dataset

    return set(load_dataset("biomedica_archive", root, {"test_fraction": fraction}).groups)


def test_split_is_shared_by_eval_select_and_train_defaults():
    from biomedica.eval.adapters.archive import ArchiveOptions
    from biomedica.select.config import SelectConfig
    from biomedica.train.config import SourceConfig

    options = ArchiveOptions()
    split = HeldOutSplit()
    assert (options.test_fraction, options.salt) == (split.fraction, split.salt) == (0.05, "biomedica-eval-v1")
    assert SelectConfig(archive="a", out="o").held_out == split
    assert SourceConfig(name="s", archive="a").held_out_fraction == split.fraction
    with pytest.raises(ValueError, match="within"):
        HeldOutSplit(1.5)


def test_select_leaves_out_eval_articles_and_records_the_split(split_archive, tmp_path):
    from biomedica.archive.selection import read_key_manifest
    from biomedica.select import SelectConfig, run_select

    evaluated = _eval_articles(split_archive)
    assert len(evaluated) == 3
    result = run_select(SelectConfig(archive=split_archive, out=tmp_path / "sel"))
    manifest = read_key_manifest(tmp_path / "sel")
    assert {article_of(key) for _, key in manifest.rows}.isdisjoint(evaluated)
    assert (result.selected, result.held_out_excluded, result.total) == (18, 6, 24)
    assert manifest.held_out == HeldOutSplit()
    assert any("held-out eval articles excluded" in f for f in result.filters)

    everything = run_select(SelectConfig(archive=split_archive, out=tmp_path / "all", held_out_fraction=0))
    assert (everything.selected, everything.held_out_excluded) == (24, 0)
    assert read_key_manifest(tmp_path / "all").held_out == HeldOutSplit(0.0)

    wider = run_select(SelectConfig(archive=split_archive, out=tmp_path / "wide", held_out_fraction=0.5,
                                    output="shards", samples_per_shard=5))
    assert wider.selected + wider.held_out_excluded == read_shard_index(split_archive, columns=["key"]).num_rows
    import pyarrow.parquet as pq

    copied = {k for p in (tmp_path / "wide").glob("0*.parquet") for k in pq.read_table(p).column("key").to_pylist()}
    assert {article_of(k) for k in copied}.isdisjoint(_eval_articles(split_archive, 0.5))


def test_the_excluded_count_is_what_the_split_removed_after_the_other_filters(split_archive, tmp_path):
    import json

    from biomedica.select import SelectConfig, run_select

    # held-out articles 0 and 2 are commercial, 1 noncommercial; 5 of the 9 kept are noncommercial
    noncommercial = run_select(SelectConfig(archive=split_archive, out=tmp_path / "nc", license_groups=["noncommercial"]))
    assert (noncommercial.selected, noncommercial.held_out_excluded) == (10, 2)
    summary = json.loads((tmp_path / "nc" / "selection.json").read_text())
    assert summary["held_out"]["excluded_samples"] == 2
    nothing = run_select(SelectConfig(archive=split_archive, out=tmp_path / "none", license_groups=["other"]))
    assert (nothing.selected, nothing.held_out_excluded) == (0, 0)
    old = run_select(SelectConfig(archive=split_archive, out=tmp_path / "old", where="year < 2000"))
    assert (old.selected, old.held_out_excluded) == (0, 0)


def _eval_keys(root, fraction=DEFAULT_HELD_OUT_FRACTION) -> set[str]:
    from biomedica.eval.adapters import load_dataset

    return {image.name for image in load_dataset("biomedica_archive", root, {"test_fraction": fraction}).images}


def test_an_empty_pmcid_is_no_pmcid_for_select_as_for_eval(tmp_path):
    """pmcid '' falls back to the key's article (archive.keys.sample_article) in select as in eval."""
    from biomedica.archive.selection import read_key_manifest
    from biomedica.select import SelectConfig, run_select

    root = tmp_path / "archive"
    with UnitWriter(root, 0) as writer:
        for article in _articles(held=2, kept=3):
            for figure in range(2):
                record = make_figure(f"{article}_{figure:03d}", pmcid="", caption=f"Figure {figure} of {article}.")
                writer.add_sample(record, IMAGE.read_bytes(), "jpg")
        writer.commit()
    finalize_archive(root, {}, {})
    evaluated = _eval_keys(root)
    assert {article_of(k) for k in evaluated} == set(_articles(held=2, kept=0))
    result = run_select(SelectConfig(archive=root, out=tmp_path / "sel"))
    selected = {key for _, key in read_key_manifest(tmp_path / "sel").rows}
    assert selected.isdisjoint(evaluated) and (result.selected, result.held_out_excluded) == (6, 4)


def test_every_figure_of_a_doi_keyed_article_falls_on_one_side(tmp_path):
    """Articles without a PMCID are keyed by DOI: eval groups (and splits) them by the key's article."""
    from biomedica.eval.adapters import load_dataset

    root = tmp_path / "archive"
    articles = [f"DOI-10-7554-eLife-{n:05d}" for n in range(8)]
    with UnitWriter(root, 0) as writer:
        for article in articles:
            for figure in range(3):
                record = make_figure(f"{article}_{figure:03d}", pmcid=None, caption=f"Figure {figure} of {article}.")
                writer.add_sample(record, IMAGE.read_bytes(), "jpg")
        writer.commit()
    finalize_archive(root, {}, {})
    sides = {}
    for split in ("test", "train"):
        dataset = load_dataset("biomedica_archive", root, {"split": split, "test_fraction": 0.5})
        assert [article_of(image.name) for image in dataset.images] == dataset.groups
        for group in dataset.groups:
            sides.setdefault(group, set()).add(split)
    assert set(sides) == set(articles) and all(len(side) == 1 for side in sides.values())
    assert {next(iter(side)) for side in sides.values()} == {"test", "train"}  # both sides are used
    assert {g for g, side in sides.items() if side == {"test"}} == {a for a in articles if is_held_out(a, 0.5)}


def test_select_command_says_how_many_were_excluded(split_archive, tmp_path):
    from typer.testing import CliRunner

    from biomedica.cli import app

    result = CliRunner().invoke(app, ["select", str(split_archive), "--out", str(tmp_path / "sel")])
    assert result.exit_code == 0, result.output
    assert "held-out eval samples excluded" in result.output and "18 of 24" in result.output
    result = CliRunner().invoke(app, ["select", str(split_archive), "--out", str(tmp_path / "all"),
                                      "--held-out-fraction", "0"])
    assert result.exit_code == 0 and "24 of 24" in result.output
    result = CliRunner().invoke(app, ["select", str(split_archive), "--out", str(tmp_path / "other"),
                                      "--license-group", "other"])
    assert result.exit_code == 0, result.output
    assert "0 of 24" in result.output
    rows = [line.replace("│", " ").split() for line in result.output.splitlines() if "held-out eval samples" in line]
    assert [row[-1] for row in rows] == ["0"]


def test_train_archive_source_leaves_out_eval_articles(split_archive, serve):
    from biomedica.train.config import SourceConfig
    from biomedica.train.sources import resolve_source

    evaluated = _eval_articles(split_archive)
    server = serve(split_archive)
    for root in (str(split_archive), server.url):
        resolved = resolve_source(SourceConfig(name="a", archive=root))
        keys = {k for s in resolved.shards for k in s.keys}
        assert {article_of(k) for k in keys}.isdisjoint(evaluated)
        assert len(keys) == resolved.samples == 18 and resolved.held_out == HeldOutSplit()
        assert all(s.shard_samples == 12 for s in resolved.shards)
        assert any("6 sample(s) of held-out eval articles left out" in n for n in resolved.notes)
    assert server.shard_requests() == []  # the shard indexes tell which keys to keep

    everything = resolve_source(SourceConfig(name="a", archive=str(split_archive), held_out_fraction=0))
    assert everything.samples == 24 and all(s.keys is None for s in everything.shards)


def test_train_selection_source_carries_the_recorded_split(split_archive, tmp_path):
    from biomedica.select import SelectConfig, run_select
    from biomedica.train.config import SourceConfig
    from biomedica.train.sources import resolve_source

    run_select(SelectConfig(archive=split_archive, out=tmp_path / "sel", held_out_fraction=0.3))
    resolved = resolve_source(SourceConfig(name="s", selection=str(tmp_path / "sel" / "manifest.parquet")))
    keys = {k for s in resolved.shards for k in s.keys}
    assert keys and {article_of(k) for k in keys}.isdisjoint(_eval_articles(split_archive, 0.3))
    assert resolved.held_out == HeldOutSplit(0.3) and resolved.notes == []

    (tmp_path / "hand.jsonl").write_text('{"shard": "archive/commercial/000000.tar", "key": "PMC1_000"}\n')
    hand = resolve_source(SourceConfig(name="h", selection=str(tmp_path / "hand.jsonl")))
    assert hand.held_out is None and "records no held-out split" in hand.notes[0]
