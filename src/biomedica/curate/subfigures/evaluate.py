"""How well subfigures are separated: detectors on hand-labelled real figures and on held-out
synthetic figures, the caption splitter on hand-labelled real captions.

What `biomedica eval subfigures` and `benchmarks/subfigures.py` report. The labels are JSON
files (`tests/data/subfigures/`: how they were made is in its README); the images stay where
the labels point (`../shared/fixtures`), never copied. A figure labelled on a whole PDF page
(`figure_box`) is cut out of the page first and its boxes shifted; a page labelled
`no_figure` is not a figure and is left out. Ambiguous labels are scored, and also reported
apart (`clear` rows leave them out). A labelled figure with its caption gives the detector the
caption's count hint (`pairing.expected_panels`), as `curate subfigures` does; `hints=False`
measures the image alone.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from biomedica.curate.subfigures.boxes import Box, PanelDetector, uses_letters
from biomedica.curate.subfigures.captions import split_caption
from biomedica.curate.subfigures.metrics import DetectionReport, figure_boxes, figure_correct, subcaption_exact_match
from biomedica.curate.subfigures.pairing import expected_panels
from biomedica.curate.subfigures.synthetic import SyntheticConfig

# (name, image, truth boxes, ambiguous) or the same with the caption's count hint (int or None) last
Figure = tuple[str, Image.Image, Sequence[Box], bool] | tuple[str, Image.Image, Sequence[Box], bool, int | None]


@dataclass(frozen=True)
class LabelledFigure:
    """One hand-labelled figure: where its image is, the truth boxes (figure pixels) and whether the label is ambiguous."""

    name: str  # the image path as the labels write it (relative to the fixtures folder)
    path: Path
    truth: tuple[Box, ...]
    ambiguous: bool = False
    figure_box: tuple[int, int, int, int] | None = None  # on a page image: the figure's region
    caption: str | None = None  # the figure's caption as the pipeline stores it, when labelled with one

    @property
    def expected_panels(self) -> int | None:
        """The caption's count hint (A-D: 4), None without a caption or a complete run of labels."""
        return expected_panels(self.caption) if self.caption else None

    def open(self) -> Image.Image:
        """The figure image (cut from its page when labelled on one), loaded."""
        with Image.open(self.path) as image:
            image.load()
            return image.crop(self.figure_box) if self.figure_box else image.copy()


def load_panel_labels(labels: Path, fixtures: Path) -> list[LabelledFigure]:
    """The figures of a `real_panels.json` with their images under `fixtures`; a missing image is an error."""
    labels, fixtures = Path(labels), Path(fixtures)
    data = _read_json(labels)
    figures = []
    for entry in data["figures"]:
        if entry.get("no_figure"):
            continue
        path = fixtures / entry["image"]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: labelled in {labels} but missing; point --fixtures at the shared fixtures folder")
        dx, dy = (entry["figure_box"][:2] if entry.get("figure_box") else (0, 0))
        truth = tuple(Box(x0 - dx, y0 - dy, x1 - dx, y1 - dy) for x0, y0, x1, y1 in (p["box"] for p in entry["panels"]))
        figures.append(LabelledFigure(entry["image"], path, truth, bool(entry.get("ambiguous")),
                                      tuple(entry["figure_box"]) if entry.get("figure_box") else None,
                                      entry.get("caption")))
    return figures


@dataclass
class DetectorEvaluation:
    """A detector's numbers on a set of figures, all and clear (not ambiguous) ones, with its speed."""

    detector: str
    dataset: str
    report: DetectionReport
    clear: DetectionReport | None
    seconds: float  # detection time only (images decoded before the clock starts)
    wrong: list[str] = field(default_factory=list)  # figures not separated exactly (names)
    hints: int = 0  # figures the detector got a caption count hint for

    @property
    def figures_per_second(self) -> float:
        return self.report.figures / self.seconds if self.seconds else float("nan")


