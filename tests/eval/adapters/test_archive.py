"""Biomedica archive adapter: held-out retrieval split by article, read from shard Parquet + tar."""

from __future__ import annotations

import pytest

from biomedica.eval.adapters import DatasetInvalid, DatasetMissing, load_dataset
from biomedica.eval.adapters.archive import is_held_out


def _write_archive(root, skimage_fixtures):
    from biomedica.archive import UnitWriter, finalize_archive
    from biomedica.records import FigureRecord

    images = [skimage_fixtures / n for n in ("cell.png", "ihc.png", "microaneurysms.png", "phantom.png")]
    with UnitWriter(root, 0) as writer:
        for article in range(6):
            pmcid = f"PMC{1000 + article}"
            for figure in range(2):
                key = f"{pmcid}_{figure:03d}"
                record = FigureRecord(
                    key=key, pmcid=pmcid, version=1, pmid=None, doi=None, fig_id=f"f{figure}", fig_label="Figure",
                    fig_type=None, caption_title=f"Title {key}", caption=f"Caption of figure {figure} in {pmcid}.",
                    mentions=[f"As figure {figure} of {pmcid} shows."], graphic_href=None, image_name=None,
                    image_format="png", width=None, height=None, sha256=None, phash=None, license="CC BY 4.0",
                    license_group="commercial", figure_license=None, article_title="t", journal="j",
                    pub_date="2020-01-01", year=2020, article_type="research-article", keywords=[], subjects=[],
                )
                writer.add_sample(record, images[(article + figure) % 4].read_bytes(), "png")
        writer.commit()
    finalize_archive(root, {"unit_size": 6}, {"reader": "test"})


def test_held_out_split_keeps_articles_together_and_reads_images(tmp_path, skimage_fixtures):
    pytest.importorskip("biomedica.archive")
    root = tmp_path / "archive"
    _write_archive(root, skimage_fixtures)
    options = {"split": "test", "test_fraction": 0.5, "caption_fields": ["caption", "mentions"]}
    test = load_dataset("biomedica_archive", root, options)
    train = load_dataset("biomedica_archive", root, {**options, "split": "train"})
    held_out = {f"PMC{1000 + a}" for a in range(6) if is_held_out(f"PMC{1000 + a}", 0.5)}
    assert set(test.groups) == held_out
    assert not set(test.groups) & set(train.groups)
    assert len(test.images) + len(train.images) == 12
    assert test.captions[0] == [f"Caption of figure 0 in {test.groups[0]}.", f"As figure 0 of {test.groups[0]} shows."]
    assert test.images[0].load().mode == "RGB"


def test_archive_errors(tmp_path, skimage_fixtures):
    pytest.importorskip("biomedica.archive")
    with pytest.raises(DatasetMissing, match="not a biomedica archive"):
        load_dataset("archive", tmp_path, {})
    root = tmp_path / "archive"
    _write_archive(root, skimage_fixtures)
    with pytest.raises(DatasetInvalid, match="raise test_fraction"):
        load_dataset("archive", root, {"test_fraction": 0.0})


def test_is_held_out_is_stable_and_near_the_fraction():
    ids = [f"PMC{n}" for n in range(2000)]
    share = sum(is_held_out(i, 0.1) for i in ids) / len(ids)
    assert 0.08 < share < 0.12
    assert [is_held_out(i, 0.1) for i in ids[:50]] == [is_held_out(i, 0.1) for i in ids[:50]]
    assert is_held_out("PMC1", 1.0) and not is_held_out("PMC1", 0.0)
