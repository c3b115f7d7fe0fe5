"""Charts and diagrams drawn with Pillow from seeded data, with the facts their captions state.

Real papers are full of plots, so a figure corpus without them teaches a model nothing about
the commonest figure type. Each drawing returns the numbers it drew (group names, the
correlation of the scatter, the counts in the flow diagram), so its caption is true.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

CHART_KINDS = ("bar", "line", "survival", "scatter", "flow")

_PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189))

_BAR_VARIABLES = (
    ("tumour volume", "mm³"),
    ("serum IL-6 concentration", "pg/mL"),
    ("infarct size", "% of left ventricle"),
    ("colony count", "CFU/mL"),
    ("relative mRNA expression", "fold change"),
)
_BAR_GROUPS = (
    ("control", "low dose", "high dose"),
    ("wild type", "knockout", "rescue"),
    ("vehicle", "drug A", "drug B", "drug A + B"),
    ("sham", "ischaemia", "ischaemia + treatment"),
)
_LINE_VARIABLES = (
    ("body weight", "g", "days"),
    ("plasma glucose", "mmol/L", "minutes"),
    ("viral load", "log10 copies/mL", "weeks"),
    ("pain score", "points", "weeks"),
)
_SURVIVAL_ENDPOINTS = ("overall survival", "progression-free survival", "event-free survival")
_SURVIVAL_ARMS = (("standard care", "intervention"), ("low expression", "high expression"), ("placebo", "treatment"))
_SCATTER_PAIRS = (
    ("body mass index", "kg/m²", "systolic blood pressure", "mmHg"),
    ("age", "years", "bone mineral density", "g/cm²"),
    ("tumour diameter", "mm", "standardised uptake value", "SUV"),
    ("HbA1c", "%", "retinal thickness", "µm"),
)


@dataclass(frozen=True)
class DrawnChart:
    """A drawn chart and the facts shown in it."""

    image: Image.Image
    kind: str  # one of CHART_KINDS
    modality: str  # "chart" or "diagram"
    variable: str = ""  # what is measured (bar, line, scatter y), or the survival endpoint
    unit: str = ""
    groups: tuple[str, ...] = ()  # bar/line groups, survival arms
    x_variable: str = ""  # scatter x, or the time unit of a line plot
    x_unit: str = ""
    n: int = 0  # points, patients or participants
    correlation: float = 0.0  # scatter: Pearson r of the drawn points
    counts: tuple[int, ...] = ()  # flow: assessed, excluded, randomised, per-arm, analysed per arm


def draw_chart(kind: str, rng: random.Random, max_side: int) -> DrawnChart:
    """Draw one chart of the given kind at most max_side wide, from data drawn with rng."""
    drawers = {"bar": _bar, "line": _line, "survival": _survival, "scatter": _scatter, "flow": _flow}
    if kind not in drawers:
        raise ValueError(f"unknown chart kind {kind!r}; expected one of {', '.join(CHART_KINDS)}")
    return drawers[kind](rng, max(32, max_side))


def _font(side: int, per_side: int = 22) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at a size that suits the canvas (bitmap fallback without FreeType)."""
    try:
        return ImageFont.load_default(size=max(7, side // per_side))
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


@dataclass(frozen=True)
class _Axes:
    left: int
    top: int
    right: int
    bottom: int

    def x(self, fraction: float) -> float:
        return self.left + fraction * (self.right - self.left)

    def y(self, fraction: float) -> float:
        return self.bottom - fraction * (self.bottom - self.top)


def _canvas(side: int, aspect: float = 0.75) -> tuple[Image.Image, ImageDraw.ImageDraw, _Axes]:
    width, height = side, max(64, int(side * aspect))
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    axes = _Axes(left=int(width * 0.16), top=int(height * 0.08), right=int(width * 0.96), bottom=int(height * 0.82))
    draw.line([(axes.left, axes.top), (axes.left, axes.bottom), (axes.right, axes.bottom)], fill="black", width=1)
    return image, draw, axes


def _y_label(draw: ImageDraw.ImageDraw, axes: _Axes, side: int, text: str) -> None:
    draw.text((2, axes.top - 2), _drawable(text), fill="black", font=_font(side))


def _legend(draw: ImageDraw.ImageDraw, axes: _Axes, side: int, groups: tuple[str, ...]) -> None:
    """Colour keys with group names in the top-right corner of the plot area."""
    font = _font(side, per_side=26)
    line = max(8, side // 24)
    widest = max(draw.textlength(group, font=font) for group in groups)
    left = axes.right - widest - line - 6
    for index, group in enumerate(groups):
        top = axes.top + index * (line + 2)
        draw.rectangle([left, top + 1, left + line - 2, top + line - 1], fill=_PALETTE[index % len(_PALETTE)])
        draw.text((left + line, top), group, fill="black", font=font)


def _wrapped(label: str, width: int = 12) -> str:
    """Break a tick label into lines of about `width` characters at spaces."""
    lines: list[str] = []
    for word in label.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


def _drawable(text: str) -> str:
    """ASCII stand-ins for the unit symbols Pillow's bundled font lacks."""
    return text.replace("²", "2").replace("³", "3").replace("µ", "u")


def _bar(rng: random.Random, side: int) -> DrawnChart:
    variable, unit = rng.choice(_BAR_VARIABLES)
    groups = rng.choice(_BAR_GROUPS)
    means = [rng.uniform(0.25, 0.85) for _ in groups]
    errors = [rng.uniform(0.03, 0.1) for _ in groups]
    image, draw, axes = _canvas(side)
    font = _font(side)
    slot = (axes.right - axes.left) / len(groups)
    for index, (group, mean, error) in enumerate(zip(groups, means, errors)):
        x0, x1 = axes.left + slot * (index + 0.2), axes.left + slot * (index + 0.8)
        draw.rectangle([x0, axes.y(mean), x1, axes.bottom], fill=_PALETTE[index % len(_PALETTE)])
        centre = (x0 + x1) / 2
        draw.line([(centre, axes.y(mean - error)), (centre, axes.y(mean + error))], fill="black")
        draw.line([(centre - 3, axes.y(mean + error)), (centre + 3, axes.y(mean + error))], fill="black")
        draw.multiline_text((x0, axes.bottom + 3), _wrapped(group), fill="black", font=font, spacing=1)
    _y_label(draw, axes, side, unit)
    return DrawnChart(image, "bar", "chart", variable=variable, unit=unit, groups=groups, n=rng.choice((6, 8, 10, 12)))


def _line(rng: random.Random, side: int) -> DrawnChart:
    variable, unit, time_unit = rng.choice(_LINE_VARIABLES)
    groups = rng.choice(_BAR_GROUPS)[: rng.choice((2, 3))]
    n_points = rng.randint(5, 9)
    image, draw, axes = _canvas(side)
    font = _font(side)
    for index, _group in enumerate(groups):
        level, slope = rng.uniform(0.2, 0.5), rng.uniform(-0.04, 0.07)
        points = [
            (axes.x(t / (n_points - 1)), axes.y(min(0.95, max(0.02, level + slope * t + rng.uniform(-0.03, 0.03)))))
            for t in range(n_points)
        ]
        colour = _PALETTE[index % len(_PALETTE)]
        draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    draw.text((axes.right - side // 5, axes.bottom + 3), time_unit, fill="black", font=font)
    _legend(draw, axes, side, groups)
    _y_label(draw, axes, side, unit)
    return DrawnChart(
        image, "line", "chart", variable=variable, unit=unit, groups=groups, x_variable=time_unit, n=n_points
    )


def _survival(rng: random.Random, side: int) -> DrawnChart:
    endpoint = rng.choice(_SURVIVAL_ENDPOINTS)
    arms = rng.choice(_SURVIVAL_ARMS)
    patients_per_arm = rng.randint(20, 60)
    image, draw, axes = _canvas(side)
    font = _font(side)
    for index, _arm in enumerate(arms):
        hazard = rng.uniform(0.03, 0.08) * (1.0 if index == 0 else rng.uniform(0.45, 0.8))
        times = sorted(rng.expovariate(hazard) for _ in range(patients_per_arm))
        at_risk, survival = patients_per_arm, 1.0
        steps = [(axes.x(0), axes.y(1.0))]
        for time in times:
            if time > 60:
                break
            survival *= (at_risk - 1) / at_risk  # Kaplan-Meier step: one event, no censoring
            at_risk -= 1
            x = axes.x(time / 60)
            steps += [(x, steps[-1][1]), (x, axes.y(survival))]
        steps.append((axes.x(1.0), steps[-1][1]))
        draw.line(steps, fill=_PALETTE[index % len(_PALETTE)], width=2)
    draw.text((axes.right - side // 4, axes.bottom + 3), "months", fill="black", font=font)
    _legend(draw, axes, side, arms)
    _y_label(draw, axes, side, "survival")
    return DrawnChart(image, "survival", "chart", variable=endpoint, groups=arms, x_variable="months", n=2 * patients_per_arm)


def _scatter(rng: random.Random, side: int) -> DrawnChart:
    x_name, x_unit, y_name, y_unit = rng.choice(_SCATTER_PAIRS)
    n = rng.randint(25, 70)
    slope = rng.choice((-1, 1)) * rng.uniform(0.3, 0.9)
    xs = [rng.uniform(0.05, 0.95) for _ in range(n)]
    ys = [min(0.98, max(0.02, 0.5 + slope * (x - 0.5) + rng.gauss(0, 0.12))) for x in xs]
    r = _pearson(xs, ys)
    image, draw, axes = _canvas(side)
    font = _font(side)
    for x, y in zip(xs, ys):
        cx, cy = axes.x(x), axes.y(y)
        draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], outline=_PALETTE[0], fill=_PALETTE[0])
    fit_slope, fit_intercept = _least_squares(xs, ys)
    draw.line(
        [(axes.x(0.0), axes.y(fit_intercept)), (axes.x(1.0), axes.y(fit_intercept + fit_slope))], fill=_PALETTE[1], width=2
    )
    draw.text((axes.left + 4, axes.top), f"r = {r:.2f}", fill="black", font=font)
    draw.text((axes.right - side // 4, axes.bottom + 3), _drawable(x_unit), fill="black", font=font)
    _y_label(draw, axes, side, y_unit)
    return DrawnChart(
        image, "scatter", "chart", variable=y_name, unit=y_unit, x_variable=x_name, x_unit=x_unit, n=n,
        correlation=round(r, 2),
    )


def _flow(rng: random.Random, side: int) -> DrawnChart:
    assessed = rng.randint(180, 600)
    excluded = rng.randint(assessed // 8, assessed // 3)
    randomised = assessed - excluded
    arm_a = randomised // 2 + rng.randint(-3, 3)
    arm_b = randomised - arm_a
    analysed_a, analysed_b = arm_a - rng.randint(0, arm_a // 10), arm_b - rng.randint(0, arm_b // 10)
    width, height = side, side
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = _font(side, per_side=28)
    box_h = height // 9

    def box(cx: float, cy: float, text: str, box_w: float) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2
        draw.rectangle([x0, y0, x1, y1], outline="black", fill=(235, 242, 250))
        draw.text((x0 + 3, y0 + 3), text, fill="black", font=font)
        return x0, y0, x1, y1

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        draw.line([(x0, y0), (x1, y1)], fill="black", width=1)
        angle = math.atan2(y1 - y0, x1 - x0)
        head = [(x1, y1)] + [
            (x1 - 6 * math.cos(angle + turn), y1 - 6 * math.sin(angle + turn)) for turn in (0.45, -0.45)
        ]
        draw.polygon(head, fill="black")

    rows = [height * f for f in (0.1, 0.32, 0.56, 0.84)]
    wide, narrow = width * 0.6, width * 0.44
    box(width / 2, rows[0], f"Assessed\nn = {assessed}", wide)
    box(width * 0.76, (rows[0] + rows[1]) / 2 + box_h * 0.2, f"Excluded\nn = {excluded}", narrow)
    box(width / 2, rows[1] + box_h * 0.6, f"Randomised\nn = {randomised}", wide)
    for centre, allocated, analysed in ((width * 0.26, arm_a, analysed_a), (width * 0.74, arm_b, analysed_b)):
        box(centre, rows[2], f"Allocated\nn = {allocated}", narrow)
        box(centre, rows[3], f"Analysed\nn = {analysed}", narrow)
        arrow(width / 2, rows[1] + box_h * 1.1, centre, rows[2] - box_h / 2)
        arrow(centre, rows[2] + box_h / 2, centre, rows[3] - box_h / 2)
    arrow(width / 2, rows[0] + box_h / 2, width / 2, rows[1] + box_h * 0.1)
    arrow(width / 2, (rows[0] + rows[1]) / 2 + box_h * 0.2, width * 0.76 - narrow / 2, (rows[0] + rows[1]) / 2 + box_h * 0.2)
    return DrawnChart(
        image, "flow", "diagram", n=assessed, counts=(assessed, excluded, randomised, arm_a, arm_b, analysed_a, analysed_b)
    )


def _pearson(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    var_x = sum((x - mean_x) ** 2 for x in xs)
    var_y = sum((y - mean_y) ** 2 for y in ys)
    return cov / math.sqrt(var_x * var_y) if var_x and var_y else 0.0


def _least_squares(xs: list[float], ys: list[float]) -> tuple[float, float]:
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var_x = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var_x if var_x else 0.0
    return slope, mean_y - slope * mean_x