def evaluate_detector(
    detector: PanelDetector, figures: Sequence[Figure], dataset: str,
    progress: Callable[[int], None] | None = None, hints: bool = True, batch_size: int = 8,
    letters: Sequence[Sequence[tuple] | None] | None = None,
) -> DetectorEvaluation:
    """Run `detector` on (name, image, truth boxes, ambiguous[, count hint]) figures; single figures count as one
    whole-image box. The hint reaches the detector only with `hints` (False: the image alone). A detector with
    `detect_batch` (the model) gets `batch_size` figures per call, as a GPU wants them. `letters`: per figure,
    the panel letters OCR read (`ocr_letters`), given to a detector that `uses_letters` (one at a time)."""
    preds, truths, clear_preds, clear_truths, wrong = [], [], [], [], []
    seconds = 0.0
    hinted = 0
    batched = getattr(detector, "detect_batch", None)
    takes_letters = letters is not None and uses_letters(detector)
    if takes_letters:
        batched = None
    step = batch_size if batched else 1
    for first in range(0, len(figures), step):
        chunk = figures[first:first + step]
        chunk_hints = [(rest[0] if rest and hints else None) for _, _, _, _, *rest in chunk]
        hinted += sum(hint is not None for hint in chunk_hints)
        start = time.perf_counter()
        if batched:
            found = batched([figure[1] for figure in chunk], chunk_hints)
        elif takes_letters:
            found = [detector.detect(chunk[0][1], expected_panels=chunk_hints[0], letters=letters[first])]
        else:
            found = [detector.detect(chunk[0][1], expected_panels=chunk_hints[0])]
        seconds += time.perf_counter() - start
        for (name, image, truth, ambiguous, *_), boxes in zip(chunk, found, strict=True):
            pred = figure_boxes(boxes, *image.size)
            expected = figure_boxes(list(truth), *image.size)
            preds.append(pred)
            truths.append(expected)
            if not ambiguous:
                clear_preds.append(pred)
                clear_truths.append(expected)
            if not figure_correct(pred, expected):
                wrong.append(f"{name} ({len(pred)} found, {len(expected)} labelled)")
        if progress:
            progress(len(chunk))
    clear = DetectionReport.evaluate(clear_preds, clear_truths) if clear_truths else None
    return DetectorEvaluation(detector.name, dataset, DetectionReport.evaluate(preds, truths), clear, seconds, wrong,
                              hinted)


def real_figures(labels: Path, fixtures: Path) -> list[tuple[str, Image.Image, tuple[Box, ...], bool, int | None]]:
    """The labelled real figures, decoded, with their caption count hints, as `evaluate_detector` takes them."""
    return [(f.name, f.open(), f.truth, f.ambiguous, f.expected_panels) for f in load_panel_labels(labels, fixtures)]


# -- captions ---------------------------------------------------------------------------------

# the hand labels keep a separator before the next marker with their part ("... biogenesis, and");
# a split that leaves it out is the same split
_TRAILING_SEPARATOR = re.compile(r"(?:[\s,;]+|\s+(?:and|or)\b)+$")


def _part_text(text: str) -> str:
    return _TRAILING_SEPARATOR.sub("", " ".join(text.split()))


def _as_mapping(lead: str, parts: Sequence[tuple[Sequence[str], str]]) -> dict[str, str]:
    """A split as `subcaption_exact_match` compares it: the lead under "", each part under its position and labels."""
    if not parts:  # no panels: nothing to split (the lead is the whole caption, however written)
        return {}
    mapping = {"": _part_text(lead)}
    for index, (labels, text) in enumerate(parts):
        mapping[f"{index}:{','.join(label.casefold() for label in labels)}"] = _part_text(text)
    return mapping


@dataclass
class CaptionEvaluation:
    """Exact-match rate of the caption splitter on hand-split captions (all, and clear ones)."""

    captions: int
    exact: int
    clear_captions: int
    clear_exact: int
    with_parts: int  # hand splits with at least one part
    seconds: float
    wrong: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.exact / self.captions if self.captions else float("nan")

    @property
    def clear_rate(self) -> float:
        return self.clear_exact / self.clear_captions if self.clear_captions else float("nan")


