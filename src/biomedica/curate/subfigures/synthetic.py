"""Synthetic compound figures with exact panel boxes, to train and evaluate the `model` detector.

Real compound figures carry no box annotations; Open-PMC-18M trained its panel detector on
synthetic ones, and so do we: single-panel images of the archive (and plots drawn here on
white, since real compound figures are often plots) are laid out as

- grids (1x2 .. 3x4, equal or unequal column widths), rows of different panel counts, and
  columns of different counts (a tall panel beside a stacked column);
- gutters 0-40 px (0: panels touch) in white (mostly), black or light grey, with an outer
  margin of the gutter colour or none;
- panels resized and cropped to the cell ("fill", the common case) or fitted inside it with
  their own aspect ("fit"), some with a thin frame;
- panel labels "A", "a", "(a)", "(A)", "1", "A1" (row letter + column number) in the fonts
  found under /usr/share/fonts (PIL's scalable default font when there are none), inside a
  corner of the panel or in the gutter beside it;
- occasional insets: a small image pasted over a corner of a larger panel. An inset is part
  of its panel, NOT a box of its own (PMC-OA and ImageCLEF annotate them that way, and the
  caption describes the panel, not the inset);
- occasional single figures: one box covering the whole image, so the detector learns "single".

A box is exactly the pasted panel image (x1/y1 exclusive); labels in the gutter lie outside
it. `single_panel_pool` reads the archive's single-panel images, split by a stable hash of
the article id so held-out figures never reuse a training article's images.
"""

from __future__ import annotations

import functools
import io
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from biomedica.curate.subfigures.boxes import Box, reading_order

LABEL_STYLES = ("A", "a", "(a)", "(A)", "1", "A1")
FONT_ROOT = Path("/usr/share/fonts")
POOL_SALT = "biomedica-subfigure-pool-v1"
POOL_EVAL_FRACTION = 0.2
MIN_POOL_SIDE = 32  # smaller images (icons, strips) make poor panels


@dataclass(frozen=True)
class SyntheticConfig:
    """Probabilities and sizes of the generator (the defaults are what training uses)."""

    single_prob: float = 0.12  # a figure that is one panel (one box = the whole image)
    plot_prob: float = 0.35  # a panel drawn here (a plot on white) instead of a pool image
    label_prob: float = 0.8  # a figure whose panels carry labels
    inset_prob: float = 0.1  # a figure with one inset over a panel corner
    frame_prob: float = 0.15  # a panel with a thin dark frame
    fit_prob: float = 0.3  # a panel fitted with its own aspect instead of cropped to the cell
    max_side: int = 1000  # the figure's longer side is at most this
    min_side: int = 200


@dataclass
class SyntheticFigure:
    """One generated figure: its image, the panel boxes in reading order, and each panel's drawn label (None: none)."""

    image: Image.Image
    boxes: list[Box]
    labels: list[str | None]
    layout: str = ""  # e.g. "grid 2x3", "rows 3+2", "cols 1+2", "single" (for reports)
    gutter: int = 0
    extras: dict = field(default_factory=dict)


# --- fonts ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def font_files() -> tuple[Path, ...]:
    """TrueType/OpenType fonts installed here (may be none: then PIL's default font is used)."""
    if not FONT_ROOT.is_dir():
        return ()
    found = [p for p in FONT_ROOT.rglob("*") if p.suffix.lower() in (".ttf", ".otf") and p.is_file()]
    return tuple(sorted(found))


