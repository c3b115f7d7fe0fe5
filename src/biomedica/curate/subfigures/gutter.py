"""The gutter detector: panels from straight separator bands, no model.

Compound figures are laid out by people on a page: panels separated by straight bands of
the page colour (gutters). On a reduced grey copy of the image (JPEG draft mode: the
decoder itself scales by 1/2, 1/4 or 1/8, so a 3000 px figure costs a 400-800 px decode):

1. The page colour: the figure's edge rows/columns that are flat (an outer frame line,
   a margin) are peeled off first; the median of the remaining border ring (else of the
   image's own edge) is the page colour when most of the ring is within `gutter_rms` of that
   white or black (a printed page is flat; the bright or dark edge of an X-ray is not), or when
   the ring is one flat colour (so light-grey or coloured pages work); otherwise (panels
   touching the image edge) white or black, whichever makes more full ink-free lines.
2. Recursive XY-cut: a region is trimmed to its content, then cut along every row (or
   column) band that is page colour from one end of the region to the other (>= 1 px at
   the reduced size) and has a flat line: RMS distance to the page colour <= `gutter_rms`
   (8 grey levels; 4 on a black page, where dark anatomy - fluid, air, acoustic shadows - is
   near black too). JPEG noise in a real gutter is a few levels; the bright spine of a chest
   X-ray or a shadow in an ultrasound is within the tolerance of 40 but textured. A line of ink crossing the band (an x axis under the bars of one
   chart) means no cut, so a bar chart stays one panel. Strips thinner than
   `min_panel` of the figure's side (a text line, an axis title, a legend, a lone panel
   letter), and strips up to twice that which are not panel-like (step 4: a column of
   tick labels beside its plot) are slivers, and so are text blocks of any size (no connected
   part as tall as `min_panel`: burned-in labels over an ultrasound, a title block): each joins its neighbour across the narrower gap before
   recursing, so a panel letter above a panel, or a title row over two panels, ends up
   with the panel(s) below it. The axis with the widest gutter is cut first.
3. Connected components, for leaves XY-cut could not split (L-shaped layouts, a panel
   letter or a colour bar bridging a gutter): components (8-connected) of the
   content mask that are at least `min_panel` in both sides and fill their box like a
   panel does (a photo, or a framed plot) split the leaf when they hold most of its ink and the
   gaps between neighbouring ones are page (median within `gutter_rms`/2 of the page colour);
   small parts join the nearest big one.
4. A split is kept only when most pieces look like panels: mostly ink (a photo, a heatmap,
   a blot) or crossed by a long horizontal and a long vertical line (plot axes, a frame).
   Reaction schemes, flow charts and labelled diagrams fall into pieces of text, arrows
   and thin drawings that are neither, and stay single. Text blocks are never panel-like. On a
   black page only solid pieces (ink >= `dark_panel_fill`) count: figures laid out on black are
   photo montages with solid panels, while a medical frame's black surround holds burned-in text,
   calipers and patchy anatomy that draw long lines too.
5. Boxes are padded by one reduced pixel, mapped back to the stored image's pixels
   (x1/y1 exclusive) and clipped. One box or none means a single figure: [] is returned.
6. The caption's count hint (`detect(image, expected_panels=K)`, `pairing.expected_panels`)
   chooses between readings of the same cuts, never adds panels: when steps 2-4 give more
   than K pieces, the XY-cut is redone cutting only at gutters at least t wide, t from the
   widest gutter seen down (a dendrogram cut: strongest gutters first), without and then with
   components; the first reading with exactly K pieces wins, else the coarsest reading nearest
   to K from above. A split with exactly K pieces needs only `hinted_panel_share` of them
   panel-like (the caption confirms it). Fewer than K pieces: the unguided result.
7. Panel letters read in the image (`detect(image, letters=[(letter, x, y, height)])`, OCR:
   `pairing.ocr_letters`) are a second hint, used only when they form one complete run A..K (or
   a..k; strays far past it, an "H" of a structure, are ignored; with a caption count K must equal
   it; `panel_letter_run`). The XY-cut is redone knowing them (a strip whose top-left holds a
   letter is never a sliver; a letter alone in a gutter joins the strip after it), then readings
   from finest to coarsest are grouped: every letter at the top-left corner of exactly one piece,
   no piece with two, each letterless piece joined to a lettered neighbour when the letter stays at
   the top-left of their union and the union overlaps no other lettered piece. The first reading
   that groups into exactly K pieces (`hinted_panel_share` of its pieces panel-like) wins; else steps 2-6
   as without letters. Letters never split a piece and never merge two lettered ones. Without a
   caption count, a letterless piece after the last letter fails the grouping (it may be the
   panel of a next letter OCR missed: A-C read, D missed). Measured on the 33 labelled real
   figures (`biomedica eval subfigures --ocr`): figure accuracy 0.76 -> 0.79 hinted (clear 0.85
   -> 0.89): a 6-panel figure (A-F, no caption count) whose panel A is two plots and whose
   letterless diagram row F had joined its neighbours.

Measured limits (generated figures in tests/curate/subfigures/test_gutter.py; the 27 real
figures of ../shared/fixtures/images/pmc_package_figures looked at one by one with the boxes
drawn over them; no labels written):

- Generated grids 1x2..3x3, irregular rows (2+3 panels, 2+2+3, a wide panel over two),
  white or black gutters of 2-30 px on ~800 px figures, JPEG quality 75 and 95, photo/noise
  panels and white line plots with axes and tick labels: 11 layouts x 2 qualities, every
  panel found at IoU >= 0.85 with no extra box. Panel letters alone in 24 px gutters and
  axis titles under the plots join their panels.
- Real figures: of the 22 it calls single, 18 are plainly single (pathway diagrams,
  reaction schemes, flow charts, a pie chart, a box plot: they stay single through the
  panel-likeness check of step 4) and 4 are the ambiguous layouts listed below; a 4x2 grid of scatter plots gives its 8 panels and
  a heatmap over two plots its 3. Three cell-biology figures with lettered panels A-G/J/K
  get 8-13 boxes for 7-11 letters (13-18 before text blocks joined their panels): nested layouts (below).
- Sub-panels: a lettered panel made of plots or blots with gutters between them ("B" = a
  photo and its bar chart, four bar charts under "I", blots stacked with a few px between them) is
  split into them; a schematic panel of free text and arrows may split into 2-3 parts.
- Panels without gutters (touching photos, or a panel letter / legend / label bridging the
  gutter: seen once, a blot "G" touching the y label of plot "H") come out as one box;
  the components stage recovers only touching panels that are themselves dense rectangles
  (photos) or framed plots with ink along 3 sides.
- Inset plots (a plot drawn inside another) stay inside their host panel: never split.
- Shared axes: plots sharing one axis line (the line crosses the gap) stay one panel;
  plots sharing only an axis title below them are split, the title joins one of them.
- Labels in the gutter: a panel letter alone in a gutter corner is a sliver and joins the
  nearest panel; a legend column beside a plot joins it when it is narrow (< 16% of the
  side) and not panel-like, otherwise it stays a separate box.
- Ambiguous multi-part figures with no axes or photos (a structure beside a table, two
  promoter diagrams one above the other, four chemical structures in a 2x2 layout, three
  labelled rows of structures) are called single.
- Count hint, on the 33 hand-labelled real figures of tests/data/subfigures/real_panels.json
  (5 of whose captions give a hint; `evaluate.evaluate_detector(..., hints=...)`): figure
  accuracy 0.70 -> 0.76 (clear labels 0.78 -> 0.85), mAP50 0.55 -> 0.64, mean IoU 0.68 -> 0.78.
  Fixed: a 7-letter figure whose letters each hold a plot with a thin legend/label strip (14
  pieces), and an 8-panel figure of sparse charts and heatmaps called single. Still wrong:
  nested figures where a letter's sub-plots sit further apart than some letters do (no gutter
  width gives the caption's count; the nearest coarser reading is returned).
- Single medical images (the demo corpus: real CT/MR/US/X-ray/NM DICOM frames, scikit-image
  pictures, drawn charts; 5 corpora of 30 articles at 128-512 px): before the flat-gutter,
  black-page and text-block rules 37 of ~400 images at >= 128 px were split (ultrasound text
  blocks, chest X-ray mediastinum, dual-view ultrasound shadows), after them none. Still split:
  4 of ~110 charts written at 128 px (~110x80), whose one-line axis titles are taller than 8% of
  the figure, so they are neither slivers nor text blocks.
- Those rules on the real figures: same figure accuracy (0.70 alone, 0.76 hinted), mAP50
  0.55 -> 0.57 alone and 0.64 -> 0.69 hinted (text/legend blocks of nested figures now join their
  panels: 13 -> 8 boxes for 7 letters), mean IoU 0.68 -> 0.67 / 0.78 -> 0.77.
- Throughput (after those rules, about 25% slower: one labelling of the ink per figure for the
  text test): 80 figures/s of CPU time alone, 60/s hinted, over the 33 labelled figures
  (110/s and 84/s before them, same script and machine, best of 3). Earlier: 75 figures/s of CPU time on one core over the 27 real JPEGs (600-800 px,
  decode included; the machine was shared with other jobs, wall time varied 40-75/s). With
  hints, over the 33 decoded labelled figures: 96 figures/s alone, 82/s hinted (a hinted
  over-split figure re-reads at each gutter width: 68 ms instead of 21 ms for a 790x944 one).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from biomedica.curate.subfigures.boxes import Box

_Region = tuple[int, int, int, int]  # y0, y1, x0, x1 (exclusive) in the reduced image
Letter = tuple  # (letter, x, y) or (letter, x, y, height): a glyph read in the image, its top-left corner


@dataclass(frozen=True)
class GutterConfig:
    """Thresholds of the gutter detector; defaults were tuned on generated and real figures."""

    side: int = 512  # reduce so that the longer side is at most about this (JPEG draft keeps >= side)
    tolerance: int = 40  # grey levels from the page colour still counted as page (JPEG ringing, scan noise)
    gutter_rms: float = 8.0  # a gutter has a line this close to the page colour (RMS grey levels): flat, not anatomy
    min_panel: float = 0.08  # a panel is at least this share of the figure's width and of its height
    edge_peel: float = 0.03  # at most this share of a side is peeled off as an outer frame or margin
    page_agreement: float = 0.6  # share of the border ring that must match its median for it to be the page colour
    components: bool = True  # split leaves XY-cut could not split by dense connected components
    component_fill: float = 0.55  # a component counts as a panel when it fills this share of its box
    component_ink: float = 0.75  # ... and the panel-like components hold this share of the leaf's ink
    panel_fill: float = 0.3  # a piece this full of ink is a panel (photo, heatmap, blot) ...
    dark_panel_fill: float = 0.8  # on a black page only this full a piece is a panel (dark image content is page there)
    panel_axis: float = 0.45  # ... as is one with straight lines this long both ways (plot axes, a frame)
    panel_share: float = 0.5  # a split is kept when at least this share of its pieces are panel-like
    hinted_panel_share: float = 0.25  # ... or this share, when its piece count is the caption's (`expected_panels`)
    pad: int = 1  # reduced pixels added around each box before mapping back
    # without a caption count, a complete run of panel letters (A-F: 6) is the count hint of step 6 too; off: no
    # gain measured on the real figures, and a last letter OCR missed would ask for a coarser reading
    letter_count_hint: bool = False


class GutterDetector:
    """`PanelDetector` without a model: recursive XY-cut on page-colour gutters + components."""

    name = "gutter"
    uses_letters = True  # detect(..., letters=...): OCR panel letters group a lettered panel's pieces (step 7)

    def __init__(self, config: GutterConfig | None = None):
        self.config = config or GutterConfig()

    def detect(self, image: Image.Image, expected_panels: int | None = None,
               letters: Sequence[Letter] | None = None) -> list[Box]:
        """Panel boxes in the image's pixels ([] for a single figure).

        `letters`: panel-letter-like glyphs read in the image, (letter, x, y[, height]) in its pixels
        (`pairing.letter_anchors`); step 7 of the module docstring.
        """
        width, height = image.size
        grey = _reduced_grey(image, self.config.side)
        h, w = grey.shape
        sx, sy = width / w, height / h
        reduced = None
        if letters:
            reduced = [(str(m[0]), m[1] / sx, m[2] / sy, (m[3] if len(m) > 3 else 0) / sy) for m in letters]
        boxes = self.detect_reduced(grey, expected_panels, reduced)
        if len(boxes) < 2:
            return []
        p = self.config.pad
        return [Box(max(0, x0 - p), max(0, y0 - p), min(w, x1 + p), min(h, y1 + p)).scaled(sx, sy).clipped(width, height)
                for (y0, y1, x0, x1) in boxes]

    def detect_reduced(self, grey: np.ndarray, expected_panels: int | None = None,
                       letters: Sequence[Letter] | None = None) -> list[_Region]:
        """Panel regions (y0, y1, x0, x1) of a reduced grey image; fewer than 2 means single.

        With `expected_panels` (the caption's count) and more pieces than that, coarser readings
        are tried: only gutters at least t wide cut, t from the widest gutter down (a dendrogram
        cut: a lettered panel made of sub-plots with narrow gaps between them stays whole when
        the gutters between letters are wider), then the same with components; the first
        reading with exactly that many pieces wins. A reading the caption confirms needs fewer
        panel-like pieces (`hinted_panel_share`). Fewer pieces than expected, or no reading
        that matches: the unguided result (a hint never adds panels). `letters` (reduced pixels)
        first: see `_lettered`.
        """
        cfg = self.config
        h, w = grey.shape
        if h < 16 or w < 16:
            return []
        region = _peel_edges(grey, cfg)
        masked = _ink_mask(grey, region, cfg)
        if masked is None:
            return []
        ink, page = masked
        cuts = _Cutter(ink, cfg, grey, page)
        leaves = self._reading(cuts, region, 1, cfg.components)
        hint = expected_panels if expected_panels and expected_panels >= 2 else None
        run = panel_letter_run(letters or (), hint)
        if run is not None:
            lettered = self._lettered(_Cutter(ink, cfg, grey, page, run), region, run, (h, w), hint is not None)
            if lettered is not None:
                return lettered
            if hint is None and self.config.letter_count_hint:  # a complete run of letters counts the panels too
                hint = len({str(m[0]) for m in run})
        if hint is not None and len(leaves) == hint and self._vote(cuts, leaves, cfg.hinted_panel_share):
            return leaves
        if hint is not None and len(leaves) > hint and self._vote(cuts, leaves, cfg.panel_share):
            return self._coarser(cuts, region, hint, leaves)
        return leaves if self._vote(cuts, leaves, cfg.panel_share) else []

    def _lettered(self, cuts: _Cutter, region: _Region, run: list[Letter], shape: tuple[int, int],
                  confirmed: bool = False) -> list[_Region] | None:
        """The finest reading whose pieces the panel letters `run` group into exactly one piece per letter, or None.

        Readings from finest (every gutter) to coarsest; in each, every letter must sit in the
        top-left corner of exactly one piece and no piece may hold two; a piece without a letter
        joins a lettered neighbour when the letter stays at the top-left of their union and the
        union (grown over any other letterless piece it overlaps) overlaps no other lettered piece.
        A reading with a letterless piece left over, or with two letters in one piece, is no answer.
        Unless the caption's count `confirmed` the run, a letterless piece after the last letter (in
        reading order) is left over too: it may be the next panel, its letter missed by OCR.
        """
        margin = 0.03 * max(shape)
        modes = (True, False) if self.config.components else (False,)
        seen: list[list[_Region]] = []
        readings = [(1, components) for components in modes]
        done: set[tuple[int, bool]] = set()
        while readings:
            key = readings.pop(0)
            done.add(key)
            leaves = self._reading(cuts, region, *key)
            if leaves not in seen:
                seen.append(leaves)
                grouped = _group_by_letters(leaves, run, margin, confirmed)
                # the vote is the pieces': a lettered group of two framed plots has no line across it, yet is a panel
                if grouped is not None and self._vote(cuts, leaves, self.config.hinted_panel_share):
                    return grouped
            if not readings:  # coarser readings, finest first (their thresholds are known once the finest ran)
                readings = [(t, c) for t in sorted(cuts.gap_widths) if t > 1 for c in modes if (t, c) not in done]
        return None
    def _reading(self, cuts: _Cutter, region: _Region, min_gap: int, components: bool) -> list[_Region]:
        """The leaves when only gutters at least `min_gap` reduced px wide cut (1: every gutter)."""
        cfg = self.config
        h, w = cuts.ink.shape
        leaves = cuts.split(region, min_gap=min_gap)
        if components:
            leaves = [part for leaf in leaves for part in cuts.components(leaf)]
        return _merge_small(leaves, max(2, int(cfg.min_panel * w)), max(2, int(cfg.min_panel * h)))

    def _coarser(self, cuts: _Cutter, region: _Region, hint: int, finest: list[_Region]) -> list[_Region]:
        """The first reading, strongest gutters first, with exactly `hint` pieces (enough of them panel-like);
        else the coarsest of those nearest to `hint` from above (`finest`, the unguided split, at worst)."""
        share = self.config.hinted_panel_share
        best = finest
        for components in ((False, True) if self.config.components else (False,)):
            tried: set[int] = set()
            while candidates := [t for t in cuts.gap_widths if t > 1 and t not in tried]:
                t = max(candidates)  # splits at t may see new gutters: the set grows as it goes
                tried.add(t)
                leaves = self._reading(cuts, region, t, components)
                if len(leaves) < hint or not self._vote(cuts, leaves, share):
                    continue
                if len(leaves) == hint:
                    return leaves
                if len(leaves) < len(best):
                    best = leaves
        return best

    @staticmethod
    def _vote(cuts: _Cutter, leaves: list[_Region], share: float) -> bool:
        """A real layout is mostly panels; pieces of one diagram (text, structures, arrows) are not."""
        if len(leaves) < 2:
            return False
        panel_like = sum(cuts.panel_like(leaf) for leaf in leaves)
        return panel_like >= share * len(leaves)


def _reduced_grey(image: Image.Image, side: int) -> np.ndarray:
    """A grey copy whose longer side is about `side` (JPEG: the decoder's own 1/2..1/8 scaling)."""
    if image.format == "JPEG":
        image.draft("L", (side, side))  # keeps both sides >= the request: a cheap decode, gutters intact
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGBA") if "A" in image.getbands() or image.mode == "P" else image
        if image.mode == "RGBA":  # transparent page = white page
            page = Image.new("RGB", image.size, (255, 255, 255))
            page.paste(image, mask=image.getchannel("A"))
            image = page
    grey = image.convert("L")
    if max(grey.size) > 2 * side:  # large PNG/TIFF: reduce, averaging (a gutter >= 2 reduced px survives)
        factor = max(grey.size) // side
        grey = grey.reduce(factor)
    return np.asarray(grey, dtype=np.int16)


def _peel_edges(grey: np.ndarray, cfg: GutterConfig) -> _Region:
    """The image without flat edge rows/columns (an outer frame line, a margin), at most `edge_peel` a side."""
    h, w = grey.shape
    y0, y1, x0, x1 = 0, h, 0, w
    limit_y, limit_x = max(1, int(cfg.edge_peel * h)), max(1, int(cfg.edge_peel * w))
    flat_rows = np.ptp(grey, axis=1) <= cfg.tolerance
    flat_cols = np.ptp(grey, axis=0) <= cfg.tolerance
    while y0 < limit_y and flat_rows[y0]:
        y0 += 1
    while h - y1 < limit_y and flat_rows[y1 - 1]:
        y1 -= 1
    while x0 < limit_x and flat_cols[x0]:
        x0 += 1
    while w - x1 < limit_x and flat_cols[x1 - 1]:
        x1 -= 1
    return y0, y1, x0, x1


def _ink_mask(grey: np.ndarray, region: _Region, cfg: GutterConfig) -> tuple[np.ndarray, int] | None:
    """True where a pixel is not page colour, and that page colour; None when the region is empty."""
    y0, y1, x0, x1 = region
    if y1 - y0 < 8 or x1 - x0 < 8:
        return None
    inner = grey[y0:y1, x0:x1]
    # the ring inside a peeled frame first (a frame line is not the page), then the image's own edge
    page = _page_colour(inner, cfg)
    if page is None:
        page = _page_colour(grey, cfg)
    ink = np.zeros(grey.shape, dtype=bool)  # peeled edges are no content
    if page is not None:
        ink[y0:y1, x0:x1] = np.abs(inner - page) > cfg.tolerance
        return ink, page  # no page colour at the edge (panels touch it): white or black bands, whichever cuts more lines
        white = inner >= 255 - cfg.tolerance
        black = inner <= cfg.tolerance
        lines_white = white.all(axis=1).sum() + white.all(axis=0).sum()
        lines_black = black.all(axis=1).sum() + black.all(axis=0).sum()
        if lines_white >= lines_black:
            ink[y0:y1, x0:x1] = ~white
            return ink, 255
        ink[y0:y1, x0:x1] = ~black
        return ink, 0


def _page_colour(grey: np.ndarray, cfg: GutterConfig) -> int | None:
    """The border ring's colour when it is a page: near white/black and mostly that, or any colour and flat."""
    ring = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    page = int(np.median(ring))
    distance = np.abs(ring - page)
    agreement = float(np.mean(distance <= cfg.tolerance // 2))
    # a white/black edge is a page when most of it is flat: a printed page is one colour up to JPEG noise,
    # the bright or dark edge of an X-ray or a scan varies with the anatomy
    flat = float(np.mean(distance <= cfg.gutter_rms))
    extreme = page >= 255 - cfg.tolerance or page <= cfg.tolerance
    if (extreme and flat >= cfg.page_agreement) or agreement >= 0.95:
        return page
    return None


class _Cutter:
    """Recursive XY-cut over one ink mask, with row/column prefix sums for O(h + w) band tests."""

    def __init__(self, ink: np.ndarray, cfg: GutterConfig, grey: np.ndarray, page: int,
                 letters: Sequence[Letter] = ()):
        self.ink = ink
        self.cfg = cfg
        self.grey, self.page = grey, page
        # a black page needs flatter gutters: dark anatomy (acoustic shadows, fluid, air) is near black too
        # and fuller panels: on black, a photo or a white plot is a solid block; the ink of a medical frame
        # (dark anatomy, burned-in text on its black surround) is patchy
        self.dark = page <= cfg.tolerance
        self.limit = cfg.gutter_rms / 2 if self.dark else cfg.gutter_rms
        h, w = ink.shape
        self.row_cum = np.zeros((h, w + 1), dtype=np.int32)
        np.cumsum(ink, axis=1, out=self.row_cum[:, 1:])
        self.col_cum = np.zeros((h + 1, w), dtype=np.int32)
        np.cumsum(ink, axis=0, out=self.col_cum[1:, :])
        self.min_h = max(2, int(cfg.min_panel * h))
        self.min_w = max(2, int(cfg.min_panel * w))
        self.gap_widths: set[int] = set()  # every gutter width seen: the thresholds of coarser readings
        # panel letters (reduced pixels): a strip whose top-left holds one is a panel, not a sliver, and a
        # sliver holding one (the letter alone in its gutter) joins the strip after it, the panel it names
        self.letters = list(letters)
        self.margin = 0.03 * max(h, w)
        self._panel_like: dict[_Region, bool] = {}  # readings at several thresholds meet the same regions
        self._components: dict[_Region, list[_Region]] = {}
        self._tall: np.ndarray | None = None  # boxes (y0, y1, x0, x1) of components at least min_h tall, on demand

    def panel_like(self, region: _Region) -> bool:
        """`_panel_like` of the ink in `region` and not text, remembered."""
        if region not in self._panel_like:
            y0, y1, x0, x1 = region
            ink = self.ink[y0:y1, x0:x1]
            if self.dark:  # on black only a solid block counts: burned-in text and calipers draw long lines too
                self._panel_like[region] = bool(ink.mean() >= self.cfg.dark_panel_fill)
            else:
                self._panel_like[region] = _panel_like(ink, self.cfg) and not self.text_like(region)
        return self._panel_like[region]

    def text_like(self, region: _Region) -> bool:
        """Ink made only of parts shorter than a panel: lines of text (burned-in labels, a legend), never a panel.

        XY-cut regions are bounded by ink-free lines, so they hold whole components: the figure is
        labelled once and a region holds a tall component when that component's box lies inside it.
        """
        y0, y1, x0, x1 = region
        if y1 - y0 < self.min_h:
            return True
        if self._tall is None:
            labels, _ = ndimage.label(self.ink, structure=np.ones((3, 3), bool))  # 8-connected
            boxes = [(sl[0].start, sl[0].stop, sl[1].start, sl[1].stop) for sl in ndimage.find_objects(labels)]
            self._tall = np.array([b for b in boxes if b[1] - b[0] >= self.min_h], dtype=np.int32).reshape(-1, 4)
        t = self._tall
        inside = (t[:, 0] >= y0) & (t[:, 1] <= y1) & (t[:, 2] >= x0) & (t[:, 3] <= x1)
        return not inside.any()

    def _profiles(self, region: _Region) -> tuple[np.ndarray, np.ndarray]:
        y0, y1, x0, x1 = region
        rows = self.row_cum[y0:y1, x1] - self.row_cum[y0:y1, x0]
        cols = self.col_cum[y1, x0:x1] - self.col_cum[y0, x0:x1]
        return rows, cols

    def _trim(self, region: _Region) -> _Region | None:
        y0, x0 = region[0], region[2]
        rows, cols = self._profiles(region)
        ry, rx = np.flatnonzero(rows), np.flatnonzero(cols)
        if not len(ry) or not len(rx):
            return None
        return y0 + int(ry[0]), y0 + int(ry[-1]) + 1, x0 + int(rx[0]), x0 + int(rx[-1]) + 1

    def split(self, region: _Region, depth: int = 0, min_gap: int = 1) -> list[_Region]:
        """Leaves of the XY-cut of `region`, cutting only at gutters at least `min_gap` wide."""
        trimmed = self._trim(region)
        if trimmed is None:
            return []
        if depth > 12:
            return [trimmed]
        rows, cols = self._profiles(trimmed)
        best: tuple[int, list[_Region]] | None = None
        y0, y1, x0, x1 = trimmed
        rows = self._flat_gutters(rows, self.grey[y0:y1, x0:x1])
        cols = self._flat_gutters(cols, self.grey[y0:y1, x0:x1].T)
        for axis, profile, minimum in ((0, rows, self.min_h), (1, cols, self.min_w)):

            @functools.cache
            def is_sliver(a: int, b: int, axis: int = axis, minimum: int = minimum) -> bool:
                if b - a < minimum:
                    return True
                # a narrow piece of text or tick labels (not a photo, not a plot) is a sliver too, and so is
                # a block of text lines of any size (burned-in labels at the top of an ultrasound frame)
                part = (y0 + a, y0 + b, x0, x1) if axis == 0 else (y0, y1, x0 + a, x0 + b)
                part = self._trim(part)
                if part is None:
                    return True
                if self.letters and any(_letter_at(part, m, self.margin) for m in self.letters):
                    return False  # a lettered panel (a sparse diagram, a plot with little ink) is no sliver
                return not self.panel_like(part) if b - a < 2 * minimum else self.text_like(part)

            def leads(a: int, b: int, axis: int = axis) -> bool:
                part = (y0 + a, y0 + b, x0, x1) if axis == 0 else (y0, y1, x0 + a, x0 + b)
                return any(_centre_in(part, m) for m in self.letters)

            pieces, widest, gaps = _pieces(profile, is_sliver, min_gap, leads if self.letters else None)
            self.gap_widths.update(gaps)
            if len(pieces) >= 2 and (best is None or widest > best[0]):
                if axis == 0:
                    parts = [(y0 + a, y0 + b, x0, x1) for a, b in pieces]
                else:
                    parts = [(y0, y1, x0 + a, x0 + b) for a, b in pieces]
                best = (widest, parts)
        if best is None:
            return [trimmed]
        return [leaf for part in best[1] for leaf in self.split(part, depth + 1, min_gap)]

    def _flat_gutters(self, profile: np.ndarray, grey: np.ndarray) -> np.ndarray:
        """The ink profile along the rows of `grey` with every ink-free band that has no flat line (RMS distance
        to the page colour at most the limit) filled in: no gutter there. Lines are tried from the band's middle out."""
        empty = profile == 0
        if not empty.any():
            return profile
        edges = np.flatnonzero(np.diff(np.concatenate(([0], empty.view(np.int8), [0]))))
        limit = self.limit ** 2 * grey.shape[1]
        filled = profile
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            middle = (a + b) // 2
            lines = sorted(range(a, b), key=lambda i: abs(i - middle))
            if not any(_square_sum(grey[i], self.page) <= limit for i in lines):
                if filled is profile:
                    filled = profile.copy()
                filled[a:b] = 1
        return filled

    def components(self, leaf: _Region) -> list[_Region]:
        """Split a leaf by panel-like connected components (see the module docstring), else keep it."""
        if leaf not in self._components:
            self._components[leaf] = self._split_components(leaf)
        return self._components[leaf]

    def _split_components(self, leaf: _Region) -> list[_Region]:
        y0, y1, x0, x1 = leaf
        if (y1 - y0) < 2 * self.min_h or (x1 - x0) < 2 * self.min_w:
            return [leaf]
        ink = self.ink[y0:y1, x0:x1]
        labels, count = ndimage.label(ink, structure=np.ones((3, 3), bool))  # 8-connected
        if count < 2:
            return [leaf]
        slices = ndimage.find_objects(labels)
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        total = sizes[1:].sum()
        big: list[_Region] = []
        big_ink = 0
        for index, sl in enumerate(slices, start=1):
            h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            if h < self.min_h or w < self.min_w:
                continue
            fill = sizes[index] / float(h * w)
            framed = _framed(labels[sl] == index)
            if fill >= self.cfg.component_fill or framed:
                big.append((y0 + sl[0].start, y0 + sl[0].stop, x0 + sl[1].start, x0 + sl[1].stop))
                big_ink += sizes[index]
        if len(big) < 2 or big_ink < self.cfg.component_ink * total or _any_overlap(big):
            return [leaf]
        if not self._page_between(big):
            return [leaf]
        return big


    def _page_between(self, boxes: list[_Region]) -> bool:
        """The gaps between neighbouring boxes are page as a gutter is: mostly the flat page colour (a letter in
        it is fine), not the dark or bright texture between two parts of one image (a shadow, a spine)."""
        for a, b in itertools.permutations(boxes, 2):
            if a[1] <= b[0] and max(a[2], b[2]) < min(a[3], b[3]):  # b below a
                gap = (a[1], b[0], max(a[2], b[2]), min(a[3], b[3]))
            elif a[3] <= b[2] and max(a[0], b[0]) < min(a[1], b[1]):  # b right of a
                gap = (max(a[0], b[0]), min(a[1], b[1]), a[3], b[2])
            else:
                continue
            if _any_overlap([gap] + [c for c in boxes if c is not a and c is not b]):
                continue  # another panel between them: not neighbours
            y0, y1, x0, x1 = gap
            if np.median(np.abs(self.grey[y0:y1, x0:x1] - self.page)) > self.limit / 2:
                return False
        return True


def _square_sum(line: np.ndarray, page: int) -> int:
    deviation = line.astype(np.int32) - page  # int16 squares would overflow
    return int(np.dot(deviation, deviation))


def _longest_run(ink: np.ndarray) -> int:
    """The longest horizontal run of ink in a mask (vectorised: run length = count since the last gap)."""
    count = np.cumsum(ink, axis=1, dtype=np.int32)
    at_gap = np.where(ink, 0, count)
    return int((count - np.maximum.accumulate(at_gap, axis=1)).max(initial=0))


def _panel_like(ink: np.ndarray, cfg: GutterConfig) -> bool:
    """A photo-like piece (mostly ink) or a plot-like one (a long horizontal and a long vertical line)."""
    h, w = ink.shape
    if not h or not w:
        return False
    if ink.mean() >= cfg.panel_fill:
        return True
    return _longest_run(ink) >= cfg.panel_axis * w and _longest_run(ink.T) >= cfg.panel_axis * h


def _framed(component: np.ndarray) -> bool:
    """A component whose box edges are mostly its own ink: a framed plot or a bordered panel."""
    h, w = component.shape
    if h < 8 or w < 8:
        return False
    edges = [component[0].mean(), component[-1].mean(), component[:, 0].mean(), component[:, -1].mean()]
    return sum(e >= 0.9 for e in edges) >= 3


def _any_overlap(regions: list[_Region]) -> bool:
    for i, a in enumerate(regions):
        for b in regions[i + 1:]:
            if min(a[1], b[1]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[2], b[2]):
                return True
    return False


def _pieces(
    profile: np.ndarray, is_sliver: Callable[[int, int], bool], min_gap: int = 1,
    leads: Callable[[int, int], bool] | None = None,
) -> tuple[list[tuple[int, int]], int, list[int]]:
    """Content runs of a trimmed profile cut at ink-free bands at least `min_gap` wide, slivers joined to a neighbour.

    Returns the runs (start, stop),
    the widest gutter left between them and the widths of every ink-free band.
    """
    empty = profile == 0
    if not empty.any():
        return [(0, len(profile))], 0, []
    edges = np.flatnonzero(np.diff(np.concatenate(([1], empty.view(np.int8), [1]))))
    # edges alternate: content start, content stop (profile is trimmed, so it starts and ends with ink)
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    bands = [b[0] - a[1] for a, b in itertools.pairwise(runs)]
    merged = [runs[0]]
    for run in runs[1:]:  # bands narrower than min_gap are no gutters at this reading
        if run[0] - merged[-1][1] < min_gap:
            merged[-1] = (merged[-1][0], run[1])
        else:
            merged.append(run)
    runs = merged
    while len(runs) >= 2:
        slivers = [i for i, (a, b) in enumerate(runs) if is_sliver(a, b)]
        if not slivers:
            break
        small = min(slivers, key=lambda i: runs[i][1] - runs[i][0])
        gap_before = runs[small][0] - runs[small - 1][1] if small > 0 else None
        gap_after = runs[small + 1][0] - runs[small][1] if small + 1 < len(runs) else None
        # join across the narrower gap; ties go to the run after (a label precedes its panel)
        letter = leads is not None and gap_after is not None and leads(*runs[small])  # a panel letter: its panel is after it
        if gap_after is not None and (letter or gap_before is None or gap_after <= gap_before):
            runs[small:small + 2] = [(runs[small][0], runs[small + 1][1])]
        else:
            runs[small - 1:small + 1] = [(runs[small - 1][0], runs[small][1])]
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(runs)]
    return runs, max(gaps, default=0), bands


def _merge_small(regions: list[_Region], min_w: int, min_h: int) -> list[_Region]:
    """Leaves thinner than a panel join the nearest panel when that overlaps no other panel, else are dropped."""
    big = [r for r in regions if r[1] - r[0] >= min_h and r[3] - r[2] >= min_w]
    small = [r for r in regions if r not in big]
    for s in sorted(small, key=lambda r: -(r[1] - r[0]) * (r[3] - r[2])):
        if not big:
            break
        distances = [_gap(s, b) for b in big]
        order = np.argsort(distances)
        target = int(order[0])
        union = _union(big[target], s)
        if not _any_overlap([union] + [b for i, b in enumerate(big) if i != target]):
            big[target] = union
    return big


def _gap(a: _Region, b: _Region) -> int:
    dy = max(0, max(a[0], b[0]) - min(a[1], b[1]))
    dx = max(0, max(a[2], b[2]) - min(a[3], b[3]))
    return max(dx, dy)


def _union(a: _Region, b: _Region) -> _Region:
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def panel_letter_run(letters: Sequence[Letter], expected: int | None = None) -> list[Letter] | None:
    """The panel letters among OCR'd glyphs: one complete run a..k (or A..K, k >= 2) of one case, or None.

    Letters of the run's case past it are strays (an "H" of a structure, a "T" of an axis title)
    when they are at least 4 letters past the run's end; one closer (A-F then H) means a letter was
    missed, and a missed letter would make its panel join a neighbour: no run. With the caption's
    count `expected`, the run must be exactly that long. Digits and primed letters (B') are never used.
    """
    best = None
    for upper in (True, False):
        marks = [m for m in letters if len(str(m[0])) == 1 and str(m[0]).isalpha() and str(m[0]).isupper() == upper]
        ranks = {ord(str(m[0]).lower()) - ord("a") + 1 for m in marks}
        k = 0
        while k + 1 in ranks:
            k += 1
        if k < 2 or any(k + 1 < r <= k + 3 for r in ranks):
            continue
        if expected is not None and k != expected:
            continue
        run = [m for m in marks if ord(str(m[0]).lower()) - ord("a") + 1 <= k]
        if best is None or k > best[0]:
            best = (k, run)
    return best[1] if best else None


def _letter_at(region: _Region, mark: Letter, margin: float) -> bool:
    """The glyph's centre is in the region's top-left corner (reaching `margin` into the gutter above/left of it)."""
    y0, y1, x0, x1 = region
    height = float(mark[3]) if len(mark) > 3 and mark[3] else 0.0
    cx, cy = mark[1] + height / 2, mark[2] + height / 2
    return (x0 - margin <= cx <= x0 + max(0.3 * (x1 - x0), 2 * margin)
            and y0 - margin <= cy <= y0 + max(0.3 * (y1 - y0), 2 * margin))


def _centre_in(region: _Region, mark: Letter) -> bool:
    y0, y1, x0, x1 = region
    height = float(mark[3]) if len(mark) > 3 and mark[3] else 0.0
    return x0 <= mark[1] + height / 2 < x1 and y0 <= mark[2] + height / 2 < y1


def _group_by_letters(leaves: list[_Region], run: Sequence[Letter], margin: float, confirmed: bool = False
                      ) -> list[_Region] | None:
    """One region per letter of `run`: each letterless leaf joined to a lettered neighbour (see `_lettered`), or None."""
    letters = sorted({str(m[0]) for m in run})
    owner: dict[str, int] = {}
    for letter in letters:
        holders = {i for m in run if str(m[0]) == letter for i, leaf in enumerate(leaves) if _letter_at(leaf, m, margin)}
        if len(holders) != 1:
            return None  # a letter in no piece's corner, or in two: this reading does not fit the letters
        owner[letter] = holders.pop()
    if len(set(owner.values())) != len(owner):
        return None  # two letters in one piece: never split here, and never merge those
    groups = {owner[letter]: leaves[owner[letter]] for letter in letters}
    anchor = {owner[letter]: [m for m in run if str(m[0]) == letter] for letter in letters}
    free = [i for i in range(len(leaves)) if i not in groups]
    if not confirmed:  # a piece after the last letter may be the panel of a next letter OCR missed
        ly0, ly1, lx0, _ = leaves[owner[max(letters, key=str.lower)]]  # the last letter's piece
        if any(leaves[i][0] >= ly1 or (min(leaves[i][1], ly1) > max(leaves[i][0], ly0) and leaves[i][2] > lx0)
               for i in free):  # in a row below it, or right of it in its row
            return None
    while free:
        progress = False
        for i in sorted(free, key=lambda i: (leaves[i][0], leaves[i][2])):
            if i not in free:
                continue
            choice = None
            for g, box in groups.items():
                union, absorbed = _grow(_union(box, leaves[i]), [leaves[j] for j in free], free)
                others = [b for h, b in groups.items() if h != g]
                if _any_overlap([union] + others):
                    continue
                if not any(_letter_at(union, m, margin) for m in anchor[g]):
                    continue
                distance = _gap(box, leaves[i])
                if choice is None or distance < choice[0]:
                    choice = (distance, g, union, absorbed)
            if choice is None:
                continue
            _, g, union, absorbed = choice
            groups[g] = union
            free = [j for j in free if j not in absorbed and j != i]
            progress = True
        if not progress:
            return None  # a letterless piece no lettered neighbour can take: maybe a panel whose letter was missed
    return list(groups.values())


def _grow(union: _Region, pieces: list[_Region], index: list[int]) -> tuple[_Region, set[int]]:
    """`union` grown over every piece it overlaps until it overlaps none partly; the indices it took in."""
    taken: set[int] = set()
    changed = True
    while changed:
        changed = False
        for j, piece in zip(index, pieces, strict=True):
            if j not in taken and _any_overlap([union, piece]):
                union, changed = _union(union, piece), True
                taken.add(j)
    return union, taken