def evaluate_captions(labels: Path) -> CaptionEvaluation:
    """Split every caption of a `real_captions.json` and compare with its hand split."""
    entries = _read_json(Path(labels))["captions"]
    result = CaptionEvaluation(0, 0, 0, 0, 0, 0.0)
    for entry in entries:
        start = time.perf_counter()
        split = split_caption(entry["caption"])
        result.seconds += time.perf_counter() - start
        pred = _as_mapping(split.lead, [(p.labels, p.text) for p in split.parts])
        truth = _as_mapping(entry["lead"], [(p["labels"], p["text"]) for p in entry["parts"]])
        match = subcaption_exact_match(pred, truth)
        result.captions += 1
        result.exact += match
        result.with_parts += bool(entry["parts"])
        if not entry.get("ambiguous"):
            result.clear_captions += 1
            result.clear_exact += match
        if not match:
            result.wrong.append(f"{entry['source']} {entry.get('fig_id')}")
    return result


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: label file not found; pass --labels the folder holding real_panels.json "
                                "and real_captions.json (tests/data/subfigures in a checkout)") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); restore it from the repository") from None


# -- synthetic held-out figures ------------------------------------------------------------------


def synthetic_figures(pool: Sequence[Image.Image], count: int, seed: int,
                      synthetic: SyntheticConfig | None = None) -> list[Figure]:
    """`count` generated figures (seed `seed`) from `pool`, with their true boxes and the count a caption would name.

    Use a seed and a pool training never saw (`synthetic.single_panel_pool(archive, "eval")`).
    """
    import random

    from biomedica.curate.subfigures.synthetic import generate_figure

    rng = random.Random(seed)
    figures: list[Figure] = []
    for index in range(count):
        figure = generate_figure(pool, rng, synthetic)
        truth = tuple(figure.boxes)
        labelled = len(truth) >= 2 and all(label for label in figure.labels)
        figures.append((f"synthetic-{seed}-{index:05d}", figure.image, truth, False, len(truth) if labelled else None))
    return figures


# -- the whole evaluation (`biomedica eval subfigures`, benchmarks/subfigures.py) ---------------


