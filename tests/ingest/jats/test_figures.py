"""Which graphics become samples, how xref rids resolve to figures, and figure permissions."""

from __future__ import annotations

from biomedica.ingest.jats import parse_articles

XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink"'


def article_xml(body: str, permissions: str = "") -> bytes:
    return (
        f"<article {XLINK} article-type='research-article'><front><article-meta>"
        "<article-id pub-id-type='pmc'>42</article-id><title-group><article-title>T</article-title></title-group>"
        f"<permissions>{permissions}</permissions></article-meta></front><body>{body}</body></article>"
    ).encode()


def figures(body: str, permissions: str = ""):
    result = parse_articles(article_xml(body, permissions), "test.xml")
    assert result.errors == []
    return result.articles[0].figures


def test_only_graphics_whose_nearest_float_is_a_fig_count():
    figs = figures(
        "<p>inline <inline-graphic xlink:href='ig'/></p>"
        "<disp-formula><graphic xlink:href='formula'/></disp-formula>"
        "<chem-struct-wrap><chem-struct><graphic xlink:href='chem'/></chem-struct></chem-struct-wrap>"
        "<table-wrap><graphic xlink:href='table'/></table-wrap>"
        "<supplementary-material><graphic xlink:href='supp'/></supplementary-material>"
        "<fig id='f1'><label>Figure 1</label><caption><p>Cap <inline-formula><graphic xlink:href='in-cap'/>"
        "</inline-formula>.</p></caption><graphic xlink:href='fig1.a'/><graphic xlink:href='fig1.b'/></fig>"
        "<boxed-text><graphic xlink:href='boxed'/><fig id='f2'><graphic xlink:href='fig2'/></fig></boxed-text>"
    )
    assert [(f.key, f.fig_id, f.graphic_href) for f in figs] == [
        ("PMC42_000", "f1", "fig1.a"),
        ("PMC42_001", "f1", "fig1.b"),  # two graphics of one fig: two samples, same fig_id
        ("PMC42_002", "f2", "fig2"),
    ]
    assert figs[0].caption == figs[1].caption == "Cap."


def test_alternatives_take_the_first_non_thumbnail():
    figs = figures(
        "<fig id='f1'><alternatives><graphic content-type='thumb' xlink:href='a.gif'/>"
        "<graphic content-type='image' xlink:href='a.jpg'/><graphic xlink:href='a.tif'/></alternatives></fig>"
    )
    assert [f.graphic_href for f in figs] == ["a.jpg"]


def test_caption_title_joins_with_a_period_only_when_needed():
    figs = figures(
        "<fig id='a'><caption><title>No stop</title><p>Body.</p></caption><graphic xlink:href='a'/></fig>"
        "<fig id='b'><caption><title>Stop.</title><p>Body.</p></caption><graphic xlink:href='b'/></fig>"
        "<fig id='c'><caption><title>Only title</title></caption><graphic xlink:href='c'/></fig>"
    )
    assert [(f.caption_title, f.caption) for f in figs] == [
        ("No stop", "No stop. Body."),
        ("Stop.", "Stop. Body."),
        ("Only title", "Only title"),
    ]


