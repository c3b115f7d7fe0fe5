"""The ingest JATS parser reads back from the demo corpus exactly what the generator intended."""

from __future__ import annotations

import pytest

from biomedica.testing.corpus.corpus import DemoCorpusConfig, DemoCorpusInfo, write_demo_corpus

jats = pytest.importorskip("biomedica.ingest.jats")
if not hasattr(jats, "parse_articles"):
    pytest.skip("biomedica.ingest.jats.parse_articles is not written yet", allow_module_level=True)


@pytest.fixture(scope="module")
def info(tmp_path_factory) -> DemoCorpusInfo:
    return write_demo_corpus(tmp_path_factory.mktemp("demo-parsed") / "corpus", DemoCorpusConfig(n_articles=12))


def _norm(text: str | None) -> str:
    return " ".join((text or "").split())


def _parse(info: DemoCorpusInfo, nxml_file: str):
    path = info.out_dir / nxml_file
    result = jats.parse_articles(path.read_bytes(), str(path))
    assert list(result.errors) == [], [e.message for e in result.errors]
    assert len(result.articles) == 1
    return result.articles[0]


def test_article_metadata_is_read_back(info):
    for demo in info.articles:
        parsed = _parse(info, demo.nxml_file)
        article = parsed.article
        assert (article.pmcid, article.pmid, article.doi) == (demo.pmcid, demo.pmid, demo.doi)
        assert article.article_id == demo.pmcid
        assert article.title == demo.title
        assert article.license == demo.license
        assert article.license_group == demo.license_group
        assert article.n_graphics == len(demo.graphics)


def test_figures_captions_and_mentions_are_read_back(info):
    for demo in info.articles:
        parsed = _parse(info, demo.nxml_file)
        truth = [(figure, graphic) for figure in demo.figures for graphic in figure.graphics]
        assert len(parsed.figures) == len(truth), demo.pmcid
        keys = [record.key for record in parsed.figures]
        assert all(key.startswith(f"{demo.pmcid}_") and len(key.rsplit("_", 1)[1]) == 3 for key in keys)
        positions = [int(key.rsplit("_", 1)[1]) for key in keys]
        assert positions == list(range(positions[0], positions[0] + len(keys)))  # document order, no gaps
        for record, (figure, graphic) in zip(parsed.figures, truth):
            where = f"{demo.pmcid} {figure.fig_id}"
            assert record.fig_id == figure.fig_id, where
            assert record.fig_label == figure.label, where
            assert record.graphic_href == graphic.href, where
            assert record.caption_title == figure.caption_title.rstrip(".") or record.caption_title == figure.caption_title
            assert figure.caption_text in _norm(record.caption), where
            assert len(record.mentions) == figure.n_mentions, where
            assert all(figure.label in _norm(mention) for mention in record.mentions), where  # each cites it by label
            assert record.license_group == figure.license_group, where
            assert record.figure_license == figure.figure_license, where
