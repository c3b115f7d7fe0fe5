"""Truthful, varied figure captions (with JATS inline markup) for demo images and charts.

A caption only states facts the picture carries (modality, plane, body part, stain, chart
type and the numbers drawn), worded through several templates, so a small CLIP model can
learn image-caption association from the demo and nothing in a caption is invented.
Captions are mixed content (`<italic>`, `<bold>`, `<sub>`, `<sup>`) because real ones are,
and a parser that drops inline text or spacing must fail on the demo too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from biomedica.testing.corpus.charts import DrawnChart
from biomedica.testing.corpus.images import RenderedImage

# One run of inline content: (tag, text). tag None is plain text; otherwise an inline JATS
# element name (italic, bold, sub, sup) or "xref <ref-type> <rid list>" for a citation.
Segment = tuple[str | None, str]


@dataclass(frozen=True)
class RichText:
    """Inline JATS content as runs; `plain` is what a correct parser flattens it to."""

    segments: tuple[Segment, ...]

    @property
    def plain(self) -> str:
        return "".join(text for _tag, text in self.segments)

    def __add__(self, other: RichText) -> RichText:
        return RichText(self.segments + other.segments)


@dataclass(frozen=True)
class Caption:
    """A figure caption: a plain `<title>` and a `<p>` with inline markup."""

    title: str
    body: RichText


def text(*segments: Segment | str) -> RichText:
    """Build RichText from plain strings and (tag, text) pairs."""
    return RichText(tuple((None, s) if isinstance(s, str) else s for s in segments))


def describe(item: RenderedImage | DrawnChart) -> str:
    """A short lower-case noun phrase for the picture, used in captions and in body text."""
    if isinstance(item, DrawnChart):
        return _chart_phrase(item)
    source = item.source
    plane = f"{source.plane} " if source.plane else ""
    return f"{plane}{source.technique} of {source.subject}"


def image_caption(item: RenderedImage, rng: random.Random) -> Caption:
    """Caption for a real image: what, where, how it is displayed, and sometimes where it came from."""
    source = item.source
    title = rng.choice(
        (
            f"{_cap(source.technique)} of {_short_subject(item)}.",
            f"Representative {_plain_modality(item)} image.",
            f"{_cap(_short_subject(item))} on {_plain_modality(item)}.",
            f"{_cap(source.topic)}." if source.topic else f"{_cap(_plain_modality(item))}.",
        )
    )
    body = _technique_text(item, rng) + _detail_text(item, rng)
    if rng.random() < 0.35:
        body = body + text(f" Source image: {source.credit}, distributed with ", ("italic", source.package), ".")
    return Caption(title, body)


def chart_caption(chart: DrawnChart, rng: random.Random) -> Caption:
    """Caption for a drawn chart, stating the chart type and the numbers it shows."""
    if chart.kind == "bar":
        title = rng.choice((f"Mean {chart.variable} by group.", f"{_cap(chart.variable)} across {len(chart.groups)} groups."))
        body = text(
            f"Bar chart of mean {chart.variable} ({chart.unit}) in the {_join(chart.groups)} groups (",
            ("italic", "n"),
            f" = {chart.n} per group). Error bars show the standard deviation.",
        )
    elif chart.kind == "line":
        title = rng.choice((f"Time course of {chart.variable}.", f"{_cap(chart.variable)} over time."))
        body = text(
            f"Line plot of {chart.variable} ({chart.unit}) at {chart.n} time points (time in {chart.x_variable}) "
            f"in the {_join(chart.groups)} groups; points show group means.",
        )
    elif chart.kind == "survival":
        title = rng.choice((f"Kaplan–Meier analysis of {chart.variable}.", f"{_cap(chart.variable)} by group."))
        body = text(
            f"Kaplan–Meier curves of {chart.variable} for the {_join(chart.groups)} groups (",
            ("italic", "n"),
            f" = {chart.n} patients in total); time in months.",
        )
    elif chart.kind == "scatter":
        title = rng.choice(
            (f"Correlation between {chart.x_variable} and {chart.variable}.", f"{_cap(chart.variable)} versus {chart.x_variable}.")
        )
        body = text(
            f"Scatter plot of {chart.variable} ({chart.unit}) against {chart.x_variable} ({chart.x_unit}) in "
            f"{chart.n} participants with a least-squares regression line (Pearson ",
            ("italic", "r"),
            f" = {chart.correlation:.2f}).",
        )
    elif chart.kind == "flow":
        assessed, excluded, randomised, arm_a, arm_b, analysed_a, analysed_b = chart.counts
        title = rng.choice(("Participant flow diagram.", "Flow of participants through the study."))
        body = text(
            f"Flow diagram of participant enrolment: {assessed} assessed for eligibility, {excluded} excluded, "
            f"{randomised} randomised ({arm_a} and {arm_b} allocated to the two arms) and "
            f"{analysed_a} and {analysed_b} analysed.",
        )
    else:
        raise ValueError(f"no caption template for chart kind {chart.kind!r}")
    return Caption(title, body)


def panels_caption(panels: list[RenderedImage | DrawnChart], rng: random.Random) -> Caption:
    """Caption for a figure with several graphics: one bold panel letter and description each."""
    title = rng.choice(("Multimodal imaging findings.", "Representative images.", "Imaging overview."))
    runs: list[Segment | str] = []
    for index, panel in enumerate(panels):
        letter = chr(ord("A") + index)
        runs += [("(" if index == 0 else " ("), ("bold", letter), f") {_cap(describe(panel))}."]
    return Caption(title, text(*runs))


def _technique_text(item: RenderedImage, rng: random.Random) -> RichText:
    source = item.source
    plane = f"{source.plane} " if source.plane else ""
    where = ""
    if source.plane in ("axial", "coronal", "sagittal"):
        where = f" in the {source.plane} plane"
    elif source.plane:
        where = f" ({source.plane} view)"
    sentence = _cap(
        rng.choice(
            (
                f"{plane}{source.technique} image of {source.subject}.",
                f"representative {plane}{source.technique} image of {source.subject}.",
                f"typical {plane}{source.technique} image of {source.subject}.",
                f"{plane}{source.technique} showing {source.subject}.",
                f"{source.technique} of {source.subject}{where}.",
            )
        )
    )
    if "T1-weighted" in sentence and rng.random() < 0.5:
        before, after = sentence.split("T1-weighted", 1)
        return text(f"{before}T", ("sub", "1"), f"-weighted{after}")  # flattens to "T1-weighted"
    return text(sentence)


def _detail_text(item: RenderedImage, rng: random.Random) -> RichText:
    source, window = item.source, item.window
    if window is not None:
        return text(f" Displayed in a {window.name} window (level {window.level} HU, width {window.width} HU).")
    if source.modality == "fundus":
        return text(" ", ("italic", "In vivo"), " photograph of the ocular fundus.")
    if source.modality == "immunohistochemistry":
        return text(" ", ("italic", "Ex vivo"), " tissue section; brown, DAB; blue, haematoxylin.")
    if source.modality == "microscopy":
        return text(
            " Label-free image retrieved from a digital hologram ", ("italic", "in vitro"), "; original pixel spacing 0.107 µm."
        )
    if source.modality == "ultrasound" and item.frame is not None:
        return text(f" Single frame (frame {item.frame + 1}) of a cine loop.")
    if source.modality == "nuclear_medicine":
        return text(" Planar image after injection of a bone-seeking radiotracer.")
    if source.modality in ("ct", "mri"):
        return text(rng.choice(("", " Single representative slice.")))
    return text("")


def _chart_phrase(chart: DrawnChart) -> str:
    return {
        "bar": f"a bar chart of mean {chart.variable} by group",
        "line": f"a line plot of {chart.variable} over time",
        "survival": f"Kaplan–Meier curves of {chart.variable}",
        "scatter": f"a scatter plot of {chart.variable} against {chart.x_variable}",
        "flow": "a participant flow diagram",
    }[chart.kind]


def _plain_modality(item: RenderedImage) -> str:
    return {
        "ct": "CT",
        "mri": "MRI",
        "xray": "radiography",
        "ultrasound": "ultrasound",
        "nuclear_medicine": "bone scintigraphy",
        "fundus": "fundus photography",
        "immunohistochemistry": "immunohistochemistry",
        "microscopy": "phase microscopy",
    }.get(item.source.modality, item.source.modality)


def _short_subject(item: RenderedImage) -> str:
    # The part before any qualifying clause: "colonic glands with FHL2 ..." -> "colonic glands".
    subject = item.source.subject
    for cut in (" with ", " in a ", " at the level ", " in an "):
        subject = subject.split(cut, 1)[0]
    return subject


def _cap(phrase: str) -> str:
    return phrase[:1].upper() + phrase[1:] if phrase else phrase


def _join(items: tuple[str, ...]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