@functools.lru_cache(maxsize=512)
def _load_font(path: str | None, size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    if path is not None:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _font(rng: random.Random, size: int):
    files = font_files()
    path = str(rng.choice(files)) if files and rng.random() < 0.8 else None
    return _load_font(path, max(6, int(size)))


# --- layouts -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layout:
    major: Literal["rows", "cols"]  # rows: a list of rows, each split into cells; cols: transposed
    major_weights: tuple[float, ...]
    minor_weights: tuple[tuple[float, ...], ...]
    name: str


def _weights(rng: random.Random, n: int, unequal: bool) -> tuple[float, ...]:
    return tuple(rng.uniform(0.6, 1.6) if unequal else 1.0 for _ in range(n))


def _choose_layout(rng: random.Random) -> _Layout:
    kind = rng.choices(("grid", "rows", "cols"), weights=(0.5, 0.3, 0.2))[0]
    if kind == "grid":
        while True:
            rows, cols = rng.randint(1, 3), rng.randint(1, 4)
            if rows * cols > 1:
                break
        columns = _weights(rng, cols, rng.random() < 0.3)  # the same widths in every row: aligned columns
        return _Layout("rows", _weights(rng, rows, rng.random() < 0.2), (columns,) * rows, f"grid {rows}x{cols}")
    n = rng.randint(2, 3)
    while True:
        counts = [rng.randint(1, 4 if kind == "rows" else 3) for _ in range(n)]
        if len(set(counts)) > 1:  # rows of different panel counts / a tall panel beside a stacked column
            break
    minors = tuple(_weights(rng, c, rng.random() < 0.4) for c in counts)
    return _Layout(kind, _weights(rng, n, rng.random() < 0.4), minors, f"{kind} " + "+".join(map(str, counts)))


def _split(start: int, end: int, weights: Sequence[float], gap: int) -> list[tuple[int, int]]:
    """Integer spans of [start, end) in proportion to `weights`, `gap` pixels apart."""
    avail = end - start - gap * (len(weights) - 1)
    total = sum(weights)
    spans, pos, acc = [], start, 0.0
    for i, w in enumerate(weights):
        acc += w
        stop = start + gap * i + (round(avail * acc / total))
        spans.append((pos, stop))
        pos = stop + gap
    return spans


def _cells(layout: _Layout, width: int, height: int, margin: int, gap: int) -> list[tuple[int, int, int, int]]:
    cells = []
    if layout.major == "rows":
        for (y0, y1), minors in zip(_split(margin, height - margin, layout.major_weights, gap), layout.minor_weights):
            cells += [(x0, y0, x1, y1) for x0, x1 in _split(margin, width - margin, minors, gap)]
    else:
        for (x0, x1), minors in zip(_split(margin, width - margin, layout.major_weights, gap), layout.minor_weights):
            cells += [(x0, y0, x1, y1) for y0, y1 in _split(margin, height - margin, minors, gap)]
    return cells


def _grid_shape(layout: _Layout) -> tuple[int, int]:
    """(rows, columns) the layout spans, for the canvas size."""
    n_major, n_minor = len(layout.major_weights), max(len(m) for m in layout.minor_weights)
    return (n_major, n_minor) if layout.major == "rows" else (n_minor, n_major)


# --- panel content -------------------------------------------------------------------------

def _trim(image: Image.Image) -> Image.Image:
    """The image less its near-white border (plots and diagrams carry one; the box is the content)."""
    mask = image.convert("L").point(lambda v: 255 if v < 245 else 0)
    bbox = mask.getbbox()
    if bbox is None or (bbox[2] - bbox[0]) < 8 or (bbox[3] - bbox[1]) < 8:
        return image
    return image.crop(bbox)


_PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
            (0, 0, 0), (127, 127, 127), (23, 190, 207), (188, 189, 34))


