"""Caption splitting on real PMC captions (excerpts copied from ../shared/fixtures, shortened)."""

import json
from pathlib import Path

import pytest

from biomedica.curate.subfigures.captions import caption_letters, split_caption
from biomedica.ingest.jats import parse_articles

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures"


def parts(caption):
    return [(p.labels, p.text) for p in split_caption(caption).parts]


def test_parenthesised_markers_and_lead():
    caption = ("Expression pattern of OsHsfC1a and OsHsfC1b under different treatments. (A) Relative expression "
               "in Nipponbare roots. (B) Relative expression in Nipponbare leaves. (C) Insertion site of T-DNA.")
    split = split_caption(caption)
    assert split.lead == "Expression pattern of OsHsfC1a and OsHsfC1b under different treatments."
    assert parts(caption) == [(("A",), "Relative expression in Nipponbare roots."),
                              (("B",), "Relative expression in Nipponbare leaves."),
                              (("C",), "Insertion site of T-DNA.")]
    assert split.labels() == ["A", "B", "C"]
    assert split.text_for("b") == split.lead + " Relative expression in Nipponbare leaves."
    assert split.text_for("D") is None


def test_ranges_groups_and_repeats_add_text():
    caption = ("SDFZ‐8 synergizes with anti‐PD‐L1. (A and B) The curves of tumor volumes (A) and body weights (B) "
               "of mice. (C and D) The weights (C) and images (D) of tumors. (E) Tumor volume curves. "
               "(B–E) Data are mean ± SEM.")
    got = parts(caption)
    # in-sentence references "(A)", "(B)" stay in the text: they continue no sequence
    assert got[0] == (("A", "B"), "The curves of tumor volumes (A) and body weights (B) of mice.")
    assert got[1][0] == ("C", "D")
    assert got[3] == (("B", "C", "D", "E"), "Data are mean ± SEM.")
    split = split_caption(caption)
    assert split.text_for("E") == "SDFZ‐8 synergizes with anti‐PD‐L1. Tumor volume curves. Data are mean ± SEM."
    assert split.text_for("A") == "SDFZ‐8 synergizes with anti‐PD‐L1. " + got[0][1]


def test_lower_case_range_with_unicode_hyphen_and_paren_groups():
    caption = ("AF3 predicted models of plant LOXs with OA. (a,b) Five predictions of GmLOX1. "
               "(c,d) Similar AF3 predictions were made for AtLOX1. (e‐f) Details.")
    assert [p[0] for p in parts(caption)] == [("a", "b"), ("c", "d"), ("e", "f")]
    caption = "Logarithmic expression. (A–B, E–F) Gene expression for active (A, E) genes. (C–D, G–H) Box plots."
    assert [p[0] for p in parts(caption)] == [("A", "B", "E", "F"), ("C", "D", "G", "H")]


def test_enumeration_inside_a_sentence_splits():
    caption = ("LAP‐MALDI mass spectra of PPG 4000 (1 mg/mL) showing (A) sodiated MS profile below m/z 800; "
               "(B) MS/MS spectrum at m/z 777; (C) lithiated MS profile; and (D) MS/MS spectrum at m/z 761.")
    split = split_caption(caption)
    assert split.lead == "LAP‐MALDI mass spectra of PPG 4000 (1 mg/mL) showing"
    assert split.labels() == ["A", "B", "C", "D"]
    assert split.text_for("A") == "LAP‐MALDI mass spectra of PPG 4000 (1 mg/mL) showing sodiated MS profile below m/z 800;"
    caption = "The comparison of fragmentation at different collision energies: (a) at 10 eV and (b) at 25 eV."
    assert parts(caption) == [(("a",), "at 10 eV and"), (("b",), "at 25 eV.")]
    caption = "Distribution of different bacterial groups within (a) non-contaminated and (b) contaminated samples"
    assert parts(caption) == [(("a",), "non-contaminated and"), (("b",), "contaminated samples")]


def test_title_without_period_then_marker():
    caption = ("High-throughput screening strategy and validation (A) Schematic illustration of the HTS strategy. "
               "(B) A deep neural network can be used as an efficient classifier.")
    split = split_caption(caption)
    assert split.lead == "High-throughput screening strategy and validation"
    assert split.labels() == ["A", "B"]
    caption = "Visual feature extraction (a) Visualization of 68 facial landmarks (b) Examples of few action units"
    assert parts(caption) == [(("a",), "Visualization of 68 facial landmarks"), (("b",), "Examples of few action units")]