def test_mentions_resolve_groups_supplements_and_inner_ids():
    figs = figures(
        "<p>See <xref ref-type='fig' rid='grp'>Figure 1</xref>.</p>"
        "<p>Supplement <xref ref-type='fig' rid='f1s1'>S1</xref> and <xref ref-type='fig' rid='f1'>1</xref>.</p>"
        "<p>Both <xref ref-type='fig' rid='f1 f2'>1, 2</xref>; again <xref ref-type='fig' rid='f2'>2</xref>.</p>"
        "<p>Panel <xref ref-type='fig' rid='g2'>2B</xref>.</p>"
        "<p>Table <xref ref-type='table' rid='f2'>not a fig xref</xref>.</p>"
        "<fig-group id='grp'><fig id='f1'><caption><p>Main <xref ref-type='fig' rid='f2'>2</xref>.</p></caption>"
        "<graphic xlink:href='f1'/></fig>"
        "<fig id='f1s1' specific-use='child-fig'><graphic xlink:href='f1s1'/></fig></fig-group>"
        "<fig id='f2'><graphic id='g2' xlink:href='f2'/></fig>"
    )
    by_id = {f.fig_id: f.mentions for f in figs}
    assert by_id["f1"] == ["See Figure 1.", "Supplement S1 and 1.", "Both 1, 2; again 2."]
    assert by_id["f1s1"] == ["Supplement S1 and 1."]
    # deduplicated per figure, captions never count, an inner graphic id means its fig
    assert by_id["f2"] == ["Both 1, 2; again 2.", "Panel 2B."]


def test_mention_paragraph_leaves_out_the_float_it_anchors():
    figs = figures(
        "<p>Text (<xref ref-type='fig' rid='f1'>Fig 1</xref>) <fig id='f1'><caption><p>CAPTION</p></caption>"
        "<graphic xlink:href='x'/></fig>continues.</p>"
    )
    assert figs[0].mentions == ["Text (Fig 1) continues."]


def test_figure_permissions_take_the_stricter_group():
    article_license = "<license xlink:href='http://creativecommons.org/licenses/by/4.0/'/>"
    figs = figures(
        "<fig id='own'><graphic xlink:href='a'/><permissions><copyright-statement>© 2010 Publisher</copyright-statement>"
        "</permissions></fig>"
        "<fig id='nc'><graphic xlink:href='b'/><permissions><license xlink:href="
        "'https://creativecommons.org/licenses/by-nc/4.0/'/></permissions></fig>"
        "<fig id='plain'><graphic xlink:href='c'/></fig>",
        permissions=article_license,
    )
    assert [(f.license, f.figure_license, f.license_group) for f in figs] == [
        ("CC BY 4.0", "© 2010 Publisher", "other"),
        ("CC BY 4.0", "CC BY-NC 4.0", "noncommercial"),
        ("CC BY 4.0", None, "commercial"),
    ]


def test_figures_in_floats_group_app_and_sub_article_are_kept_in_document_order():
    data = (
        f"<article {XLINK}><front><article-meta><article-id pub-id-type='doi'>10.1/ab.c</article-id>"
        "</article-meta></front><body><p>x</p></body>"
        "<back><app-group><app><fig id='app1'><graphic xlink:href='app'/></fig></app></app-group></back>"
        "<floats-group><fig id='fl1'><graphic xlink:href='float'/></fig></floats-group>"
        "<sub-article><body><fig id='resp1'><label>Author response image 1.</label>"
        "<graphic xlink:href='resp'/></fig></body></sub-article></article>"
    ).encode()
    [parsed] = parse_articles(data, "t.xml").articles
    assert [(f.key, f.graphic_href, f.fig_label) for f in parsed.figures] == [
        ("DOI-10-1-ab-c_000", "app", None),
        ("DOI-10-1-ab-c_001", "float", None),
        ("DOI-10-1-ab-c_002", "resp", "Author response image 1"),
    ]
    assert (parsed.article.n_figures, parsed.article.n_graphics, parsed.article.dialect) == (3, 3, "publisher")


def test_panels_of_a_captioned_fig_group_share_its_caption_and_label():
    figs = figures(
        "<fig-group id='g1'><label>Figure 3</label><caption><title>Panels</title><p>Left and right.</p></caption>"
        "<fig id='g1a'><label>A</label><graphic xlink:href='a'/></fig>"
        "<fig id='g1b'><graphic xlink:href='b'/></fig></fig-group>"
    )
    assert [(f.fig_id, f.fig_label, f.caption) for f in figs] == [
        ("g1a", "A", "Panels. Left and right."),
        ("g1b", "Figure 3", "Panels. Left and right."),
    ]
