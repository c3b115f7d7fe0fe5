"""Shard discovery in one place: readers and eval adapters see complete units only; one key rule."""

import io
import json
import tarfile

import pytest

from biomedica.archive import finalize_archive, iter_shard, shard_paths
from biomedica.archive.keys import sample_article

from .conftest import FIGURES, make_figure


def _interrupted_archive(root, write_unit):
    """Unit 0 complete; unit 1 wrote its shards but lost its marker (an interrupted build)."""
    write_unit(root, 0)
    write_unit(root, 1)
    finalize_archive(root, {}, {})
    (root / "_units" / "000001.json").unlink()
    return root


def test_readers_and_eval_adapters_skip_an_unfinished_unit(tmp_path, write_unit, unit_inputs):
    from biomedica.eval.adapters import load_dataset

    root = _interrupted_archive(tmp_path / "archive", write_unit)
    assert (root / "commercial" / "000001.tar").is_file()  # files there, but no marker
    assert [(g, p.name) for g, p in shard_paths(root)] == [("commercial", "000000.tar"), ("other", "000000.tar")]
    unit0 = sorted(s.record.key for s in unit_inputs(0).samples)

    archive = load_dataset("biomedica_archive", root, {"split": "all", "min_caption_chars": 1})
    captioned = sorted(s.record.key for s in unit_inputs(0).samples if s.record.caption)
    assert sorted(image.name for image in archive.images) == captioned  # none of unit 1's

    options = {"label_extension": None, "caption_extension": "txt"}
    every = load_dataset("webdataset", root, options)  # default pattern: every complete shard
    assert sorted(image.name.split(":")[1] for image in every.images) == unit0
    assert every.notes == []
    named = load_dataset("webdataset", root, {**options, "shards": "commercial/*.tar"})
    assert len(named.images) == 3 and named.notes == ["1 shard(s) of unfinished units skipped"]


def test_a_copy_without_units_is_read_by_its_manifest(tmp_path, write_unit, unit_inputs):
    """A published copy (manifest.json + group folders, no _units/) is evaluated like the archive it came from."""
    import shutil

    from biomedica.eval.adapters import load_dataset

    root = tmp_path / "archive"
    write_unit(root, 0)
    write_unit(root, 1)
    finalize_archive(root, {}, {})
    copy = tmp_path / "published"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("_units"))
    assert not (copy / "_units").exists()
    assert [(g, p.relative_to(copy)) for g, p in shard_paths(copy)] == [
        (g, p.relative_to(root)) for g, p in shard_paths(root)]
    assert shard_paths(copy, "commercial") == [(g, copy / p.relative_to(root)) for g, p in shard_paths(root, "commercial")]

    options = {"split": "all", "min_caption_chars": 1}
    assert len(load_dataset("biomedica_archive", copy, options).images) == len(
        load_dataset("biomedica_archive", root, options).images) > 0
    wds = {"label_extension": None, "caption_extension": "txt"}
    for pattern in ("*.tar", "commercial/*.tar"):
        published = load_dataset("webdataset", copy, {**wds, "shards": pattern})
        original = load_dataset("webdataset", root, {**wds, "shards": pattern})
        assert len(published.images) == len(original.images) > 0 and published.notes == []

    (copy / "manifest.json").unlink()  # neither markers nor manifest: nothing is known complete
    assert shard_paths(copy) == []


def test_iter_shard_splits_member_names_by_the_key_rule(tmp_path):
    """A folder with a dot in its name must not cut the key (the rule of archive.keys and WebDataset)."""
    image = (FIGURES / "PMC10118017" / "fpls-14-1154535-g001.jpg").read_bytes()
    record = make_figure("PMC1_000").to_dict()
    path = tmp_path / "000000.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in (("v1.2/PMC1_000.jpg", image), ("v1.2/PMC1_000.txt", b"caption"),
                           ("v1.2/PMC1_000.json", json.dumps(record).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    samples = list(iter_shard(path))
    assert len(samples) == 1 and samples[0][0]["key"] == "PMC1_000" and samples[0][1] == image


@pytest.mark.parametrize(("key", "pmcid", "article"), [
    ("PMC1_004", "PMC1", "PMC1"),
    ("PMC1_004_p2", None, "PMC1"),  # a subfigure belongs to its article, not to its figure
    ("DOI-10-7554-eLife-00353_000", None, "DOI-10-7554-eLife-00353"),
])
def test_sample_article_is_the_one_article_rule(key, pmcid, article):
    assert sample_article(key, pmcid) == article


def test_figure_keys_are_made_and_read_back_by_one_rule():
    from biomedica.archive.keys import KeyParts, figure_key, parse_key

    assert figure_key("PMC123", 4) == "PMC123_004" and figure_key("PMC1", 1234) == "PMC1_1234"
    assert parse_key(figure_key("DOI-10-7554-eLife-00353", 0)) == KeyParts("DOI-10-7554-eLife-00353", 0, None)
    assert parse_key("PMC123_004_p2") == KeyParts("PMC123", 4, 2)  # subfigure keys are read back
    assert parse_key("PMC123") is None
    with pytest.raises(ValueError, match=">= 0"):
        figure_key("PMC1", -1)
