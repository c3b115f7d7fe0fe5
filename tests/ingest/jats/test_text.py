"""Mixed-content flattening, TeX unwrapping and MathML linearisation."""

from __future__ import annotations

from lxml import etree

from biomedica.ingest.jats.text import (
    PROSE_SKIP,
    ArticleText,
    block_lines,
    flatten,
    formula_tex,
    formula_text,
    mathml_text,
    tex_text,
)
from biomedica.ingest.jats.xmlload import parse_xml

MML = 'xmlns:mml="http://www.w3.org/1998/Math/MathML"'


def element(xml: str) -> etree._Element:
    return parse_xml(xml.encode(), "test.xml")


def test_inline_elements_join_without_spaces():
    p = element("<p>Growth of <italic>E. coli</italic> at 37<sup>o</sup>C (<xref rid='F1'>Fig. 1</xref>).</p>")
    assert flatten(p) == "Growth of E. coli at 37oC (Fig. 1)."


def test_block_elements_are_separated_and_whitespace_collapsed():
    caption = element(
        "<caption><title>Title</title><p>First\n   para.</p><p>Second</p>"
        "<list><list-item><p>one</p></list-item><list-item><p>two</p></list-item></list></caption>"
    )
    assert flatten(caption) == "Title First para. Second one two"
    assert flatten(caption, frozenset({"title"})) == "First para. Second one two"


def test_table_cells_are_separated():
    table = element("<table><tr><td>a</td><td>b</td></tr><tr><th>c</th></tr></table>")
    assert flatten(table) == "a b c"


def test_graphics_and_object_ids_are_dropped():
    p = element(
        '<p xmlns:xlink="http://www.w3.org/1999/xlink">see <inline-graphic xlink:href="x.gif"/>here'
        "<object-id>10.1/x</object-id></p>"
    )
    assert flatten(p) == "see here"


def test_space_before_comma_from_pretty_printing_is_removed():
    aff = element("<aff><addr-line>\n<named-content>Dept</named-content>\n</addr-line>, <institution>Uni</institution></aff>")
    assert flatten(aff) == "Dept, Uni"


def test_html_entities_translate():
    p = element('<!DOCTYPE p PUBLIC "-//NLM//DTD JATS" "JATS-archivearticle1.dtd"><p>a&nbsp;b&ndash;c</p>')
    assert flatten(p) == "a b\u2013c"


def test_undefined_entity_next_to_internal_subset_still_parses():
    p = element('<!DOCTYPE p [<!ENTITY x "y">]><p>a&nbsp;b</p>')
    assert flatten(p) == "a b"


def test_external_entities_are_never_resolved():
    p = element('<!DOCTYPE p [<!ENTITY secret SYSTEM "file:///etc/passwd">]><p>a &secret;c</p>')
    assert flatten(p) == "a c"


def test_tex_wrapper_is_stripped_to_the_math():
    tex = (
        "\\documentclass[12pt]{minimal}\n\\usepackage{amsmath}\n\\setlength{\\oddsidemargin}{-69pt}\n"
        "\\begin{document}$${\\text{T}}_{\\text{g}}$$\\end{document}"
    )
    assert tex_text(tex) == "{\\text{T}}_{\\text{g}}"
    assert tex_text("$x^2$") == "x^2"
    assert tex_text("\\[a+b\\]") == "a+b"


def test_formula_reads_mathml_alternative_and_keeps_tex_for_tex_mode():
    # the shape of PMC7417471's inline formulas: readable text from the MathML, TeX from the tex-math
    formula = element(
        f"<inline-formula {MML} xmlns:xlink='http://www.w3.org/1999/xlink'><alternatives>"
        "<tex-math>\\documentclass{minimal}\\begin{document}$$a$$\\end{document}</tex-math>"
        "<mml:math><mml:mi>b</mml:mi></mml:math><inline-graphic xlink:href='i.gif'/></alternatives></inline-formula>"
    )
    assert formula_text(formula) == "b"
    assert formula_tex(formula) == "a"


def test_tex_only_formula_is_made_readable():
    formula = element(
        "<inline-formula><tex-math>\\documentclass{minimal}\\begin{document}$\\mathrm{CO}_{2}$\\end{document}"
        "</tex-math></inline-formula>"
    )
    assert formula_text(formula) == "CO₂"
    assert formula_tex(formula) == "\\mathrm{CO}_{2}"