@pytest.mark.parametrize(
    "caption",
    [
        # post-positioned references: the label follows its text
        "Patient‐reported T‐scores for PNP (A), and NNP (B) patients show differences in fatigue.",
        "Dendritic cell-derived exosomes TEM images (a), size (b), and zeta potential (c) of exosomes measured by DLS.",
        "Dietary exposure to PBDE-47 altered transcripts levels for TSHβ (A) and GPHα (B) in the pituitary gland.",
        "Fed-batch decolorization extents (a) and % COD reduction (b) obtained during repetitive runs.",
        "Expression of twi (A, E, I, M, Q), sim (B, F, J, N, R) and sog (C, G, K, O, S) in wild type embryos (A–C).",
        "One-step RT-PCR was performed to study the expression of Arr and DFz2 in S2 cells (A).",
        # letters inside names, units, statistics, ratios, other figures
        "Kaplan–Meier curves (n = 96) of a vitamin D cohort; IL-6, CD4, p53 and HER2 in A549 cells (P < 0.05).",
        "Absorbance (a.u.) of type B cells relative to (Fig. 1A) and the (A/B) ratio; see Figure 2A.",
        "Rosette colony development in S. rosetta is regulated by A. machipongonensis and E. coli.",
        "Samples from spleen (-S: spleen, -E: ear, -B:Blood) of (S)-ibuprofen treated mice.",
        "A diagrammatic intuition for (3) illustrates that the probability of derived allele frequency x is small.",
        "Nanomedicine strategies: ligands to direct nanocarriers (left), incorporated bsAbs (middle), mRNA (right).",
        "Abbreviations: A, anterior; P, posterior; D, dorsal.",
        "",
        None,
    ],
)
def test_references_and_names_are_not_parts(caption):
    split = split_caption(caption)
    assert split.parts == ()
    assert split.labels() == []


def test_references_still_count_as_named_panels():
    assert caption_letters("Exosomes TEM images (a), size (b), and zeta potential (c) by DLS.") == ["a", "b", "c"]
    assert caption_letters("Kaplan–Meier curves (n = 96) of a vitamin D cohort.") == []
    assert caption_letters("Helices (a1–a3) in (A). Expression at (P10 and P17). (B) Data.") == ["a", "b"]


def test_bare_letter_styles():
    caption = ("Inhibition of Lip-HSL proteins by MmPPOX. A, SDS-PAGE profile of the 9 Lip-HSL proteins. "
               "B, Residual activities of LipC, LipI, LipU, LipY and Cut6.")
    assert [p[0] for p in parts(caption)] == [("A",), ("B",)]
    caption = ("Rosette colony development in S. rosetta is regulated by A. machipongonensis. A. The original "
               "culture of S. rosetta forms rosette colonies rarely. B. Treatment with antibiotics. (Representative "
               "cells indicated by arrows.) C. Addition of A. machipongonensis to RCA cultures.")
    split = split_caption(caption)
    assert split.lead == "Rosette colony development in S. rosetta is regulated by A. machipongonensis."
    assert split.labels() == ["A", "B", "C"]
    assert split.text_for("C").endswith("Addition of A. machipongonensis to RCA cultures.")
    caption = "Arrhenius plots for the rate constants, k cat, of A) GmLOX1 and B) AtLOX1 reactions."
    assert parts(caption) == [(("A",), "GmLOX1 and"), (("B",), "AtLOX1 reactions.")]
    caption = "Summary of the system: a) feature preparation steps. b) using normalised feature vectors"
    assert [p[0] for p in parts(caption)] == [("a",), ("b",)]
    caption = "Chemical structures of A, THL and B, MmPPOX. The proposed mechanism involves the cycle."
    assert parts(caption)[1] == (("B",), "MmPPOX. The proposed mechanism involves the cycle.")


def test_letter_space_style_and_articles():
    caption = ("a Schematic representation of the fabrication of EE2 biosensor. b Cyclic voltammetry measurements. "
               "c Nyquist plots of EIS for (a) FTO, (b) PVP nanofibers. d Amperometric response")
    split = split_caption(caption)
    assert split.labels() == ["a", "b", "c", "d"]
    assert split.text_for("c") == "Nyquist plots of EIS for (a) FTO, (b) PVP nanofibers."
    caption = ("The photothermal effect. a IR camera image of the LM. Light-induced b temperature changes and "
               "c ionic current changes of the LM. d IR camera image of the HM.")
    assert [p[0][0] for p in parts(caption)] == ["a", "b", "c", "d"]
    # "A 25-year-old ..." is an article; the label is the last "A" before "B"
    caption = ("A 25-year-old female patient with known CD. A CT-scan was performed. A Coronal image shows the "
               "abscess (arrowheads). B Axial image again shows the abscess. C Coronal image shows the fistula.")
    split = split_caption(caption)
    assert split.lead == "A 25-year-old female patient with known CD. A CT-scan was performed."
    assert parts(caption)[0] == (("A",), "Coronal image shows the abscess (arrowheads).")
    caption = "A A 38-year-old female with vomiting. Coronal image. B A 12-year-old male patient."
    assert parts(caption) == [(("A",), "A 38-year-old female with vomiting. Coronal image."),
                              (("B",), "A 12-year-old male patient.")]
    caption = "USP9x regulates tumor growth in lung cancer.A Knockdown efficiency of shRNA. B Clonogenicity. C Cell growth"
    assert split_caption(caption).labels() == ["A", "B", "C"]


