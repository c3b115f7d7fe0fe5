"""The demo corpus generator: deterministic, well-formed, complete, and true to what it reports."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxml import etree
from PIL import Image

from biomedica.ingest.resolve_images import resolve_graphic
from biomedica.testing.corpus.corpus import DemoCorpusConfig, DemoCorpusInfo, write_demo_corpus

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
ALL_MODALITIES = {
    "ct", "mri", "xray", "ultrasound", "nuclear_medicine", "fundus", "immunohistochemistry", "microscopy", "chart",
    "diagram",
}
PILLOW_FORMAT = {"jpg": "JPEG", "png": "PNG", "tif": "TIFF", "gif": "GIF"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[DemoCorpusInfo, float]:
    """The default corpus (24 articles, seed 0) and how long writing it took."""
    out = tmp_path_factory.mktemp("demo-default") / "corpus"
    started = time.perf_counter()
    info = write_demo_corpus(out)
    return info, time.perf_counter() - started


@pytest.fixture(scope="module")
def info(generated) -> DemoCorpusInfo:
    return generated[0]


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _parse(path: Path) -> etree._Element:
    parser = etree.XMLParser(no_network=True, load_dtd=False, resolve_entities=False)
    return etree.parse(str(path), parser).getroot()


def _norm(text: str) -> str:
    return " ".join(text.split())


def test_generation_is_deterministic_across_processes(info, tmp_path):
    # A fresh interpreter has no decoded-image cache, so this also checks the cache changes nothing.
    other = tmp_path / "again"
    script = (
        "import sys; from pathlib import Path; from biomedica.testing.corpus.corpus import write_demo_corpus; "
        "write_demo_corpus(Path(sys.argv[1]))"
    )
    subprocess.run([sys.executable, "-c", script, str(other)], check=True)
    first, second = _tree_digest(info.out_dir), _tree_digest(other)
    assert len(first) > 24 * 3
    assert first == second


def test_another_seed_gives_another_corpus_with_the_same_ids(tmp_path):
    zero = write_demo_corpus(tmp_path / "zero", DemoCorpusConfig(n_articles=3, seed=0))
    one = write_demo_corpus(tmp_path / "one", DemoCorpusConfig(n_articles=3, seed=1))
    assert [a.pmcid for a in zero.articles] == [a.pmcid for a in one.articles] == ["PMC9000001", "PMC9000002", "PMC9000003"]
    assert _tree_digest(zero.out_dir) != _tree_digest(one.out_dir)


def test_generation_is_fast(generated):
    _info, seconds = generated
    assert seconds < 10, f"writing 24 demo articles took {seconds:.1f} s (budget 5 s on a free core)"


def test_counts_of_the_default_corpus(info):
    assert info.n_articles == 24
    assert 60 <= info.n_figures <= 110
    assert info.n_graphics == sum(len(f.graphics) for a in info.articles for f in a.figures)
    assert info.n_graphics > info.n_figures  # one figure has two graphics
    assert sum(info.graphics_per_license_group.values()) == info.n_graphics
    assert sum(info.graphics_per_modality.values()) == info.n_graphics
    assert set(info.graphics_per_modality) == ALL_MODALITIES
    assert set(info.graphics_per_format) == {"jpg", "png", "tif", "gif"}
    assert info.skipped_sources == ()
    summary = str(info)
    assert summary.startswith(f"24 articles, {info.n_figures} figures, {info.n_graphics} graphics")


def test_every_nxml_is_wellformed_with_the_expected_ids(info):
    for number, article in enumerate(info.articles):
        path = info.out_dir / article.nxml_file
        assert path.parent.name == article.pmcid and path.name == f"{article.pmcid}.nxml"
        root = _parse(path)
        assert root.tag == "article"
        assert root.get("article-type") in {"research-article", "case-report", "review-article"}
        ids = {e.get("pub-id-type"): e.text for e in root.iterfind("front/article-meta/article-id")}
        assert ids["pmc"] == str(9_000_001 + number) and article.pmcid == f"PMC{ids['pmc']}"
        assert ids["pmid"] == article.pmid == str(99_000_001 + number)
        assert ids["doi"] == article.doi == f"10.5555/biomedica.demo.{number + 1}"
        assert root.findtext("front/article-meta/title-group/article-title") == article.title
        assert root.find("front/article-meta/pub-date[@pub-type='epub']/year") is not None
        assert "Generated demo data" in root.findtext("back/notes/p")
        assert any("Generated demo data" in c.text for c in root.iter(etree.Comment))
        fig_ids = [fig.get("id") for fig in root.iter("fig")]
        assert fig_ids == [figure.fig_id for figure in article.figures]
        hrefs = [g.get(XLINK_HREF) for fig in root.iter("fig") for g in fig.iter("graphic")]
        assert hrefs == [graphic.href for graphic in article.graphics]
        refs = root.findall("back/ref-list/ref")
        assert len(refs) >= 3
        assert all(p.text.startswith("991") for p in root.iterfind("back/ref-list/ref//pub-id[@pub-id-type='pmid']"))


def test_every_graphic_resolves_to_its_full_size_file(info):
    for article in info.articles:
        folder = info.out_dir / article.pmcid
        files = sorted(p.name for p in folder.iterdir())
        for graphic in article.graphics:
            name = Path(graphic.image_file).name
            # The brief's rule: the href itself, else href + extension, full-size before the .gif thumbnail.
            candidates = [graphic.href] + [graphic.href + ext for ext in (".tif", ".png", ".jpg", ".gif")]
            assert next(c for c in candidates if c in files) == name
            assert resolve_graphic(graphic.href, files) == name  # the ingest resolver agrees
            if graphic.thumbnail_file:
                assert graphic.href + ".gif" in files and name == graphic.href + ".jpg"
                with Image.open(info.out_dir / graphic.thumbnail_file) as thumb:
                    assert thumb.format == "GIF" and max(thumb.size) <= 96 < max(graphic.width, graphic.height)
    hrefs = [g.href for a in info.articles for g in a.graphics]
    assert any("." not in h for h in hrefs)  # package style: no extension at all
    assert any(h.endswith((".jpg", ".png", ".tif")) for h in hrefs)  # explicit extension
    assert any(h.split(".")[-1].startswith("g0") for h in hrefs)  # dotted stem that is not an extension
    assert sum(1 for g in (g for a in info.articles for g in a.graphics) if g.thumbnail_file) >= 10


def test_every_license_group_and_variant_appears(info):
    assert set(info.articles_per_license_group) == {"commercial", "noncommercial", "other"}
    licenses = {a.license for a in info.articles}
    assert {"CC BY 4.0", "CC0 1.0", "CC BY-SA 4.0", "CC BY-NC 4.0", "CC BY-NC-ND 4.0", "CC BY 3.0", None} <= licenses
    by_pmcid = {a.pmcid: a for a in info.articles}
    no_license = _parse(info.out_dir / by_pmcid["PMC9000003"].nxml_file)
    assert no_license.find(".//article-meta/permissions/license") is None
    reserved = _parse(info.out_dir / by_pmcid["PMC9000006"].nxml_file)
    license_ = reserved.find(".//article-meta/permissions/license")
    assert license_.get(XLINK_HREF) is None and "All rights reserved" in "".join(license_.itertext())
    ali = _parse(info.out_dir / by_pmcid["PMC9000008"].nxml_file)
    assert ali.findtext(".//{http://www.niso.org/schemas/ali/1.0/}license_ref") == "http://creativecommons.org/licenses/by/3.0/"


def test_figure_with_its_own_stricter_license(info):
    article = info.articles[3]
    assert article.license == "CC0 1.0" and article.license_group == "commercial"
    own = [f for f in article.figures if f.figure_license]
    assert len(own) == 1 and own[0].figure_license == "CC BY-NC-ND 4.0" and own[0].license_group == "noncommercial"
    assert all(f.license_group == "commercial" for f in article.figures if not f.figure_license)
    root = _parse(info.out_dir / article.nxml_file)
    fig = root.find(f".//fig[@id='{own[0].fig_id}']")
    assert fig.find("permissions/license").get(XLINK_HREF) == "https://creativecommons.org/licenses/by-nc-nd/4.0/"


def test_structural_special_cases_appear(info):
    two = [f for a in info.articles for f in a.figures if len(f.graphics) == 2]
    assert len(two) == 1 and two[0].caption_text.startswith("(A) ") and " (B) " in two[0].caption_text
    grouped = [f for f in info.articles[4].figures if f.fig_group_id]
    assert len(grouped) == 2
    root = _parse(info.out_dir / info.articles[4].nxml_file)
    assert [f.get("id") for f in root.find(".//fig-group").iterfind("fig")] == [f.fig_id for f in grouped]
    floats = _parse(info.out_dir / info.articles[6].nxml_file)
    assert len(floats.findall("floats-group/fig")) == len(info.articles[6].figures)
    assert floats.find("body//fig") is None
    multi_rid = [x for a in info.articles for x in _parse(info.out_dir / a.nxml_file).iter("xref") if " " in x.get("rid")]
    assert multi_rid and all(x.get("ref-type") == "fig" for x in multi_rid)


def test_captions_and_mentions_in_the_xml_match_the_truth(info):
    for article in info.articles:
        root = _parse(info.out_dir / article.nxml_file)
        paragraphs = [p for p in root.iter("p") if not any(a.tag in ("caption", "notes", "abstract") for a in p.iterancestors())]
        for figure in article.figures:
            fig = root.find(f".//fig[@id='{figure.fig_id}']")
            assert fig.findtext("label") == figure.label
            assert fig.findtext("caption/title") == figure.caption_title
            assert _norm("".join(fig.find("caption/p").itertext())) == figure.caption_text
            citing = [
                p for p in paragraphs
                if any(figure.fig_id in x.get("rid").split() for x in p.iter("xref") if x.get("ref-type") == "fig")
            ]
            assert len(citing) == figure.n_mentions >= 1, (article.pmcid, figure.fig_id)


def test_captions_carry_mixed_content(info):
    inline = set()
    for article in info.articles:
        for p in _parse(info.out_dir / article.nxml_file).iterfind(".//caption/p"):
            inline |= {child.tag for child in p}
    assert {"italic", "bold"} <= inline


def test_image_files_decode_and_match_the_record(info):
    modalities: dict[str, int] = {}
    for article in info.articles:
        for graphic in article.graphics:
            with Image.open(info.out_dir / graphic.image_file) as image:
                image.load()
                assert image.format == PILLOW_FORMAT[graphic.image_format]
                assert image.size == (graphic.width, graphic.height)
                assert max(image.size) <= 256 and min(image.size) >= 16
            modalities[graphic.modality] = modalities.get(graphic.modality, 0) + 1
    assert modalities == info.graphics_per_modality


def test_image_size_is_configurable(tmp_path):
    small = write_demo_corpus(tmp_path / "small", DemoCorpusConfig(n_articles=2, image_size=64))
    sizes = [(g.width, g.height) for a in small.articles for g in a.graphics]
    assert sizes and all(max(size) <= 64 for size in sizes)


def test_single_article_corpus(tmp_path):
    one = write_demo_corpus(tmp_path / "one", DemoCorpusConfig(n_articles=1))
    assert one.n_articles == 1 and one.articles[0].license == "CC BY 4.0"
    assert len(one.articles[0].figures[0].graphics) == 2  # the two-graphic figure is in the first article


@pytest.mark.parametrize("bad", [{"n_articles": 0}, {"image_size": 8}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="DemoCorpusConfig"):
        DemoCorpusConfig(**bad)


def test_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "stale.nxml").write_text("<article/>")
    with pytest.raises(FileExistsError, match="needs an empty or new folder"):
        write_demo_corpus(tmp_path, DemoCorpusConfig(n_articles=1))


def test_without_image_packages_the_corpus_is_charts_only(tmp_path, monkeypatch):
    from biomedica.testing.corpus import corpus

    missing = ("ct-head: pydicom is not installed (pip install 'biomedica[demo]')",)
    monkeypatch.setattr(corpus, "find_image_sources", lambda: corpus.SourceCatalogue((), missing))
    charts = write_demo_corpus(tmp_path / "charts", DemoCorpusConfig(n_articles=3))
    assert set(charts.graphics_per_modality) <= {"chart", "diagram"} and charts.n_graphics >= 6
    assert charts.skipped_sources == missing
    assert "1 image sources unavailable (ct-head: pydicom is not installed" in str(charts)