def test_mathml_alttext_only_when_mathml_renders_nothing():
    math = element(f"<mml:math {MML} alttext='x^{{2}}'><mml:msup><mml:mi>y</mml:mi><mml:mn>3</mml:mn></mml:msup></mml:math>")
    assert mathml_text(math) == "y³"
    empty = element(f"<mml:math {MML} alttext='x^{{2}}'><mml:mphantom><mml:mi>y</mml:mi></mml:mphantom></mml:math>")
    assert mathml_text(empty) == "x^{2}"


def test_mathml_linearisation():
    math = element(
        f"<mml:math {MML}><mml:mrow>"
        "<mml:msub><mml:mi>x</mml:mi><mml:mi>i</mml:mi></mml:msub><mml:mo>+</mml:mo>"
        "<mml:msup><mml:mi>y</mml:mi><mml:mn>2</mml:mn></mml:msup><mml:mo>=</mml:mo>"
        "<mml:mfrac><mml:mi>a</mml:mi><mml:mrow><mml:mi>b</mml:mi><mml:mo>+</mml:mo><mml:mn>1</mml:mn></mml:mrow></mml:mfrac>"
        "<mml:mo>\u2062</mml:mo><mml:msqrt><mml:mi>z</mml:mi></mml:msqrt>"
        "<mml:msubsup><mml:mi>k</mml:mi><mml:mi>on</mml:mi><mml:mn>2</mml:mn></mml:msubsup>"
        "</mml:mrow></mml:math>"
    )
    assert mathml_text(math) == "x_i + y² = (a/(b + 1))√(z)k_on²"


def test_mathml_words_do_not_merge():
    # PMC13170065 figure 4: log CV = −0.5 log Frequency + 2
    math = element(
        f"<mml:math {MML}><mml:mi>log</mml:mi><mml:mi>CV</mml:mi><mml:mo>=</mml:mo><mml:mo>\u2212</mml:mo>"
        "<mml:mn>0.5</mml:mn><mml:mi>log</mml:mi><mml:mtext>Frequency</mml:mtext><mml:mo>+</mml:mo><mml:mn>2</mml:mn></mml:math>"
    )
    assert mathml_text(math) == "log CV = \u22120.5 log Frequency + 2"


def test_mathml_in_namespaced_document_is_read_by_local_name():
    # OAI-PMH records: every element is namespaced, and MathML keeps its own namespace
    root = element(
        f'<article xmlns="https://jats.nlm.nih.gov/ns/archiving/1.3/" {MML}><p>v = '
        "<inline-formula><mml:math><mml:msub><mml:mi>v</mml:mi><mml:mn>0</mml:mn></mml:msub></mml:math></inline-formula>"
        "</p></article>"
    )
    assert flatten(root.find("p")) == "v = v₀"


def test_block_lines_keep_section_titles_and_skip_floats():
    body = element(
        "<body><sec><label>1.</label><title>Intro</title><p>Text <fig id='F1'><caption><p>cap</p></caption></fig>"
        "more.</p><table-wrap><caption><p>tab</p></caption></table-wrap></sec>"
        "<sec><title>Methods</title><list><list-item><p>step</p></list-item></list></sec></body>"
    )
    assert block_lines(body) == ["1. Intro", "Text more.", "Methods", "step"]


def test_article_text_fast_path_matches_full_flattener():
    root = element(
        f"<article {MML}><body><p>Plain <italic>E. coli</italic> text <xref rid='F1'>1</xref>.</p>"
        "<p>With <inline-formula><mml:math><mml:mi>x</mml:mi></mml:math></inline-formula> math.</p>"
        "<p>Float <fig><caption><p>no</p></caption></fig>after.</p></body></article>"
    )
    article_text = ArticleText(root)
    paragraphs = list(root.iter("p"))
    for p in paragraphs:
        assert article_text.prose(p) == flatten(p, PROSE_SKIP)
    assert [article_text.prose(p) for p in paragraphs[:3]] == [
        "Plain E. coli text 1.",
        "With x math.",
        "Float after.",
    ]