def draw_plot(rng: random.Random, width: int, height: int) -> Image.Image:
    """A chart on white (axes, ticks with numbers, bars / lines / points, maybe a title and a legend), trimmed to its content."""
    width, height = max(60, width), max(50, height)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = _font(rng, max(7, min(width, height) // rng.randint(12, 20)))
    left, bottom = int(width * rng.uniform(0.14, 0.24)), int(height * rng.uniform(0.12, 0.22))
    top, right = int(height * rng.uniform(0.04, 0.14)), int(width * rng.uniform(0.03, 0.08))
    x0, y0, x1, y1 = left, top, width - right, height - bottom
    if x1 - x0 < 20 or y1 - y0 < 20:
        draw.rectangle((2, 2, width - 3, height - 3), outline="black")
        return image
    line = max(1, min(width, height) // 150)
    draw.line((x0, y0, x0, y1), fill="black", width=line)
    draw.line((x0, y1, x1, y1), fill="black", width=line)
    if rng.random() < 0.3:  # a boxed plot area
        draw.line((x0, y0, x1, y0), fill="black", width=line)
        draw.line((x1, y0, x1, y1), fill="black", width=line)
    n_ticks = rng.randint(3, 6)
    top_value = rng.choice((1, 5, 10, 50, 100, 1000))
    for i in range(n_ticks):
        y = y1 - (y1 - y0) * i / (n_ticks - 1)
        draw.line((x0 - 4, y, x0, y), fill="black", width=line)
        text = f"{top_value * i / (n_ticks - 1):g}"
        tw = draw.textlength(text, font=font)
        draw.text((x0 - 6 - tw, y), text, fill="black", font=font, anchor="lm")
    kind = rng.choice(("bar", "line", "scatter"))
    n = rng.randint(3, 8) if kind == "bar" else rng.randint(5, 20)
    values = [rng.uniform(0.1, 1.0) for _ in range(n)]
    colour = rng.choice(_PALETTE)
    step = (x1 - x0) / (n + 1)
    for i, v in enumerate(values):
        cx = x0 + step * (i + 1)
        cy = y1 - (y1 - y0) * v
        if kind == "bar":
            draw.rectangle((cx - step * 0.35, cy, cx + step * 0.35, y1 - line), fill=colour, outline="black")
        elif kind == "scatter":
            r = max(2, min(width, height) // 60)
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        if i % max(1, n // 5) == 0:
            draw.line((cx, y1, cx, y1 + 4), fill="black", width=line)
            draw.text((cx, y1 + 6), str(i + 1), fill="black", font=font, anchor="mt")
    if kind == "line":
        points = [(x0 + step * (i + 1), y1 - (y1 - y0) * v) for i, v in enumerate(values)]
        draw.line(points, fill=colour, width=max(1, line + 1))
        if rng.random() < 0.5:
            second = [(x, min(y1, max(y0, y + rng.uniform(-0.2, 0.2) * (y1 - y0)))) for x, y in points]
            draw.line(second, fill=rng.choice(_PALETTE), width=max(1, line))
    if rng.random() < 0.5:
        draw.text(((x0 + x1) / 2, max(1, top // 2)), rng.choice(("Control vs treated", "Survival", "Expression",
                                                                   "Time course", "Dose response")),
                  fill="black", font=font, anchor="mm")
    if rng.random() < 0.4:  # a legend box
        lx, ly = x1 - (x1 - x0) // 3, y0 + 4
        draw.rectangle((lx, ly, x1 - 4, ly + (y1 - y0) // 5), outline="black", fill="white")
        draw.rectangle((lx + 3, ly + 3, lx + 9, ly + 9), fill=colour)
        draw.text((lx + 12, ly + 2), rng.choice(("WT", "KO", "n=12", "group 1")), fill="black", font=font)
    return _trim(image)


def _pool_image(pool: Sequence[Image.Image], rng: random.Random, used: set[int]) -> Image.Image:
    """A pool image, preferring ones not used in this figure yet (so neighbouring panels differ)."""
    fresh = [i for i in range(len(pool)) if i not in used]
    index = rng.choice(fresh) if fresh else rng.randrange(len(pool))
    used.add(index)
    image = pool[index]
    image = image if image.mode == "RGB" else image.convert("RGB")
    if rng.random() < 0.3:
        image = ImageOps.mirror(image)
    return _trim(image)


def _source(pool, rng, config: SyntheticConfig, used: set[int], width: int, height: int) -> Image.Image:
    if not pool or rng.random() < config.plot_prob:
        aspect_jitter = rng.uniform(0.8, 1.25)
        return draw_plot(rng, int(width * aspect_jitter), int(height / aspect_jitter))
    return _pool_image(pool, rng, used)


def _fill(source: Image.Image, width: int, height: int, rng: random.Random) -> Image.Image:
    centering = (rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7))
    return ImageOps.fit(source, (width, height), Image.Resampling.BILINEAR, centering=centering)


def _contain(source: Image.Image, width: int, height: int) -> Image.Image:
    scale = min(width / source.width, height / source.height)
    size = (max(1, min(width, round(source.width * scale))), max(1, min(height, round(source.height * scale))))
    return source.resize(size, Image.Resampling.BILINEAR)


# --- labels --------------------------------------------------------------------------------

def label_text(style: str, index: int, row: int, column: int) -> str:
    """The label of the `index`-th panel (reading order), at (row, column) for the "A1" style."""
    letter = _letters(index)
    return {"A": letter.upper(), "a": letter, "(a)": f"({letter})", "(A)": f"({letter.upper()})",
            "1": str(index + 1), "A1": f"{_letters(row).upper()}{column + 1}"}[style]


def _letters(index: int) -> str:
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(ord("a") + rest) + text
    return text


def _rows_of(boxes: list[Box]) -> list[tuple[int, int]]:
    """(row, column) of each box (already in reading order), rows as reading_order groups them."""
    out, row, column, current = [], -1, 0, None
    for box in boxes:
        if current is None or min(box.y1, current.y1) - max(box.y0, current.y0) < 0.5 * min(box.height, current.height):
            row, column, current = row + 1, 0, box
        else:
            column += 1
        out.append((row, column))
    return out


def _draw_label(image: Image.Image, box: Box, text: str, font, occupied: np.ndarray, background: tuple[int, int, int],
                rng: random.Random) -> None:
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left, bottom - top
    pad = rng.randint(1, 6)
    where = rng.choices(("inside", "gutter"), weights=(0.7, 0.3))[0]
    if where == "gutter":
        for x, y in ((box.x0, box.y0 - th - pad), (box.x0 - tw - pad, box.y0)):  # above, then left of the corner
            if x >= 0 and y >= 0 and x + tw <= image.width and y + th <= image.height \
                    and not occupied[y:y + th + 1, x:x + tw + 1].any():
                draw.text((x - left, y - top), text, font=font, fill=_contrast(background))
                return
    corner = rng.choices(("tl", "tr", "bl"), weights=(0.8, 0.12, 0.08))[0]
    x = box.x0 + pad if corner in ("tl", "bl") else box.x1 - tw - pad
    y = box.y0 + pad if corner in ("tl", "tr") else box.y1 - th - pad
    x, y = max(box.x0, x), max(box.y0, y)
    if rng.random() < 0.35:  # on a filled patch, as many journals typeset it
        patch = rng.choice(((255, 255, 255), (0, 0, 0)))
        draw.rectangle((x - 1, y - 1, min(box.x1 - 1, x + tw + 1), min(box.y1 - 1, y + th + 1)), fill=patch)
        colour = _contrast(patch)
    else:
        region = np.asarray(image.crop((x, y, min(box.x1, x + tw), min(box.y1, y + th))).convert("L"))
        colour = (0, 0, 0) if region.size == 0 or region.mean() > 128 else (255, 255, 255)
    draw.text((x - left, y - top), text, font=font, fill=colour)


def _contrast(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    return (0, 0, 0) if sum(colour) > 3 * 128 else (255, 255, 255)


# --- the generator -------------------------------------------------------------------------

def _gutter(rng: random.Random, width: int) -> tuple[int, tuple[int, int, int]]:
    gap = rng.choice((0, 0, rng.randint(1, 4), rng.randint(2, 12), rng.randint(5, 20), rng.randint(10, 40)))
    gap = min(gap, max(0, width // 16))
    grey = rng.randint(205, 240)
    colour = rng.choices(((255, 255, 255), (0, 0, 0), (grey, grey, grey)), weights=(0.7, 0.12, 0.18))[0]
    return gap, colour


def _single(pool, rng: random.Random, config: SyntheticConfig) -> SyntheticFigure:
    side = rng.randint(config.min_side, config.max_side)
    aspect = rng.uniform(0.6, 1.6)
    width, height = (side, int(side / aspect)) if aspect >= 1 else (int(side * aspect), side)
    source = _source(pool, rng, config, set(), width, height)
    if rng.random() < 0.5:  # keep the source's own aspect
        image = _contain(source, width, height)
    else:
        image = _fill(source, width, height, rng)
    return SyntheticFigure(image, [Box(0, 0, image.width, image.height)], [None], "single")


def generate_figure(pool: Sequence[Image.Image], rng: random.Random,
                    config: SyntheticConfig | None = None) -> SyntheticFigure:
    """One compound (or single) figure from `pool` images and drawn plots; deterministic for a seeded `rng`.

    An empty pool gives figures of drawn plots only.
    """
    config = config or SyntheticConfig()
    if rng.random() < config.single_prob:
        return _single(pool, rng, config)
    layout = _choose_layout(rng)
    rows, cols = _grid_shape(layout)
    panel = rng.randint(70, 320)
    width = int(min(config.max_side, max(config.min_side, cols * panel * rng.uniform(0.8, 1.2))))
    height = int(min(config.max_side, max(config.min_side, rows * panel * rng.uniform(0.6, 1.3))))
    gap, background = _gutter(rng, min(width, height))
    margin = rng.choice((0, gap, rng.randint(0, 20)))
    cells = _cells(layout, width, height, margin, gap)
    if min(min(x1 - x0, y1 - y0) for x0, y0, x1, y1 in cells) < 16:  # too many panels for the canvas: no gutters
        gap, margin = 0, 0
        cells = _cells(layout, width, height, 0, 0)
    image = Image.new("RGB", (width, height), background)
    used: set[int] = set()
    boxes: list[Box] = []
    for x0, y0, x1, y1 in cells:
        w, h = x1 - x0, y1 - y0
        source = _source(pool, rng, config, used, w, h)
        if rng.random() < config.fit_prob:
            content = _contain(source, w, h)
            px, py = x0 + (w - content.width) // 2, y0 + (h - content.height) // 2
        else:
            content, px, py = _fill(source, w, h, rng), x0, y0
        if rng.random() < config.frame_prob:
            content = content.copy()
            ImageDraw.Draw(content).rectangle((0, 0, content.width - 1, content.height - 1),
                                              outline=(rng.randint(0, 60),) * 3, width=rng.randint(1, 2))
        image.paste(content, (px, py))
        boxes.append(Box(px, py, px + content.width, py + content.height))
    extras: dict = {}
    if rng.random() < config.inset_prob:
        extras["inset"] = _inset(image, boxes, pool, rng, config, used)
    boxes = reading_order(boxes)
    labels: list[str | None] = [None] * len(boxes)
    if rng.random() < config.label_prob:
        occupied = np.zeros((height, width), dtype=bool)
        for b in boxes:
            occupied[b.y0:b.y1, b.x0:b.x1] = True
        style = rng.choice(LABEL_STYLES)
        size = max(9, min(48, int(min(width, height) * rng.uniform(0.03, 0.08)),
                          int(0.35 * min(min(b.width, b.height) for b in boxes))))
        font = _font(rng, size)
        for i, (box, (row, column)) in enumerate(zip(boxes, _rows_of(boxes))):
            labels[i] = label_text(style, i, row, column)
            _draw_label(image, box, labels[i], font, occupied, background, rng)
    return SyntheticFigure(image, boxes, labels, layout.name, gap, extras)


def _inset(image: Image.Image, boxes: list[Box], pool, rng: random.Random, config: SyntheticConfig,
           used: set[int]) -> list[int] | None:
    """Paste a small image over a corner of a large panel; it stays part of that panel's box."""
    large = [b for b in boxes if min(b.width, b.height) >= 100]
    if not large:
        return None
    host = rng.choice(large)
    w, h = int(host.width * rng.uniform(0.22, 0.4)), int(host.height * rng.uniform(0.22, 0.4))
    content = _fill(_source(pool, rng, config, used, w, h), w, h, rng)
    ImageDraw.Draw(content).rectangle((0, 0, w - 1, h - 1), outline=rng.choice(((255, 255, 255), (0, 0, 0))), width=2)
    off = rng.randint(0, 8)
    x = host.x0 + off if rng.random() < 0.5 else host.x1 - w - off
    y = host.y0 + off if rng.random() < 0.5 else host.y1 - h - off
    image.paste(content, (x, y))
    return [x, y, x + w, y + h]


# --- the pool ------------------------------------------------------------------------------

def pool_split_of(article_id: str) -> Literal["train", "eval"]:
    """Which pool an article's images belong to (stable: a hash of the id, ~20% eval)."""
    from biomedica.archive.split import is_held_out

    return "eval" if is_held_out(article_id, POOL_EVAL_FRACTION, POOL_SALT) else "train"


def single_panel_pool(archive: Path, split: Literal["train", "eval", "all"] = "train",
                      limit: int | None = None) -> list[Image.Image]:
    """The archive's images judged single (RGB, decoded), of the articles in `split`, in archive order.

    Single: `panel_type == "single"` in annotations/panels.parquet when that table exists,
    else one part by `curate.panels.layout_panels`. Undecodable and tiny images are skipped.
    """
    from biomedica.archive.annotations import AnnotationStore, default_annotations_dir
    from biomedica.archive.keys import sample_article
    from biomedica.archive.reader import is_archive, iter_shard, live_shards
    from biomedica.curate.panels import layout_panels

    archive = Path(archive)
    if not is_archive(archive):
        raise FileNotFoundError(f"{archive}: not a biomedica archive; build one with `biomedica ingest` first")
    store = AnnotationStore(default_annotations_dir(archive))
    single_keys: set[str] | None = None
    if store.has("panels"):
        table = store.read("panels", columns=["key", "panel_type"]).to_pylist()
        single_keys = {row["key"] for row in table if row["panel_type"] == "single"}
    pool: list[Image.Image] = []
    for _, path, skip in live_shards(archive):
        for record, data in iter_shard(path, skip):
            key = record["key"]
            if split != "all" and pool_split_of(sample_article(key, record.get("pmcid"))) != split:
                continue
            if single_keys is not None and key not in single_keys:
                continue
            try:
                with Image.open(io.BytesIO(data)) as opened:
                    if single_keys is None and layout_panels(opened).panels != 1:
                        continue
                with Image.open(io.BytesIO(data)) as opened:
                    image = opened.convert("RGB")
            except (OSError, ValueError, Image.DecompressionBombError):
                continue
            if min(image.size) < MIN_POOL_SIDE or max(image.size) > 6 * min(image.size):
                continue
            pool.append(image)
            if limit is not None and len(pool) >= limit:
                return pool
    return pool


def jpeg_roundtrip(image: Image.Image, rng: random.Random) -> Image.Image:
    """The image as a JPEG of random quality decodes it (real figures carry JPEG noise)."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=rng.randint(60, 95))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


__all__ = ["LABEL_STYLES", "SyntheticConfig", "SyntheticFigure", "draw_plot", "font_files", "generate_figure",
           "jpeg_roundtrip", "label_text", "pool_split_of", "single_panel_pool"]
