"""Factories for small figure/article records paired with real image bytes from the fixtures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from biomedica.archive import UnitWriter, finalize_archive
from biomedica.records import ArticleRecord, ErrorRecord, FigureRecord

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
FIGURES = FIXTURES / "images" / "pmc_package_figures"
SKIMAGE = FIXTURES / "images" / "skimage"


def make_figure(key: str, **overrides) -> FigureRecord:
    """A plausible figure record; `key` fixes pmcid, overrides set any other field."""
    pmcid = key.split("_")[0]
    values = dict(
        key=key, pmcid=pmcid, version=1, pmid=None, doi=None, fig_id=f"f{key[-1]}", fig_label="Figure 1",
        fig_type=None, caption_title=None, caption=f"Caption of {key}.", mentions=[], graphic_href=None,
        image_name=None, image_format="jpg", width=None, height=None, sha256=None, phash=None,
        license="CC BY 4.0", license_group="commercial", figure_license=None, article_title="A title",
        journal="Front Plant Sci", pub_date="2023-04-05", year=2023, article_type="research-article",
        keywords=["maize"], subjects=["Plant Science"],
    )
    values.update(overrides)
    return FigureRecord(**values)


def make_article(article_id: str, **overrides) -> ArticleRecord:
    values = dict(
        article_id=article_id, pmcid=article_id, version=1, pmid=None, doi=None, publisher_id=None,
        title="A title", abstract="An abstract.", journal="Front Plant Sci", journal_abbrev=None,
        publisher=None, issn=None, pub_date="2023-04-05", year=2023, article_type="research-article",
    )
    values.update(overrides)
    return ArticleRecord(**values)


@dataclass
class Sample:
    record: FigureRecord
    image_path: Path

    @property
    def image(self) -> bytes:
        return self.image_path.read_bytes()

    @property
    def ext(self) -> str:
        return self.record.image_format


@dataclass
class UnitInputs:
    samples: list[Sample]
    articles: list[ArticleRecord]
    errors: list[ErrorRecord] = field(default_factory=list)


def unit_inputs(unit_id: int) -> UnitInputs:
    """Two fixed units: unit 0 = commercial + other, unit 1 = commercial + noncommercial (png)."""
    if unit_id == 0:
        maize = dict(journal="Front Plant Sci", year=2023, license="CC BY 4.0", license_group="commercial")
        breast = dict(journal="Breast Cancer Res", year=2005, pub_date="2005-03-01", license=None,
                      license_group="other")
        return UnitInputs(
            samples=[
                Sample(make_figure("PMC10118017_000", caption="Examples of major anthocyanin species in Andean maize.",
                                   mentions=["As shown in Figure 1, …", "Figure 1 lists …"], width=590, height=900,
                                   **maize), FIGURES / "PMC10118017" / "fpls-14-1154535-g001.jpg"),
                Sample(make_figure("PMC10118017_001", caption="Synthetic pathway of simplified version of anthocyanins.",
                                   **maize), FIGURES / "PMC10118017" / "fpls-14-1154535-g002.jpg"),
                Sample(make_figure("PMC10118017_002", caption="Color of anthocyanins at different pH value (α → β, 5 µm).",
                                   **maize), FIGURES / "PMC10118017" / "fpls-14-1154535-g003.jpg"),
                Sample(make_figure("PMC1064083_000", caption="Immunohistochemistry of breast tissue.", **breast),
                       FIGURES / "PMC1064083" / "bcr936-1.jpg"),
                Sample(make_figure("PMC1064083_001", caption="", **breast), FIGURES / "PMC1064083" / "bcr936-2.jpg"),
            ],
            articles=[make_article("PMC10118017"), make_article("PMC1064083", journal="Breast Cancer Res", year=2005)],
        )
    if unit_id == 1:
        genome = dict(journal="Genome Biol", year=2005, pub_date="2005-05-31", license="CC BY 2.0",
                      license_group="commercial")
        return UnitInputs(
            samples=[
                Sample(make_figure("PMC1175969_000", caption="Phylogenetic tree.", **genome),
                       FIGURES / "PMC1175969" / "gb-2005-6-6-r49-1.jpg"),
                Sample(make_figure("PMC1175969_001", caption="Expression profiles.", **genome),
                       FIGURES / "PMC1175969" / "gb-2005-6-6-r49-2.jpg"),
                Sample(make_figure("PMC2000001_000", caption="Fluorescent cells.", image_format="png",
                                   license="CC BY-NC 4.0", license_group="noncommercial", journal="Cell Death Discov",
                                   year=2024), SKIMAGE / "cell.png"),
            ],
            articles=[make_article("PMC1175969", journal="Genome Biol"), make_article("PMC2000001")],
            errors=[ErrorRecord(id="PMC2000001_001", stage="ingest", kind="image-missing",
                                message="graphic g2 not found in the package", source="PMC2000001.tar.gz")],
        )
    raise ValueError(unit_id)


def write_unit(root: Path, unit_id: int, reverse: bool = False):
    inputs = unit_inputs(unit_id)
    samples = list(reversed(inputs.samples)) if reverse else inputs.samples
    with UnitWriter(root, unit_id) as writer:
        for sample in samples:
            writer.add_sample(sample.record, sample.image, sample.ext)
        for article in inputs.articles:
            writer.add_article(article)
        for error in inputs.errors:
            writer.add_error(error)
        return writer.commit(extra={"articles_listed": len(inputs.articles)})


BUILD_CONFIG = {"unit_size": 2, "image_policy": "original"}
SOURCE = {"reader": "dir", "location": "fixtures"}


@pytest.fixture
def two_unit_archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    write_unit(root, 0)
    write_unit(root, 1)
    finalize_archive(root, BUILD_CONFIG, SOURCE)
    return root


@pytest.fixture
def all_samples() -> dict[str, Sample]:
    return {s.record.key: s for u in (0, 1) for s in unit_inputs(u).samples}


@pytest.fixture(name="make_figure")
def make_figure_fixture():
    """Factory: make_figure(key, **fields) -> FigureRecord."""
    return make_figure


@pytest.fixture(name="make_article")
def make_article_fixture():
    return make_article


@pytest.fixture(name="unit_inputs")
def unit_inputs_fixture():
    """unit_inputs(unit_id) -> the fixed samples/articles/errors of unit 0 or 1."""
    return unit_inputs


@pytest.fixture(name="write_unit")
def write_unit_fixture():
    """write_unit(root, unit_id, reverse=False) -> UnitStats: writes and commits one unit."""
    return write_unit
