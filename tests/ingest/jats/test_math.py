"""Readable formulas and caption_tex: goldens on every fixture caption with MathML or tex-math, and the rules."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from biomedica.ingest.jats import parse_articles
from biomedica.ingest.jats.mathml import mathml_tex, readable_mathml, readable_tex, script_text
from biomedica.ingest.jats.text import tex_text
from biomedica.records import FigureRecord

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures"
MML = 'xmlns="http://www.w3.org/1998/Math/MathML"'


@cache
def figures(relative: str) -> dict[str, FigureRecord]:
    result = parse_articles((FIXTURES / relative).read_bytes(), relative)
    [article] = result.articles
    return {f.fig_id: f for f in article.figures}


# every caption of the fixtures that holds MathML or tex-math (found by scanning all of them), with the
# formula as the caption now reads it and as caption_tex keeps it
CAPTION_FORMULAS = [
    ("pmc_nxml/PMC13170065.nxml", "rcm70104-fig-0004",
     "function log CV = \u22120.5 log Frequency + 2.",
     "function $\\log\\mathrm{CV}=-0.5\\log\\text{Frequency}+2$."),
    ("pmc_nxml/PMC7417471.nxml", "Fig6",
     "5 mmol L\u207b\u00b9[Fe(CN)\u2086]^{3-/4-} solution",
     "5 mmol ${\\text{L}}^{ - 1} [{\\text{Fe}}\\left( {{\\text{CN}})_{6} } \\right]^{3 - /4 - }$ solution"),
    ("pmc_nxml/elife05502.nxml", "fig8",
     ("d(x, t = 0) = D_o exp{\u2212(1/2)(2/l_x)\u00b2(x \u2212 2/l_x)\u00b2}. Throughout the text D_o = 0.3, except in "
     "the twinning figure (Box 1), where D_o = 1 was used"),
     ("d(x, t = 0) = $D_o\\exp\\{-\\frac{1}{2}{(2/l_x)}^2{(x-2/l_x)}^2\\}$. Throughout the text $D_o=0.3$, except in "
     "the twinning figure (Box 1), where $D_o=1$ was used")),
    ("pmc_nxml/elife05502.nxml", "fig9",
     "Initial amplitudes of NF-\u03baB/Dorsal are D_o = 0.15, 0.3, 1 from left to right",
     "Initial amplitudes of NF-\u03baB/Dorsal are $D_o=0.15,0.3,1$ from left to right"),
    ("pmc_nxml/elife05502.nxml", "fig11",
     ("10%; d(x, t = 0) = exp{\u2212(5\u00b2/(2(1 + 0.1 sin(\u03c0y/l_y))\u00b2))(x \u2212 2/l_x)\u00b2}"
     "(1 + 0.1 sin(\u03c0y/l_y)), and decays"),
     ("10%; $d(x,t=0)=\\exp\\{-\\frac{5^2}{2{(1+0.1\\sin(\\pi y/l_y))}^2}{(x-2/l_x)}^2\\}"
     "(1+0.1\\sin(\\pi y/l_y))$, and decays")),
    ("pmc_nxml/elife05502.nxml", "fig12",
     ("at zero BMP, \u03b7_s\u00af. (right) The same data are plotted against log(d) using "
     "\u03b7_s\u00af(d) \u2261 (\u03b7\u2080 + \u03b7\u2081d/d\u2080)/(1 + d/d\u2080). The homogeneous"),
     ("at zero BMP, $\\bar{\\eta_s}$. (right) The same data are plotted against log(d) using "
     "$\\bar{\\eta_s}(d)\\equiv\\frac{\\eta_0+\\eta_1d/d_0}{1+d/d_0}$. The homogeneous")),
]  # fmt: skip


@pytest.mark.parametrize(("relative", "fig_id", "readable", "tex"), CAPTION_FORMULAS)
def test_fixture_caption_formulas(relative, fig_id, readable, tex):
    figure = figures(relative)[fig_id]
    assert readable in figure.caption
    assert tex in figure.caption_tex
    # the text around the formulas is the same in both
    assert figure.caption_tex.split("$")[0] == figure.caption[: len(figure.caption_tex.split("$")[0])]
    assert "\\" not in figure.caption and "documentclass" not in figure.caption_tex


def test_captions_without_formulas_have_no_caption_tex():
    for relative in ("pmc_nxml/PMC13170065.nxml", "pmc_nxml/elife05502.nxml", "pmc_nxml/PMC3166277.nxml"):
        with_math = {fig_id for rel, fig_id, _, _ in CAPTION_FORMULAS if rel == relative}
        for fig_id, figure in figures(relative).items():
            assert (figure.caption_tex is not None) == (fig_id in with_math), fig_id


def _math(body: str) -> etree._Element:
    return etree.fromstring(f"<math {MML}>{body}</math>")


LETTERS = "".join(f"<mi>{c}</mi>" for c in "Total")


@pytest.mark.parametrize(
    ("body", "readable", "tex"),
    [
        # the examples: identifiers in one row run together, chemical formulas read as written
        ("<mrow><mi>C</mi><msub><mi>O</mi><mn>2</mn></msub></mrow>", "CO\u2082", "CO_2"),
        ("<mrow><mi>C</mi><mi>D</mi><msub><mi>E</mi><mrow><mi>N</mi><mi>M</mi></mrow></msub></mrow>", "CDE_NM",
         "CDE_{NM}"),
        (f"<mrow><mi>C</mi><msubsup><mi>O</mi><mn>2</mn><mrow>{LETTERS}</mrow></msubsup></mrow>", "CO\u2082^Total",
         "CO_2^{Total}"),
        # per-letter identifiers (the "l o g 2" of the issue) and word tokens
        ("<mrow><mi>l</mi><mi>o</mi><mi>g</mi><mn>2</mn><mo>(</mo><mi>x</mi><mo>)</mo></mrow>", "log2(x)",
         "log2(x)"),
        ("<mrow><msub><mi>log</mi><mn>2</mn></msub><mi>x</mi></mrow>", "log\u2082 x", "\\log_2x"),
        ("<mrow><mn>2</mn><mi>x</mi><mo>+</mo><mn>0.1</mn><mi>sin</mi><mi>y</mi></mrow>", "2x + 0.1 sin y",
         "2x+0.1\\sin y"),
        # scripts: Unicode where every character has one, else _/^ bare for one token, braces otherwise
        ("<msup><mi>Ca</mi><mrow><mn>2</mn><mo>+</mo></mrow></msup>", "Ca\u00b2\u207a", "\\mathrm{Ca}^{2+}"),
        ("<msup><mn>10</mn><mrow><mo>\u2212</mo><mn>3</mn></mrow></msup>", "10\u207b\u00b3", "{10}^{-3}"),
        ("<msub><mi>x</mi><mrow><mi>i</mi><mo>+</mo><mn>1</mn></mrow></msub>", "x_{i+1}", "x_{i+1}"),
        ("<msub><mi>V</mi><mi>max</mi></msub>", "V_max", "V_\\max"),
        # operators spaced, signs not, kept as written
        (("<mrow><mi>a</mi><mo>\u00b1</mo><mi>b</mi><mo>\u2264</mo><mo>\u2212</mo><mn>1</mn><mo>\u00d7</mo><mi>c</mi>"
         "</mrow>"), "a \u00b1 b \u2264 \u22121 \u00d7 c", "a\\pm b\\leq-1\\times c"),
        ("<mrow><mo>(</mo><mi>a</mi><mo>+</mo><mi>b</mi><mo>)</mo><mo>+</mo><mi>c</mi></mrow>", "(a + b) + c",
         "(a+b)+c"),
        ("<msup><mrow><mi>a</mi><mo>+</mo><mi>b</mi></mrow><mn>2</mn></msup>", "(a + b)\u00b2", "{a+b}^2"),
        ("<mfrac><mn>1</mn><mn>2</mn></mfrac>", "1/2", "\\frac{1}{2}"),
    ],
)  # fmt: skip
def test_mathml_rules(body, readable, tex):
    math = _math(body)
    assert readable_mathml(math) == readable
    assert mathml_tex(math) == tex


def test_tex_annotation_is_the_tex():
    math = _math(
        "<semantics><mrow><mi>x</mi></mrow><annotation encoding='application/x-tex'>x_{\\rm a}</annotation></semantics>"
    )
    assert (readable_mathml(math), mathml_tex(math)) == ("x", "x_{\\rm a}")


def test_script_text():
    assert script_text("_", "2") == ("\u2082", False)
    assert script_text("^", "2+") == ("\u00b2\u207a", False)
    assert script_text("_", "on") == ("_on", True)
    assert script_text("^", "3-/4-") == ("^{3-/4-}", False)
    assert script_text("_", " ") == ("", False)


@pytest.mark.parametrize(
    ("tex", "readable"),
    [
        ("\\documentclass{minimal}\\begin{document}$$\\mathrm{CO}_{2}$$\\end{document}", "CO\u2082"),
        ("{\\text{L}}^{ - 1} [{\\text{Fe}}\\left( {{\\text{CN}})_{6} } \\right]^{3 - /4 - }",
         "L\u207b\u00b9 [Fe(CN)\u2086]^{3-/4-}"),
        ("\\frac{a+b}{2} \\leq \\alpha^{2} \\times 10^{-3}", "(a+b)/2 \u2264 \u03b1\u00b2 \u00d7 10\u207b\u00b3"),
        ("E_{NM} = \\sqrt{x}", "E_NM = \u221a(x)"),
        ("37^\\circ\\mathrm{C}", "37\u00b0C"),
        ("\\mathcal{L}(\\theta)", "L(\u03b8)"),
        ("\\unknowncommand{x}", "\\unknowncommand{x}"),  # left as written
    ],
)  # fmt: skip
def test_readable_tex(tex, readable):
    assert readable_tex(tex_text(tex)) == readable
