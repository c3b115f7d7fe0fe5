"""Generate the demo corpus: PMC-like article folders (nxml + images), deterministic for a seed.

`write_demo_corpus(out_dir)` writes one folder per article, like an unpacked PMC package:

    out_dir/PMC9000001/PMC9000001.nxml
    out_dir/PMC9000001/PMC9000001_F1.jpg, dmi-12-e1-g002.jpg + dmi-12-e1-g002.gif (thumbnail), fig3.tif, ...

and returns a `DemoCorpusInfo` with what it wrote, figure by figure (caption, mention count,
graphic files, modality, licence group), so tests and `biomedica demo` can check the
ingested archive against the truth. The corpus is built to exercise the hard cases of real
PMC data: every licence group (CC BY, CC0, CC BY-SA, CC BY-NC, CC BY-NC-ND, none, a custom
"all rights reserved"), `ali:license_ref`, hrefs with and without extensions, `.gif`
thumbnails beside full-size `.jpg`s, TIFF and GIF originals, a figure with two graphics, a
figure with its own stricter licence, a `<fig-group>`, a `<floats-group>`, and paragraphs
citing two figures in one `<xref rid="f1 f2">`.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from biomedica.testing.corpus.captions import (
    Caption,
    RichText,
    chart_caption,
    describe,
    image_caption,
    panels_caption,
    text,
)
from biomedica.testing.corpus.charts import CHART_KINDS, DrawnChart, draw_chart
from biomedica.testing.corpus.images import (
    ImageSource,
    RenderedImage,
    SourceCatalogue,
    find_image_sources,
    render_image,
)
from biomedica.testing.corpus.nxml import (
    ArticleDoc,
    AuthorDoc,
    FigureDoc,
    FigureGroupDoc,
    LicenseTerms,
    ReferenceDoc,
    SectionDoc,
    article_xml,
)

FIRST_PMCID = 9_000_001  # PMC9000001+: a range PMC has not reached for these articles
FIRST_PMID = 99_000_001
DOI_PREFIX = "10.5555/biomedica.demo"  # 10.5555 is the DOI handbook's example prefix

# Licence variants, assigned to articles in this order (so even 3 articles cover all groups).
LICENSE_VARIANTS: tuple[LicenseTerms, ...] = (
    LicenseTerms(
        "CC BY 4.0", "commercial", "https://creativecommons.org/licenses/by/4.0/",
        "This is an open access article distributed under the terms of the Creative Commons Attribution "
        "License, which permits unrestricted use, distribution, and reproduction in any medium, provided the "
        "original author and source are credited.",
    ),
    LicenseTerms(
        "CC BY-NC 4.0", "noncommercial", "https://creativecommons.org/licenses/by-nc/4.0/",
        "This is an open access article under the terms of the Creative Commons Attribution-NonCommercial "
        "License, which permits use, distribution and reproduction in any medium, provided the original work "
        "is properly cited and is not used for commercial purposes.",
    ),
    LicenseTerms(None, "other"),  # no <license> element at all
    LicenseTerms(
        "CC0 1.0", "commercial", "https://creativecommons.org/publicdomain/zero/1.0/",
        "This is an open access article, free of all copyright, and may be freely reproduced, distributed, "
        "transmitted, modified, built upon, or otherwise used by anyone for any lawful purpose. The work is "
        "made available under the Creative Commons CC0 public domain dedication.",
    ),
    LicenseTerms(
        "CC BY-NC-ND 4.0", "noncommercial", "https://creativecommons.org/licenses/by-nc-nd/4.0/",
        "This is an open access article under the terms of the Creative Commons Attribution-NonCommercial-"
        "NoDerivs License, which permits use and distribution in any medium, provided the original work is "
        "properly cited, the use is non-commercial and no modifications or adaptations are made.",
    ),
    LicenseTerms(
        None, "other", None,
        "All rights reserved. No part of this article may be reproduced without the written permission of the "
        "publisher.",
        style="text",
    ),
    LicenseTerms(
        "CC BY-SA 4.0", "commercial", "https://creativecommons.org/licenses/by-sa/4.0/",
        "This article is licensed under the Creative Commons Attribution-ShareAlike 4.0 International License.",
    ),
    LicenseTerms(
        "CC BY 3.0", "commercial", "http://creativecommons.org/licenses/by/3.0/",
        "Distributed under the terms of the Creative Commons Attribution License.",
        style="ali",
    ),
)
# The licence a figure reproduced "with permission" carries inside an openly licensed article.
FIGURE_LICENSE = LicenseTerms(
    "CC BY-NC-ND 4.0", "noncommercial", "https://creativecommons.org/licenses/by-nc-nd/4.0/",
    "Reproduced with permission; this figure is excluded from the article's licence and may not be used "
    "commercially or adapted.",
)

# Article index -> the special case it carries (a corpus of at least 7 articles has them all).
TWO_GRAPHIC_ARTICLE = 0
FIGURE_LICENSE_ARTICLE = 3  # a CC0 article, so the figure's own licence is stricter
FIG_GROUP_ARTICLE = 4
FLOATS_GROUP_ARTICLE = 6

_JOURNALS = (
    ("Biomedica Demo Journal of Medical Imaging", "Biomedica Demo J Med Imaging", "dmi"),
    ("Biomedica Demo Reports in Pathology", "Biomedica Demo Rep Pathol", "drp"),
    ("Biomedica Demo Clinical Trials", "Biomedica Demo Clin Trials", "dct"),
    ("Biomedica Demo Eye and Vision", "Biomedica Demo Eye Vis", "dev"),
)
_PUBLISHER = "Biomedica Demo Press"
_SURNAMES = (
    "Moreau", "Okafor", "Lindqvist", "Tanaka", "Silva", "Novak", "Haddad", "Kowalski", "Mensah", "Iyer",
    "Fischer", "Romero", "Nguyen", "O'Brien", "Petrov", "Adeyemi", "Larsen", "Costa", "Yilmaz", "Chen",
)
_GIVEN_NAMES = (
    "Ana", "Kofi", "Ingrid", "Hiro", "Lucas", "Mila", "Omar", "Zofia", "Ama", "Ravi",
    "Jonas", "Elena", "Linh", "Siobhan", "Ivan", "Tolu", "Freja", "Rui", "Deniz", "Wei",
)
_DEPARTMENTS = (
    "Department of Radiology", "Department of Pathology", "Department of Ophthalmology",
    "Department of Cardiology", "Institute of Cell Biology", "Clinical Trials Unit",
)
_INSTITUTIONS = ("Demo University Hospital", "Example Institute of Medical Research", "Sample City Medical School")
_PLACES = ("Exampletown, Demoland", "Sampleville, Testonia", "Placeholder City, Fictitia")
_DEMO_ORCID = "https://orcid.org/0000-0002-1825-0097"  # ORCID's documented fictitious researcher
_CHART_KEYWORDS = {
    "bar": "group comparison", "line": "time course", "survival": "survival analysis",
    "scatter": "correlation", "flow": "study design",
}


@dataclass(frozen=True)
class DemoCorpusConfig:
    """How big the demo corpus is, its seed, and the longest image side in pixels."""

    n_articles: int = 24
    seed: int = 0
    image_size: int = 256  # max side of every written image

    def __post_init__(self) -> None:
        if self.n_articles < 1:
            raise ValueError(f"DemoCorpusConfig.n_articles must be at least 1, got {self.n_articles}")
        if not 32 <= self.image_size <= 4096:
            raise ValueError(f"DemoCorpusConfig.image_size must be between 32 and 4096 pixels, got {self.image_size}")


@dataclass(frozen=True)
class DemoGraphic:
    """One `<graphic>` and the files written for it (paths relative to the corpus folder)."""

    href: str  # as written in xlink:href (with or without extension)
    image_file: str  # the full-size file the href must resolve to
    thumbnail_file: str | None  # a PMC-style .gif thumbnail beside it, never the sample image
    image_format: str  # jpg | png | tif | gif: the written file's format
    modality: str  # ct, mri, xray, ultrasound, nuclear_medicine, fundus, immunohistochemistry, microscopy, chart, diagram
    source: str  # image source name (see demo.images) or "chart:<kind>"
    width: int
    height: int


@dataclass(frozen=True)
class DemoFigure:
    """One `<fig>` as intended: what a correct parser must read back."""

    fig_id: str
    label: str
    caption_title: str
    caption_text: str  # the caption <p> flattened, whitespace-normalised
    graphics: tuple[DemoGraphic, ...]
    n_mentions: int  # paragraphs whose fig xrefs cite this figure
    license_group: str  # the stricter of the article's and the figure's own
    figure_license: str | None  # the figure's own licence, when it has one
    fig_group_id: str | None = None  # set for figures inside a <fig-group>


@dataclass(frozen=True)
class DemoArticle:
    pmcid: str
    pmid: str
    doi: str
    nxml_file: str  # relative to the corpus folder
    title: str
    license: str | None
    license_group: str
    figures: tuple[DemoFigure, ...]

    @property
    def graphics(self) -> tuple[DemoGraphic, ...]:
        return tuple(graphic for figure in self.figures for graphic in figure.graphics)


@dataclass(frozen=True)
class DemoCorpusInfo:
    """What `write_demo_corpus` wrote, with the counts a summary or a test needs."""

    out_dir: Path
    articles: tuple[DemoArticle, ...]
    skipped_sources: tuple[str, ...] = ()  # image sources missing on this machine, with the fix
    n_articles: int = field(init=False)
    n_figures: int = field(init=False)
    n_graphics: int = field(init=False)
    graphics_per_license_group: dict[str, int] = field(init=False)
    articles_per_license_group: dict[str, int] = field(init=False)
    graphics_per_modality: dict[str, int] = field(init=False)
    graphics_per_format: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        figures = [figure for article in self.articles for figure in article.figures]
        graphics = [(figure, graphic) for figure in figures for graphic in figure.graphics]
        counts = {
            "n_articles": len(self.articles),
            "n_figures": len(figures),
            "n_graphics": len(graphics),
            "graphics_per_license_group": dict(sorted(Counter(f.license_group for f, _ in graphics).items())),
            "articles_per_license_group": dict(sorted(Counter(a.license_group for a in self.articles).items())),
            "graphics_per_modality": dict(sorted(Counter(g.modality for _, g in graphics).items())),
            "graphics_per_format": dict(sorted(Counter(g.image_format for _, g in graphics).items())),
        }
        for name, value in counts.items():
            object.__setattr__(self, name, value)

    def __str__(self) -> str:
        groups = ", ".join(f"{name} {count}" for name, count in self.graphics_per_license_group.items())
        modalities = ", ".join(f"{name} {count}" for name, count in self.graphics_per_modality.items())
        line = (
            f"{self.n_articles} articles, {self.n_figures} figures, {self.n_graphics} graphics "
            f"({groups}); modalities: {modalities}"
        )
        if self.skipped_sources:
            line += f"; {len(self.skipped_sources)} image sources unavailable ({self.skipped_sources[0]}, ...)"
        return line


def write_demo_corpus(out_dir: Path, config: DemoCorpusConfig = DemoCorpusConfig()) -> DemoCorpusInfo:
    """Write the demo corpus under out_dir (created if needed) and describe what was written.

    out_dir must be empty or absent: files left from another corpus would be ingested with it.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(
            f"{out_dir}: the demo corpus needs an empty or new folder (left-over files would be ingested "
            "with it); delete the folder or choose another one"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    catalogue = find_image_sources()
    picker = _Picker(catalogue, random.Random(config.seed))
    articles = [
        _write_article(out_dir, index, config, picker, random.Random(f"biomedica-demo:{config.seed}:{index}"))
        for index in range(config.n_articles)
    ]
    return DemoCorpusInfo(out_dir=out_dir, articles=tuple(articles), skipped_sources=catalogue.skipped)


class _Picker:
    """Deals image sources and chart kinds from shuffled decks, so every kind appears evenly."""

    def __init__(self, catalogue: SourceCatalogue, rng: random.Random) -> None:
        self._rng = rng
        self._sources: list[ImageSource] = []
        self._charts: list[str] = []
        self._catalogue = catalogue

    def source(self) -> ImageSource | None:
        if not self._catalogue.sources:
            return None
        if not self._sources:
            self._sources = list(self._catalogue.sources)
            self._rng.shuffle(self._sources)
        return self._sources.pop()

    def chart(self) -> str:
        if not self._charts:
            self._charts = list(CHART_KINDS)
            self._rng.shuffle(self._charts)
        return self._charts.pop()


@dataclass
class _PlannedFigure:
    doc: FigureDoc
    pictures: list[RenderedImage | DrawnChart]
    files: list[tuple[str, str, str | None, str]]  # (href, image file name, thumbnail name, format)
    group_id: str | None = None  # the <fig-group> it belongs to
    group_label: str | None = None


def _write_article(
    out_dir: Path, index: int, config: DemoCorpusConfig, picker: _Picker, rng: random.Random
) -> DemoArticle:
    pmcid = f"PMC{FIRST_PMCID + index}"
    folder = out_dir / pmcid
    folder.mkdir(parents=True, exist_ok=True)
    license_terms = LICENSE_VARIANTS[index % len(LICENSE_VARIANTS)]
    journal_title, journal_abbrev, journal_code = _JOURNALS[index % len(_JOURNALS)]
    year = 2014 + rng.randrange(11)
    naming = ("explicit", "package", "bare")[index % 3]
    id_prefix, label_word = (("f", "Figure"), ("fig", "Fig."), ("F", "Fig"))[index % 3]

    figures = _plan_figures(index, config, picker, rng, naming, id_prefix, label_word, pmcid, journal_code, year)
    for figure in figures:
        for picture, (_href, image_name, thumbnail_name, image_format) in zip(figure.pictures, figure.files):
            _save(picture.image, folder / image_name, image_format)
            if thumbnail_name:
                _save(_thumbnail(picture.image), folder / thumbnail_name, "gif")

    references = _references(index, rng)
    article_type, heading = _article_type(index)
    sections = _sections(figures, references, rng)
    topics = _topics(figures)
    doc = ArticleDoc(
        pmcid=pmcid,
        pmid=str(FIRST_PMID + index),
        doi=f"{DOI_PREFIX}.{index + 1}",
        publisher_id=f"{journal_code}-{index + 1:04d}",
        article_type=article_type,
        journal_title=journal_title,
        journal_abbrev=journal_abbrev,
        publisher=_PUBLISHER,
        title=_title(topics, rng),
        authors=_authors(index, rng),
        affiliations=_affiliations(rng),
        pub_date=(year, 1 + rng.randrange(12), 1 + rng.randrange(28)),
        volume=year - 2010,
        elocation_id=f"e{index + 1}",
        heading=heading,
        subjects=_unique(_discipline(p) for f in figures for p in f.pictures),
        keywords=_unique([*topics, "generated demo data"]),
        license=license_terms,
        copyright_holder=f"{_SURNAMES[index % len(_SURNAMES)]} et al.",
        abstract=_abstract(topics, figures),
        sections=sections,
        references=references,
        floats_group=index == FLOATS_GROUP_ARTICLE,
    )
    nxml_file = f"{pmcid}/{pmcid}.nxml"
    (out_dir / nxml_file).write_bytes(article_xml(doc))
    mention_counts = _mention_counts(sections)
    return DemoArticle(
        pmcid=pmcid,
        pmid=doc.pmid,
        doi=doc.doi,
        nxml_file=nxml_file,
        title=doc.title,
        license=license_terms.name,
        license_group=license_terms.group,
        figures=tuple(_truth(pmcid, figure, license_terms, mention_counts) for figure in figures),
    )


def _article_type(index: int) -> tuple[str, str]:
    """(article-type attribute, heading subject): mostly research articles, some case reports and reviews."""
    if index % 11 == 9:
        return "review-article", "Review"
    if index % 7 == 5:
        return "case-report", "Case Report"
    return "research-article", "Research Article"


def _plan_figures(
    index: int, config: DemoCorpusConfig, picker: _Picker, rng: random.Random,
    naming: str, id_prefix: str, label_word: str, pmcid: str, journal_code: str, year: int,
) -> list[_PlannedFigure]:
    n_figures = rng.choice((2, 3, 3, 4, 4, 5))
    planned: list[_PlannedFigure] = []
    fig_group_at = 2 if index == FIG_GROUP_ARTICLE else None
    for number in range(1, n_figures + 1):
        fig_id, label = f"{id_prefix}{number}", f"{label_word} {number}"
        if number == 1 and index == TWO_GRAPHIC_ARTICLE:
            pictures = [_picture(picker, rng, config, want_image=True) for _ in range(2)]
            caption = panels_caption(pictures, rng)
        elif number == fig_group_at:
            for letter in "AB":
                picture = _picture(picker, rng, config, want_image=True)
                sub_id = f"{fig_id}{letter.lower()}"
                sub_doc = FigureDoc(sub_id, f"{label}{letter}", _caption_for(picture, rng), ())
                planned.append(_PlannedFigure(sub_doc, [picture], [], group_id=f"{fig_id}g", group_label=label))
            continue
        else:
            pictures = [_picture(picker, rng, config, want_image=rng.random() < 0.65)]
            caption = _caption_for(pictures[0], rng)
        own_license = number == 2 and index == FIGURE_LICENSE_ARTICLE
        doc = FigureDoc(
            fig_id, label, caption, (),
            fig_type="figure" if naming == "package" else None,
            permissions=FIGURE_LICENSE if own_license else None,
            copyright=f"© {year} {_PUBLISHER}. Reproduced with permission." if own_license else None,
        )
        planned.append(_PlannedFigure(doc, pictures, []))
    # Name the files once the order is known: graphics are numbered in document order.
    position = 0
    for figure in planned:
        for panel, picture in enumerate(figure.pictures):
            position += 1
            stem = figure.doc.fig_id + ("ab"[panel] if len(figure.pictures) > 1 else "")
            figure.files.append(_file_names(naming, picture, rng, pmcid, journal_code, year, index, position, stem))
        figure.doc = replace(figure.doc, hrefs=tuple(files[0] for files in figure.files))
    return planned


def _picture(picker: _Picker, rng: random.Random, config: DemoCorpusConfig, want_image: bool) -> RenderedImage | DrawnChart:
    source = picker.source() if want_image else None
    if source is not None:
        return render_image(source, rng, config.image_size)
    side = rng.randint(max(32, int(config.image_size * 0.75)), config.image_size)
    return draw_chart(picker.chart(), rng, side)


def _caption_for(picture: RenderedImage | DrawnChart, rng: random.Random) -> Caption:
    return chart_caption(picture, rng) if isinstance(picture, DrawnChart) else image_caption(picture, rng)


def _file_names(
    naming: str, picture: RenderedImage | DrawnChart, rng: random.Random, pmcid: str, journal_code: str,
    year: int, index: int, position: int, stem: str,
) -> tuple[str, str, str | None, str]:
    """(href, image file, thumbnail file, format) in one of three real-world naming habits."""
    is_chart = isinstance(picture, DrawnChart)
    is_colour = picture.image.mode == "RGB" and not is_chart
    if naming == "package":  # PMC package: extensionless href, full-size .jpg + .gif thumbnail
        stem = f"{journal_code}-{year - 2010}-e{index + 1}-g{position:03d}"
        return stem, f"{stem}.jpg", f"{stem}.gif", "jpg"
    if naming == "explicit":  # href names the file, extension included
        if position % 4 == 3:
            image_format = "tif"
        elif is_chart:
            image_format = "png"
        else:
            image_format = "jpg" if is_colour or rng.random() < 0.5 else "png"
        name = f"{pmcid}_{stem}.{image_format}"
        return name, name, None, image_format
    # bare: extensionless href with a dotted stem that looks like an extension (PLoS style:
    # "dev.0004.g002" is the file "dev.0004.g002.png"), a single file
    image_format = rng.choice(("gif", "png")) if is_chart else rng.choice(("tif", "png", "jpg"))
    href = f"{journal_code}.{index + 1:04d}.g{position:03d}"
    return href, f"{href}.{image_format}", None, image_format


def _save(picture: Image.Image, path: Path, image_format: str) -> None:
    """Save deterministically: fixed encoder settings, no timestamps or other varying metadata."""
    if image_format == "jpg":
        picture.convert("RGB" if picture.mode not in ("L", "RGB") else picture.mode).save(path, "JPEG", quality=90)
    elif image_format == "png":
        picture.save(path, "PNG")
    elif image_format == "tif":
        picture.save(path, "TIFF", compression="tiff_lzw")
    elif image_format == "gif":
        paletted = picture if picture.mode in ("L", "P") else picture.convert("RGB").quantize(256, dither=Image.Dither.NONE)
        paletted.save(path, "GIF")
    else:
        raise ValueError(f"unknown demo image format {image_format!r}")


def _thumbnail(picture: Image.Image) -> Image.Image:
    """A PMC-style preview: at most 96 px and always smaller than the full-size picture."""
    side = min(96, max(8, max(picture.size) // 2))
    thumb = picture.copy()
    thumb.thumbnail((side, side), Image.Resampling.LANCZOS)
    return thumb


def _sections(figures: list[_PlannedFigure], references: tuple[ReferenceDoc, ...], rng: random.Random) -> tuple[SectionDoc, ...]:
    """Introduction, Methods, Results (figures and the paragraphs citing them), Discussion."""

    def cite(k: int) -> tuple[str, str]:
        return f"xref bibr {references[k].ref_id}", str(k + 1)

    intro = [
        text(
            "Figures in biomedical articles carry much of their evidence ",
            cite(0),
            ". This generated article reproduces the structure of an open access paper so that a figure "
            "pipeline can be tested end to end ",
            cite(1),
            ".",
        ),
        text("Earlier work used ", ("italic", "in vivo"), " imaging and quantitative analysis ", cite(2), "."),
    ]
    methods = [
        text(
            "Images were taken from public test data shipped with open source software; charts were drawn from "
            "random numbers with a fixed seed. Statistical significance was set at ",
            ("italic", "P"),
            " < 0.05.",
        )
    ]
    results: list[RichText | FigureDoc | FigureGroupDoc] = []
    index = 0
    while index < len(figures):
        figure = figures[index]
        if figure.group_id is not None:  # a fig-group: its members are consecutive
            members = [f for f in figures[index:] if f.group_id == figure.group_id]
            ids = " ".join(m.doc.fig_id for m in members)
            first, last = members[0].doc.label, members[-1].doc.label
            results.append(
                text(
                    f"Panels of one composite figure show {describe(members[0].pictures[0])} and "
                    f"{describe(members[1].pictures[0])} (",
                    (f"xref fig {ids}", f"{first} and {last}"),
                    ").",
                )
            )
            for member in members:
                results.append(text("In detail, ", (f"xref fig {member.doc.fig_id}", member.doc.label), f" is {describe(member.pictures[0])}."))
            results.append(
                FigureGroupDoc(
                    figure.group_id, figure.group_label or "",
                    Caption("Composite figure.", text(f"Two panels: {describe(members[0].pictures[0])}; {describe(members[1].pictures[0])}.")),
                    tuple(m.doc for m in members),
                )
            )
            index += len(members)
            continue
        following = figures[index + 1] if index + 1 < len(figures) else None
        if following is not None and following.group_id is None and rng.random() < 0.4:
            # One xref citing two figures at once: rid="f1 f2".
            results.append(
                text(
                    f"We show {describe(figure.pictures[0])} and {describe(following.pictures[0])} (",
                    (f"xref fig {figure.doc.fig_id} {following.doc.fig_id}", f"{figure.doc.label} and {following.doc.label}"),
                    ").",
                )
            )
            results += [figure.doc, following.doc]
            index += 2
            continue
        results.append(_mention(figure, rng))
        results.append(figure.doc)
        index += 1
    discussion = [text("Taken together, the findings are consistent with previous reports ", cite(len(references) - 1), ".")]
    plain = [f for f in figures if f.group_id is None]
    if plain:
        again = plain[0] if len(plain) == 1 else rng.choice(plain[1:])
        discussion.append(
            text("As ", (f"xref fig {again.doc.fig_id}", again.doc.label), " illustrates, the demo covers several figure types.")
        )
    return (
        SectionDoc("s1", "Introduction", tuple(intro)),
        SectionDoc("s2", "Methods", tuple(methods)),
        SectionDoc("s3", "Results", tuple(results)),
        SectionDoc("s4", "Discussion", tuple(discussion)),
    )


def _mention(figure: _PlannedFigure, rng: random.Random) -> RichText:
    xref = (f"xref fig {figure.doc.fig_id}", figure.doc.label)
    phrase = " and ".join(describe(p) for p in figure.pictures)
    template = rng.randrange(3)
    if template == 0:
        return text("As shown in ", xref, f", we obtained {phrase}.")
    if template == 1:
        return text(f"{phrase[:1].upper()}{phrase[1:]} is presented in ", xref, ".")
    return text("Results are summarised in ", xref, f" ({phrase}).")


def _mention_counts(sections: tuple[SectionDoc, ...]) -> Counter[str]:
    """How many paragraphs cite each figure id (one per paragraph, however many xrefs)."""
    counts: Counter[str] = Counter()
    for section in sections:
        for block in section.blocks:
            if isinstance(block, RichText):
                cited = {rid for tag, _ in block.segments if tag and tag.startswith("xref fig ") for rid in tag.split()[2:]}
                counts.update(cited)
    return counts


def _truth(pmcid: str, figure: _PlannedFigure, article_license: LicenseTerms, mentions: Counter[str]) -> DemoFigure:
    own = figure.doc.permissions
    group = article_license.group
    if own is not None and _strictness(own.group) > _strictness(group):
        group = own.group
    graphics = tuple(
        DemoGraphic(
            href=href,
            image_file=f"{pmcid}/{image_name}",
            thumbnail_file=f"{pmcid}/{thumbnail}" if thumbnail else None,
            image_format=image_format,
            modality=picture.modality if isinstance(picture, DrawnChart) else picture.source.modality,
            source=f"chart:{picture.kind}" if isinstance(picture, DrawnChart) else picture.source.name,
            width=picture.image.width,
            height=picture.image.height,
        )
        for picture, (href, image_name, thumbnail, image_format) in zip(figure.pictures, figure.files)
    )
    return DemoFigure(
        fig_id=figure.doc.fig_id,
        label=figure.doc.label,
        caption_title=figure.doc.caption.title,
        caption_text=" ".join(figure.doc.caption.body.plain.split()),
        graphics=graphics,
        n_mentions=mentions[figure.doc.fig_id],
        license_group=group,
        figure_license=own.name if own is not None else None,
        fig_group_id=figure.group_id,
    )


def _strictness(group: str) -> int:
    return {"commercial": 0, "noncommercial": 1, "other": 2}[group]


def _topics(figures: list[_PlannedFigure]) -> list[str]:
    topics = []
    for figure in figures:
        for picture in figure.pictures:
            topics.append(_CHART_KEYWORDS[picture.kind] if isinstance(picture, DrawnChart) else picture.source.topic)
    return _unique(topics)


def _discipline(picture: RenderedImage | DrawnChart) -> str:
    return "Biostatistics" if isinstance(picture, DrawnChart) else picture.source.discipline


def _title(topics: list[str], rng: random.Random) -> str:
    main = topics[0]
    other = topics[1] if len(topics) > 1 else "clinical outcomes"
    return rng.choice(
        (
            f"{main[:1].upper()}{main[1:]} and {other} in a generated demonstration cohort",
            f"Quantitative assessment of {main}: a synthetic example",
            f"A demonstration study of {main} with {other}",
        )
    )


def _abstract(topics: list[str], figures: list[_PlannedFigure]) -> RichText:
    n_graphics = sum(len(f.pictures) for f in figures)
    return text(
        f"This generated article illustrates {', '.join(topics[:3])} in {len(figures)} figures with "
        f"{n_graphics} images. Its text is synthetic; its images are real test images (",
        ("italic", "n"),
        f" = {n_graphics}) or charts drawn from random numbers.",
    )


def _authors(index: int, rng: random.Random) -> tuple[AuthorDoc, ...]:
    n_authors = rng.randint(2, 6)
    authors = [
        AuthorDoc(
            surname=rng.choice(_SURNAMES),
            given_names=rng.choice(_GIVEN_NAMES),
            aff_ids=tuple(sorted(rng.sample(("aff1", "aff2"), rng.randint(1, 2)))),
            orcid=_DEMO_ORCID if k == 0 and index % 4 == 0 else None,
            corresponding=k == 0,
        )
        for k in range(n_authors)
    ]
    if index % 5 == 2:
        authors.append(AuthorDoc(None, None, ("aff1",), collab="Biomedica Demo Consortium"))
    return tuple(authors)


def _affiliations(rng: random.Random) -> tuple[tuple[str, str], ...]:
    return tuple(
        (aff_id, f"{rng.choice(_DEPARTMENTS)}, {rng.choice(_INSTITUTIONS)}, {rng.choice(_PLACES)}")
        for aff_id in ("aff1", "aff2")
    )


def _references(index: int, rng: random.Random) -> tuple[ReferenceDoc, ...]:
    n_refs = rng.randint(3, 6)
    references = []
    for k in range(n_refs):
        authors = tuple((rng.choice(_SURNAMES), rng.choice("ABCDEFGHJKLMNPRSTW")) for _ in range(rng.randint(1, 3)))
        references.append(
            ReferenceDoc(
                ref_id=f"r{k + 1}",
                authors=authors,
                title=rng.choice(
                    (
                        "Figure mining in the biomedical literature",
                        "Image-caption pairs for medical vision-language models",
                        "Quantitative imaging biomarkers in clinical research",
                        "Open access publishing and reuse of figures",
                    )
                ),
                source=_JOURNALS[(index + k) % len(_JOURNALS)][1],
                year=2005 + rng.randrange(15),
                pmid=None if k == n_refs - 1 else str(99_100_000 + index * 10 + k),
                doi=f"{DOI_PREFIX}.ref.{index + 1}.{k + 1}",
                mixed=k == 1,
            )
        )
    return tuple(references)


def _unique(items: Iterable[str | None]) -> list[str]:
    """The non-empty items in first-seen order."""
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return list(seen)