class SubfigureEvalConfig(BaseModel):
    """What `biomedica eval subfigures` evaluates: which detectors, on which sets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: Path = Field(description="folder with real_panels.json and real_captions.json (tests/data/subfigures)")
    fixtures: Path = Field(description="the folder the labels' image paths are relative to (../shared/fixtures)")
    weights: Path | None = Field(default=None, description="model detector weights; none: the gutter detector only")
    device: str = "cpu"
    archive: Path | None = Field(default=None, description="archive whose eval-split single images make the synthetic set")
    synthetic: int = Field(default=200, ge=0, description="held-out synthetic figures (0: none)")
    seed: int = Field(default=1, description="generator seed of the synthetic set (training uses 0)")
    threads: int | None = Field(default=1, ge=1, description="torch threads (1: per-core speed)")
    ocr: bool = Field(default=False, description="also rows with the panel letters OCR reads (the ocr extra; ~1 s a figure)")


def run_evaluation(config: SubfigureEvalConfig, progress: Callable[[int], None] | None = None) -> list[dict]:
    """Every (set, detector, hint) row and the caption row, as dicts (see `markdown_table`)."""
    from biomedica.curate.subfigures.gutter import GutterDetector

    detectors: list[PanelDetector] = [GutterDetector()]
    if config.weights is not None:
        from biomedica.curate.subfigures.run import make_detector

        if config.threads:
            import torch

            torch.set_num_threads(config.threads)
        detectors.append(make_detector("model", config.weights, config.device))
    sets: list[tuple[str, list[Figure]]] = [("real", real_figures(config.labels / "real_panels.json", config.fixtures))]
    if config.synthetic and config.archive is not None:
        from biomedica.curate.subfigures.synthetic import single_panel_pool

        pool = single_panel_pool(config.archive, "eval")
        if not pool:
            raise ValueError(f"{config.archive}: no single-panel images in its eval articles; use a larger archive")
        sets.append((f"synthetic (seed {config.seed}, {len(pool)} eval-pool images)",
                     synthetic_figures(pool, config.synthetic, config.seed)))
    real_letters = None
    if config.ocr:
        real_letters = figure_letters(detectors[0], sets[0][1], load_panel_labels(config.labels / "real_panels.json",
                                                                                  config.fixtures))
    rows = []
    for name, figures in sets:
        for detector in detectors:
            modes = [(False, None), (True, None)]
            if real_letters is not None and name == "real":
                modes.append((True, real_letters[0]))
            for hints, letters in modes:
                result = evaluate_detector(detector, figures, name, progress, hints=hints, letters=letters)
                hint = "none" if not hints else f"caption ({result.hints})"
                per_s = result.figures_per_second
                if letters is not None:
                    hint = f"caption + letters ({real_letters[1]} OCR'd)"
                    per_s = result.report.figures / (result.seconds + real_letters[2])  # the OCR time included
                for subset, report in (("all", result.report), ("clear", result.clear)):
                    if report is None or (subset == "clear" and report.figures == result.report.figures):
                        continue
                    rows.append({"set": name, "subset": subset, "detector": detector.name,
                                 "hint": hint, **report.as_row(),
                                 "figures_per_s": round(per_s, 1),
                                 "wrong": result.wrong if subset == "all" else []})
    captions = evaluate_captions(config.labels / "real_captions.json")
    rows.append({"set": "real captions", "subset": "all", "detector": "split_caption", "hint": "-",
                 "captions": captions.captions, "exact_match": round(captions.rate, 4),
                 "clear_captions": captions.clear_captions, "clear_exact_match": round(captions.clear_rate, 4),
                 "captions_per_s": round(captions.captions / captions.seconds, 1) if captions.seconds else None,
                 "wrong": captions.wrong})
    return rows


def figure_letters(detector: PanelDetector, figures: Sequence[Figure], labelled: Sequence[LabelledFigure]
                   ) -> tuple[list[list[tuple] | None], int, float]:
    """Per figure, the panel letters OCR reads, read as `curate subfigures --ocr auto` does: only for figures
    that look compound (>= 2 boxes with the caption hint, or a caption naming >= 2 panels). Returns the
    letters (None: not read), how many figures were read and the OCR seconds."""
    from biomedica.curate.subfigures.pairing import ocr_letters

    letters: list[list[tuple] | None] = []
    read, seconds = 0, 0.0
    for (_, image, _, _, *rest), figure in zip(figures, labelled, strict=True):
        hint = rest[0] if rest else None
        named = len(split_caption(figure.caption).labels()) if figure.caption else 0
        if len(detector.detect(image.copy(), expected_panels=hint)) < 2 and named < 2:
            letters.append(None)
            continue
        start = time.perf_counter()
        found = ocr_letters(image)
        seconds += time.perf_counter() - start
        if found is None:
            raise ImportError("--ocr needs rapidocr-onnxruntime: pip install 'biomedica[ocr]'")
        letters.append(found)
        read += 1
    return letters, read, seconds


def markdown_table(rows: Sequence[dict]) -> str:
    """The detection rows as one Markdown table, then the caption row in a sentence."""
    head = "| set | subset | detector | hint | figures | figure acc. | mAP@0.5 | mean IoU | panels true / found | figures/s (1 core) |"
    lines = [head, "|" + "|".join("---" for _ in range(10)) + "|"]
    tail = []
    for row in rows:
        if "figures" in row:
            lines.append(f"| {row['set']} | {row['subset']} | {row['detector']} | {row['hint']} | {row['figures']} | "
                         f"{_rate(row['figure_accuracy'])} | {_rate(row['map50'])} | {_rate(row['mean_iou'])} | "
                         f"{row['panels_true']} / {row['panels_pred']} | {row['figures_per_s']} |")
        else:
            tail.append(f"caption splitter: exact match {_rate(row['exact_match'])} of {row['captions']} hand-split real "
                        f"captions ({_rate(row['clear_exact_match'])} of the {row['clear_captions']} clear ones), "
                        f"{row['captions_per_s']} captions/s")
    return "\n".join(lines + [""] + tail)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
