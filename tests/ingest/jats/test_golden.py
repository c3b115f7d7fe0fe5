"""Golden values for real fixture articles of every dialect, checked by hand in the XML."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from biomedica.ingest.jats import ParsedArticle, parse_articles

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures"


@lru_cache(maxsize=None)
def parsed(relative: str) -> ParsedArticle:
    result = parse_articles((FIXTURES / relative).read_bytes(), relative)
    assert result.errors == []
    [article] = result.articles
    return article


def labels(article: ParsedArticle) -> list[str | None]:
    return [f.fig_label for f in article.figures]


def test_pmc_classic_bmc():
    p = parsed("pmc_nxml/PMC3166277.nxml")
    a = p.article
    assert (a.article_id, a.pmcid, a.version, a.pmid, a.doi) == (
        "PMC3166277",
        "PMC3166277",
        None,
        "21810267",
        "10.1186/1471-2180-11-174",
    )
    assert a.title == "Factors influencing lysis time stochasticity in bacteriophage \u03bb"
    assert (a.license, a.license_url, a.license_group) == (
        "CC BY 2.0",
        "http://creativecommons.org/licenses/by/2.0",
        "commercial",
    )
    assert (a.pub_date, a.year, a.article_type, a.dialect) == ("2011-08-02", 2011, "research-article", "pmc-classic")
    assert (a.journal, a.journal_abbrev, a.publisher, a.issn) == (
        "BMC Microbiology",
        "BMC Microbiol",
        "BioMed Central",
        "1471-2180",
    )
    assert [(x.name, x.surname, x.given_names) for x in a.authors] == [
        ("John J Dennehy", "Dennehy", "John J"),
        ("Ing-Nang Wang", "Wang", "Ing-Nang"),
    ]
    assert a.authors[0].affiliations == [
        "Department of Biological Sciences, University at Albany, 1400 Washington Avenue, Albany, NY 12222, USA",
        "Biology Department, Queens College, and the Graduate Center of the City University of New York, "
        "Flushing, NY 11367, USA",
    ]
    assert a.copyright == "Copyright \u00a92011 Dennehy and Wang; licensee BioMed Central Ltd."
    assert a.n_references == 64
    assert a.abstract.startswith("Background\nDespite identical genotypes and seemingly uniform environments")
    assert a.body_text.startswith("Background\nSome phenotypic variation arises from randomness")
    assert (a.n_figures, a.n_graphics) == (4, 4)
    assert [f.key for f in p.figures] == [f"PMC3166277_{n:03d}" for n in range(4)]
    assert labels(p) == ["Figure 1", "Figure 2", "Figure 3", "Figure 4"]
    assert [f.graphic_href for f in p.figures] == [f"1471-2180-11-174-{n}" for n in range(1, 5)]
    assert [len(f.mentions) for f in p.figures] == [3, 1, 4, 4]
    first = p.figures[0]
    # <bold>title</bold>. text ... Wang <italic>et al. </italic>[<xref>28</xref>]
    assert first.caption == (
        "Schematic presentation of two models of holin hole formation. Holin monomers (shaded circles) are "
        "produced in the cytoplasm, and then transported to the cell membrane (a top-down view of the cell "
        "membrane thereafter) where they dimerize. A previous model (open arrows) [28,39] hypothesized that the "
        'growth of the holin aggregates ("rafts") to a critical size that is responsible for the collapse of the '
        "proton motive force (pmf), thus resulting in hole formation. The current model [40] (filled arrows) "
        "suggests that the holin proteins are mostly in a mobile state, then quite suddenly, aggregates are "
        "formed, leading to the formation of holin holes. Addition of the energy poison KCN halts further holin "
        "production and abolishes the pmf. This figure is adapted from Wang et al. [28] and White et al. [40]."
    )
    assert first.caption_title is None
    assert (first.pmcid, first.pmid, first.doi, first.license, first.license_group, first.year) == (
        "PMC3166277",
        "21810267",
        "10.1186/1471-2180-11-174",
        "CC BY 2.0",
        "commercial",
        2011,
    )
    assert first.article_title == a.title and first.journal == "BMC Microbiology"
    assert all(f.image_name is None and f.sha256 is None for f in p.figures)


def test_pmc_classic_plos_dotted_hrefs_and_license_in_copyright_statement():
    p = parsed("pmc_nxml/PMC1790863.nxml")
    assert [f.graphic_href for f in p.figures] == ["pone.0000217.g001", "pone.0000217.g002", "pone.0000217.g003"]
    assert [f.key for f in p.figures] == ["PMC1790863_000", "PMC1790863_001", "PMC1790863_002"]
    assert [len(f.mentions) for f in p.figures] == [2, 1, 2]
    assert p.figures[0].caption_title == "Fisher's geometric model in two-dimensional phenotypic space."
    # no <license>; NLM 2.x copyright-statement in article-meta grants CC BY
    assert (p.article.license, p.article.license_group) == ("CC BY", "commercial")


def test_pmc_jats14_alternatives_take_image_not_thumb():
    p = parsed("pmc_nxml/PMC13173394.nxml")
    a = p.article
    assert (a.pmcid, a.pmid, a.doi, a.dialect) == ("PMC13173394", "42130468", "10.1002/rcm.70102", "pmc-jats14")
    assert (a.pub_date, a.license, a.license_group) == ("2026-05-14", "CC BY 4.0", "commercial")
    assert a.journal == "Rapid Communications in Mass Spectrometry"
    assert a.n_references == 53  # the ref-list sits in <body> in new PMC XML
    assert labels(p) == [f"FIGURE {n}" for n in range(1, 10)]
    assert p.figures[0].graphic_href == "RCM-40-e70102-g002.jpg"
    assert all(f.graphic_href.endswith(".jpg") for f in p.figures)
    assert "(D) Extracted ion chromatogram for the doubly sodiated PEG ion at m/z 1462.85" in p.figures[0].caption


def test_pmc_jats14_pmcid_version():
    a = parsed("pmc_nxml/PMC13179431.nxml").article
    assert (a.pmcid, a.version, a.article_id) == ("PMC13179431", 1, "PMC13179431")
    assert a.authors[0].orcid == "0000-0001-6546-0946"


def test_pmc_jats14_mathml_caption():
    p = parsed("pmc_nxml/PMC13170065.nxml")
    assert (p.article.license, p.article.license_group) == ("CC BY-NC 4.0", "noncommercial")
    assert labels(p) == ["SCHEME 1", "FIGURE 1", "FIGURE 2", "FIGURE 3", "FIGURE 4"]
    assert p.figures[4].caption == (
        "The linear relationship of %CV and frequency. The logarithm of %CV of the internal fragment frequencies "
        "generated from repetitively inducing four fragments to a million of ubiquitin sequences for 20 times is "
        "linearly related to the logarithm of frequencies, following the linear regression function "
        "log CV = \u22120.5 log Frequency + 2."
    )
    assert p.figures[4].caption_tex.endswith(
        "following the linear regression function $\\log\\mathrm{CV}=-0.5\\log\\text{Frequency}+2$."
    )
    assert p.figures[0].caption_tex is None  # no formula in the caption


def test_tex_alternative_in_caption():
    # the caption reads the MathML alternative; caption_tex keeps the tex-math alternative as written
    p = parsed("pmc_nxml/PMC7417471.nxml")
    caption = p.figures[5].caption
    assert p.figures[5].fig_label == "Fig. 6"
    assert "coated with Laccase in a 5 mmol L\u207b\u00b9[Fe(CN)\u2086]^{3-/4-} solution with 0.1 mol L\u22121 KCl." in caption
    tex = p.figures[5].caption_tex
    assert (
        "coated with Laccase in a 5 mmol ${\\text{L}}^{ - 1} [{\\text{Fe}}\\left( {{\\text{CN}})_{6} } "
        "\\right]^{3 - /4 - }$ solution with 0.1 mol L\u22121 KCl."
    ) in tex
    assert "documentclass" not in caption + tex and "usepackage" not in caption + tex


def test_europepmc_rendition():
    p = parsed("pmc_nxml/PMC12602441.nxml")
    a = p.article
    assert (a.pmcid, a.pmid, a.doi, a.dialect) == ("PMC12602441", None, "10.3389/fimmu.2025.1688181", "europepmc")
    assert (a.pub_date, a.license, a.article_type) == ("2025-10-28", "CC BY 4.0", "review-article")
    assert a.keywords == ["ncRNAs", "gastric cancer", "tumor immunity", "immunotherapy", "molecular mechanism"]
    assert a.subjects == ["Immunology", "Review"]
    assert a.authors[0].affiliations == [
        "Department of Gastroenterology, the First Affiliated Hospital of Ningbo University, Ningbo, China",
        "Health Science Center, Ningbo University, Ningbo, China",
    ]
    assert labels(p) == ["Figure 1", "Figure 2", "Figure 3", "Figure 4"]
    assert [len(f.mentions) for f in p.figures] == [1, 3, 5, 3]


def test_oai_pmh_record():
    p = parsed("pmc_wrapped/PMC10200000.oai.xml")
    a = p.article
    assert (a.pmcid, a.pmid, a.doi, a.dialect) == ("PMC10200000", "37209189", "10.1007/s40820-023-01106-5", "oai-pmh")
    assert (a.license, a.license_group, a.pub_date) == ("CC BY 4.0", "commercial", "2023-05-20")
    assert (a.journal, a.issn) == ("Nano-Micro Letters", "2150-5551")  # epub ISSN preferred over ppub
    assert labels(p) == ["Fig. 1", "Fig. 2", "Fig. 3", "Fig. 4", "Fig. 5"]
    assert [f.graphic_href for f in p.figures][0] == "40820_2023_1106_Fig1_HTML"


def test_oai_pmh_graphical_abstract_fig_without_caption():
    p = parsed("pmc_wrapped/PMC9500000.oai.xml")
    a = p.article
    assert (a.license, a.license_url, a.license_group) == (
        "CC BY-NC-ND 4.0",
        "https://creativecommons.org/licenses/by-nc-nd/4.0/",
        "noncommercial",
    )
    assert a.keywords == ["organoids", "deep learning", "bromodomains", "Huntington's disease"]
    first = p.figures[0]
    assert (first.key, first.fig_id, first.fig_label, first.caption, first.graphic_href) == (
        "PMC9500000_000",
        "undfig1",
        None,
        "",
        "fx1",
    )
    assert labels(p)[1:] == ["Figure 1", "Figure 2", "Figure 3", "Figure 4"]
    assert [len(f.mentions) for f in p.figures] == [0, 5, 1, 2, 6]


def test_oai_pmh_covid_license_is_other():
    a = parsed("pmc_wrapped/PMC9000000.oai.xml").article
    assert (a.license, a.license_group, a.n_figures) == (None, "other", 14)


def test_efetch_article():
    p = parsed("pmc_wrapped/PMC2832672.efetch.xml")
    a = p.article
    assert (a.pmcid, a.pmid, a.doi, a.dialect) == ("PMC2832672", "20221253", "10.1371/journal.pgen.1000872", "efetch")
    assert a.title == (
        "PPS, a Large Multidomain Protein, Functions with Sex-Lethal to Regulate Alternative Splicing in Drosophila"
    )
    assert (a.license, a.pub_date) == ("CC BY 4.0", "2010-03-05")
    assert p.figures[1].caption_title == "Sxl splicing is disrupted in the ovaries of incompletely rescued pps1 mutant females."
    assert p.figures[0].graphic_href == "pgen.1000872.g001"


def test_efetch_scanned_article_figs_without_caption_or_label():
    p = parsed("pmc_wrapped/PMC1086993.efetch.xml")
    assert p.article.title == (  # the footnote marker <xref ref-type="fn"><sup>1</sup></xref> is left out
        "Growth Physics in Nitella: a Method for Continuous in Vivo Analysis of Extensibility Based on a "
        "Micro-manometer Technique for Turgor Pressure"
    )
    assert (p.article.pub_date, p.article.license, p.article.license_group) == ("1968-08", None, "other")
    assert [(f.key, f.fig_id, f.fig_label, f.caption) for f in p.figures] == [
        ("PMC1086993_000", "F1", None, ""),
        ("PMC1086993_001", "F2", None, ""),
    ]


def test_public_domain_and_floats_group():
    p = parsed("pmc_nxml/PMC2599765.nxml")
    assert (p.article.license, p.article.license_group) == ("PDM 1.0", "commercial")
    assert labels(p) == ["Figure 1", "Figure 2", "Figure 3"]
    assert p.figures[0].caption == (
        "Exposure to PBDE-47 depressed circulating concentrations of total T4 in males and females (A), but had no "
        "effect on total T3 in males (B). *p < 0.05 compared with control."
    )
    assert [len(f.mentions) for f in p.figures] == [2, 1, 2]


def test_elife_publisher_xml_fig_groups_and_supplements():
    p = parsed("pmc_nxml/elife02304.nxml")
    a = p.article
    assert (a.article_id, a.pmcid, a.doi, a.publisher_id, a.dialect) == (
        "DOI-10-7554-eLife-02304",
        None,
        "10.7554/eLife.02304",
        "02304",
        "publisher",
    )
    assert (a.license, a.pub_date, a.n_graphics) == ("CC BY 4.0", "2014-06-25", 24)
    assert labels(p)[:4] == ["Figure 1", "Figure 1\u2014figure supplement 1", "Figure 2", "Figure 2\u2014figure supplement 1"]
    supplement = p.figures[3]
    assert (supplement.key, supplement.fig_id, supplement.graphic_href) == (
        "DOI-10-7554-eLife-02304_003",
        "fig2s1",
        "elife02304fs002",
    )
    assert supplement.caption == (
        "Sequence alignment of the specificity loop from apicomplexan M/LDHs with ancestral sequences. "
        "DOI: http://dx.doi.org/10.7554/eLife.02304.006"
    )
    assert [len(f.mentions) for f in p.figures[:4]] == [2, 1, 3, 3]
    assert "." not in "".join(f.key for f in p.figures)


def test_elife_insight_italic_caption():
    p = parsed("pmc_nxml/elife00240.nxml")
    assert (p.article.article_type, p.article.license) == ("article-commentary", "CC BY 3.0")
    [figure] = p.figures
    assert figure.caption == (
        "The wild tobacco plant N. attenuata relies on both direct and indirect mechanisms to defend it against "
        "M. sexta caterpillars. Indirect defence involves the release of volatile chemicals that attract Geocoris "
        "bugs that prey on the caterpillars. This photograph shows a Geocoris bug (bottom left) about to attack a "
        "caterpillar and two of its larvae."
    )
    assert (figure.fig_label, len(figure.mentions)) == ("Figure 1", 1)


def test_elife_package_fig_without_label():
    p = parsed("pmc_packages/elife-00353/elife-00353-v1.xml")
    assert p.article.article_id == "DOI-10-7554-eLife-00353"
    assert p.article.keywords == ["careers in science", "grad school", "postdocs"]
    [figure] = p.figures
    assert (figure.key, figure.fig_label, figure.graphic_href) == (
        "DOI-10-7554-eLife-00353_000",
        None,
        "elife-00353-fig1-v1",
    )
    assert figure.caption == "This illustration of Eve Marder in her office at Brandeis was drawn by her nephew Ben Marder."


def test_elife_via_pmc_child_figs_and_cc0():
    p = parsed("pmc_nxml/PMC7289599.nxml")
    assert (p.article.license, p.article.license_group) == ("CC0 1.0", "commercial")
    assert labels(p)[:2] == ["Figure 1", "Figure 1\u2014figure supplement 1"]
    assert p.figures[1].caption_title == "ES cell-specific expression of KRAB-ZFP gene clusters."
    assert p.figures[1].graphic_href == "elife-56337-fig1-figsupp1"


def test_nih_preprint_package():
    p = parsed("pmc_packages/PMC10802347/nihpp-2023.12.31.573776v1.nxml")
    assert (p.article.pmcid, p.article.license, p.article.license_group) == (
        "PMC10802347",
        "CC BY-NC-ND 4.0",
        "noncommercial",
    )
    assert [f.graphic_href for f in p.figures] == [f"nihpp-2023.12.31.573776v1-f000{n}" for n in range(1, 5)]


def test_no_figures_article():
    p = parsed("pmc_nxml/PMC2994229.nxml")
    assert (p.figures, p.article.n_figures, p.article.license, p.article.license_group) == ([], 0, None, "other")
