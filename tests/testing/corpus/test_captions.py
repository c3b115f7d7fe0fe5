"""Demo captions: inline markup flattens to the intended text, and facts come from the picture."""

from __future__ import annotations

import random

from biomedica.testing.corpus.captions import chart_caption, describe, image_caption, panels_caption, text
from biomedica.testing.corpus.charts import draw_chart
from biomedica.testing.corpus.images import IMAGE_SOURCES, render_image


def _source(name: str):
    return next(source for source in IMAGE_SOURCES if source.name == name)


def test_rich_text_flattens_without_added_spaces():
    rich = text("Axial T", ("sub", "1"), "-weighted MRI (", ("italic", "n"), " = 3).")
    assert rich.plain == "Axial T1-weighted MRI (n = 3)."
    assert (rich + text(" More.")).plain == "Axial T1-weighted MRI (n = 3). More."


def test_ct_caption_names_technique_subject_and_window():
    rendered = render_image(_source("ct-head"), random.Random(1), 128)
    caption = image_caption(rendered, random.Random(2))
    plain = caption.body.plain
    assert "non-contrast CT" in plain and "the head" in plain
    window = rendered.window
    assert f"{window.name} window (level {window.level} HU, width {window.width} HU)" in plain
    assert caption.title.endswith(".")


def test_mri_caption_sometimes_uses_a_subscript_but_reads_the_same():
    source = _source("mri-shoulder")
    plains, tags = set(), set()
    for seed in range(12):
        caption = image_caption(render_image(source, random.Random(seed), 64), random.Random(seed))
        plain = caption.body.plain
        plains.add("T1-weighted spin-echo MRI" in plain and "the shoulder joint and proximal humerus" in plain)
        tags |= {tag for tag, _ in caption.body.segments if tag}
    assert plains == {True}
    assert "sub" in tags


def test_every_source_caption_states_its_subject():
    for source in IMAGE_SOURCES:
        caption = image_caption(render_image(source, random.Random(0), 64), random.Random(0))
        assert source.subject in caption.body.plain
        assert source.technique.lower() in caption.body.plain.lower()


def test_chart_captions_state_the_drawn_numbers():
    scatter = draw_chart("scatter", random.Random(4), 128)
    assert f"Pearson r = {scatter.correlation:.2f}" in chart_caption(scatter, random.Random(0)).body.plain
    flow = draw_chart("flow", random.Random(4), 128)
    assessed, excluded = flow.counts[:2]
    assert f"{assessed} assessed for eligibility, {excluded} excluded" in chart_caption(flow, random.Random(0)).body.plain
    bar = draw_chart("bar", random.Random(4), 128)
    plain = chart_caption(bar, random.Random(0)).body.plain
    assert plain.startswith(f"Bar chart of mean {bar.variable} ({bar.unit})") and f"n = {bar.n} per group" in plain
    survival = draw_chart("survival", random.Random(4), 128)
    assert "Kaplan–Meier curves of" in chart_caption(survival, random.Random(0)).body.plain


def test_panels_caption_letters_each_graphic():
    panels = [render_image(_source("xray-leg"), random.Random(0), 64), draw_chart("line", random.Random(0), 64)]
    caption = panels_caption(panels, random.Random(0))
    assert caption.body.plain == f"(A) {describe(panels[0])[:1].upper()}{describe(panels[0])[1:]}. (B) " + (
        f"{describe(panels[1])[:1].upper()}{describe(panels[1])[1:]}."
    )
    assert [run for tag, run in caption.body.segments if tag == "bold"] == ["A", "B"]