def test_panel_words_and_positions():
    caption = "Controls and treated cells. Panels A and B show the controls. Panel C shows treated cells."
    assert parts(caption) == [(("A", "B"), "show the controls."), (("C",), "shows treated cells.")]
    caption = ("LAP‐MALDI plots for PEG 3000. Panel (A) data were acquired at 414 m/s. Panels (B)–(F) data were "
               "acquired using the IMS parameters, with (A/B) 100‐mM NaCl, (C) 100‐mM NaCl and 20% NBA.")
    split = split_caption(caption)
    assert [p.labels for p in split.parts] == [("A",), ("B", "C", "D", "E", "F")]
    caption = "(E) Quantification of O2AST from panel A. (F) Model. Tumors as in (B) are shown."
    assert split_caption(caption).labels() == ["E", "F"]
    caption = ("The probabilistic model. Left: the frequency distribution of fragments. Right: black dots represent "
               "residuals.")
    assert parts(caption) == [(("left",), "the frequency distribution of fragments."),
                              (("right",), "black dots represent residuals.")]
    caption = "Stability of the fixed point. (left) w against diffusion. (right) The same data against log(d)."
    assert split_caption(caption).labels() == ["left", "right"]
    caption = "miR-122 inhibits PRKRA. (A upper panel) The target site. (A lower panel) Predicted duplex. (B) Reporter."
    assert split_caption(caption).labels() == ["A", "B"]
    assert split_caption(caption).text_for("A") == "miR-122 inhibits PRKRA. The target site. Predicted duplex."
    # positions inside a lettered caption are sub-panels, not parts
    caption = "Crystal structure. (A) Crystal lattice. Left: mutant. Right: WT. (B) Superposition."
    assert split_caption(caption).labels() == ["A", "B"]


def test_numbers_only_when_the_caption_numbers_its_panels():
    caption = ("Molecular structures of analytes. (1) Nifedipine isomers: nifedipine, m‐nifedipine. "
               "(2) Nifedipine analogues: aranidipine. (3) Deuterium labelled analogues.")
    assert split_caption(caption).labels() == ["1", "2", "3"]
    caption = ("Expressional response. (A) Venn-diagram. (B) Differentially expressed sHSP genes: (1) expression "
               "in roots; (2) expression in control roots.")
    assert split_caption(caption).labels() == ["A", "B"]
    assert split_caption("A diagrammatic intuition for (5) illustrates the probability.").parts == ()


def test_figure_label_is_stripped_and_text_kept_verbatim():
    caption = "Figure 3. Imaging overview. (A)  Immunohistochemistry of colonic glands. (B) Whole-slide view."
    split = split_caption(caption)
    assert split.lead == "Imaging overview."
    assert split.parts[0].text == "Immunohistochemistry of colonic glands."
    assert split_caption("Fig. 2: (a) CT; (b) MRI.").lead == ""
    assert split_caption("(1): Pristine NTs and (2) SEM images of nanofibers").labels() == ["1", "2"]


def test_roman_numerals_and_compound_labels():
    caption = "Pathways. (i) Uptake of glucose. (ii) Glycolysis. (iii) TCA cycle."
    assert split_caption(caption).parts == ()
    caption = "Cell shapes. (A1–A3) Time lapse of one cell. (B) Quantification."
    assert split_caption(caption).labels() == ["A1", "A2", "A3", "B"]


def _real_captions():
    captions = []
    for path in sorted((FIXTURES / "pmc_nxml").glob("*.nxml")) + sorted((FIXTURES / "pmc_wrapped").glob("*.xml")):
        for article in parse_articles(path.read_bytes(), path.name).articles:
            captions += [figure.caption for figure in article.figures]
    for path in sorted((FIXTURES / "images" / "pmc_package_figures").glob("*/PMC*_figures_metadata.json")):
        captions += [item.get("caption") for item in json.loads(path.read_text()) if isinstance(item, dict)]
    return captions


@pytest.mark.skipif(not (FIXTURES / "pmc_nxml").is_dir(), reason="shared fixtures not present")
def test_every_real_caption_splits_into_exact_slices():
    """Invariants on every real fixture caption: parts are verbatim slices, in order, nothing lost."""
    captions = _real_captions()
    assert len(captions) > 300
    split_count = 0
    for caption in captions:
        split = split_caption(caption)
        if not split.parts:
            continue
        split_count += 1
        body = caption.strip()
        position = body.find(split.lead) if split.lead else 0
        assert position >= 0
        for part in split.parts:
            assert part.labels and all(label.strip() for label in part.labels)
            found = body.find(part.text, position)
            assert found >= position, (caption[:80], part)
            position = found + len(part.text)
        assert set(caption_letters(caption)) >= {lab.lower() for lab in split.labels() if len(lab) == 1 and lab.isalpha()}
    assert split_count > 150
