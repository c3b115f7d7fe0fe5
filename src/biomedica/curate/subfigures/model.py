"""The learned panel detector: a torchvision FCOS trained on synthetic compound figures.

Why FCOS: it is anchor-free (panels range from thin strips to whole figures, so fixed
anchor shapes fit them badly), one-stage (cheaper per step than Faster R-CNN's two), and
trains from random weights to a usable panel detector in minutes of CPU on small inputs.
Open-PMC-18M used DAB-DETR (480 px, score 0.2, NMS 0.2); DETR-family models need
hundreds of thousands of steps to converge (bipartite matching, slow attention training) and
are out of reach on a CPU, so they are not offered here.

Presets (`DetectorConfig.preset`):
- `tiny`: a 5-stage plain CNN + FPN, 256 px input; trains in the tests on CPU in seconds
  (the loss decreases; the boxes are not good yet). Measured: 707 steps x 8 figures in 13 min
  on 2 shared CPU cores (33 pool images of the test archive), thresholds calibrated on
  training-pool figures: held-out synthetic figures (other articles, other seed, n=300)
  mAP@0.5 0.955, mean IoU 0.850, figure accuracy 0.747 (0.437 before calibration).
- `mid`: the tiny backbone wider, 320 px; for a longer CPU run.
- `gpu`: ResNet-50 FPN (torchvision's FCOS), 512 px input, batch 16, 20k steps (not yet run on a GPU).

After training, `calibrate_thresholds` picks the score / NMS pair with the best figure-level
accuracy on training-pool figures of another seed and stores it in the weights file.

Nothing is downloaded: `weights=None, weights_backbone=None`; `backbone_weights` may name a
local state-dict file (e.g. ImageNet ResNet-50 weights fetched by hand) loaded into the
backbone body before training. The weights file is a plain `torch.save` of
`{"format": WEIGHTS_FORMAT, "config": <JSON-able dict>, "state_dict": ..., "train": {...}}`,
written atomically and loaded with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from biomedica.curate.subfigures.boxes import Box
from biomedica.curate.subfigures.synthetic import SyntheticConfig, SyntheticFigure, generate_figure, jpeg_roundtrip

WEIGHTS_FORMAT = "biomedica-subfigure-detector/1"
HINT_SCORE_FLOOR = 0.5  # with a caption count hint, boxes scoring half the threshold may fill up to the count
TRAIN_HINT = "train one with `biomedica curate train-subfigure-detector ARCHIVE --out PATH`"
PresetName = Literal["tiny", "mid", "gpu"]


class DetectorConfig(BaseModel):
    """Architecture, input size and training schedule of a panel detector (stored in the weights file)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "tiny"  # the preset it started from
    arch: Literal["fcos"] = "fcos"
    backbone: Literal["tiny", "resnet18", "resnet50"] = "tiny"
    width: int = Field(32, ge=8, description="channels of the first tiny-backbone stage (doubling per stage, capped)")
    fpn_channels: int = Field(64, ge=32, multiple_of=32, description="FPN and head channels (GroupNorm of 32 groups)")
    head_convs: int = Field(4, ge=1, le=4, description="conv layers of each FCOS head branch")
    input_size: int = Field(256, ge=64, le=2048, description="the figure's longer side is resized to this")
    steps: int = Field(300, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_steps: int = Field(50, ge=0)
    grad_clip: float = Field(5.0, gt=0)
    score_threshold: float = Field(0.3, ge=0, le=1)
    nms_iou: float = Field(0.3, ge=0, le=1)
    max_detections: int = Field(30, ge=1)
    jpeg_prob: float = Field(0.5, ge=0, le=1, description="share of training figures passed through JPEG")
    grey_prob: float = Field(0.1, ge=0, le=1, description="share of training figures turned grey")
    figure_max_side: int = Field(1000, ge=64, description="largest generated figure side")
    backbone_weights: Path | None = Field(None, description="optional local state dict for the backbone body")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> DetectorConfig:
        """The `tiny`, `mid` or `gpu` preset, fields replaced by `overrides`."""
        presets: dict[str, dict[str, Any]] = {
            "tiny": {"name": "tiny", "backbone": "tiny", "width": 16, "fpn_channels": 64, "head_convs": 2,
                     "input_size": 256, "steps": 400, "batch_size": 8, "lr": 2e-3, "warmup_steps": 30,
                     "figure_max_side": 640},
            "mid": {"name": "mid", "backbone": "tiny", "width": 32, "fpn_channels": 96, "head_convs": 3,
                    "input_size": 320, "steps": 1500, "batch_size": 8, "lr": 2e-3, "warmup_steps": 50,
                    "figure_max_side": 800},
            "gpu": {"name": "gpu", "backbone": "resnet50", "fpn_channels": 256, "head_convs": 4, "input_size": 512,
                    "steps": 20000, "batch_size": 16, "lr": 1e-4, "warmup_steps": 500, "figure_max_side": 1400},
        }
        if name not in presets:
            raise ValueError(f"detector preset {name!r}: use one of {', '.join(presets)}")
        return cls(**{**presets[name], **overrides})

    def to_json(self) -> dict[str, Any]:
        """A plain dict (str/int/float/None) that torch.load(weights_only=True) reads back."""
        data = self.model_dump()
        data["backbone_weights"] = None if self.backbone_weights is None else str(self.backbone_weights)
        return data


# --- the network -----------------------------------------------------------------------------

def _tiny_body(width: int):
    """Five conv stages (stride 2 each, BN + ReLU), channels width, 2w, 4w, 8w, 8w: fast on a CPU."""
    from torch import nn

    def stage(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )

    chans = [width, width * 2, width * 4, width * 8, width * 8]
    layers = OrderedDict()
    cin = 3
    for i, cout in enumerate(chans, start=1):
        layers[f"s{i}"] = stage(cin, cout)
        cin = cout
    return nn.Sequential(layers), chans


def build_model(config: DetectorConfig):
    """An untrained FCOS for one class "panel" (+ background) as `config` describes; nothing downloaded."""
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.backbone_utils import BackboneWithFPN, _resnet_fpn_extractor
    from torchvision.models.detection.fcos import FCOSHead
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    if config.backbone == "tiny":
        body, chans = _tiny_body(config.width)
        backbone = BackboneWithFPN(body, {"s3": "0", "s4": "1", "s5": "2"}, chans[2:], config.fpn_channels,
                                   extra_blocks=LastLevelP6P7(config.fpn_channels, config.fpn_channels))
    elif config.backbone in ("resnet18", "resnet50"):
        from torchvision.models import resnet18, resnet50

        resnet = (resnet18 if config.backbone == "resnet18" else resnet50)(weights=None)
        _load_backbone_weights(resnet, config.backbone_weights)
        backbone = _resnet_fpn_extractor(resnet, 5, returned_layers=[2, 3, 4],
                                         extra_blocks=LastLevelP6P7(config.fpn_channels, config.fpn_channels))
        if config.fpn_channels != backbone.out_channels:
            raise ValueError(f"backbone {config.backbone}: fpn_channels must be {backbone.out_channels}")
    else:  # pragma: no cover - pydantic limits the names
        raise ValueError(f"backbone {config.backbone!r}: use tiny, resnet18 or resnet50")
    head = FCOSHead(backbone.out_channels, 1, 2, num_convs=config.head_convs)
    model = FCOS(backbone, num_classes=2, head=head, min_size=config.input_size, max_size=config.input_size,
                 score_thresh=0.05, nms_thresh=0.6, detections_per_img=max(50, config.max_detections),
                 topk_candidates=500)
    if config.backbone == "tiny" and config.backbone_weights is not None:
        _load_backbone_weights(backbone.body, config.backbone_weights)
    return model


def _load_backbone_weights(module, path: Path | None) -> None:
    if path is None:
        return
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: backbone weights file not found; pass a local state-dict file or leave it out")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one message
        raise ValueError(f"{path}: not a readable torch state dict ({type(exc).__name__}); pass another file") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    own = module.state_dict()
    if not isinstance(state, dict) or not any(k in own and getattr(v, "shape", None) == own[k].shape
                                                  for k, v in state.items()):
        raise ValueError(f"{path}: no tensor of it matches the {type(module).__name__} backbone; pass its own weights")
    module.load_state_dict({k: v for k, v in state.items() if k in own and v.shape == own[k].shape}, strict=False)


# --- tensors -------------------------------------------------------------------------------

def _resize(image: Image.Image, side: int) -> tuple[Image.Image, float, float]:
    """The image with its longer side `side` (RGB) and the (sx, sy) factors back to the original pixels."""
    width, height = image.size
    scale = side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    return resized, width / size[0], height / size[1]


def _to_tensor(image: Image.Image):
    import numpy as np
    import torch

    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def _training_sample(figure: SyntheticFigure, config: DetectorConfig, rng: random.Random):
    import torch

    image = figure.image
    if rng.random() < config.jpeg_prob:
        image = jpeg_roundtrip(image, rng)
    if rng.random() < config.grey_prob:
        image = image.convert("L").convert("RGB")
    resized, sx, sy = _resize(image, config.input_size)
    boxes = torch.tensor([[b.x0 / sx, b.y0 / sy, b.x1 / sx, b.y1 / sy] for b in figure.boxes], dtype=torch.float32)
    return _to_tensor(resized), {"boxes": boxes, "labels": torch.ones(len(figure.boxes), dtype=torch.int64)}


# --- training ------------------------------------------------------------------------------

@dataclass
class TrainReport:
    """What a training run did (also stored under "train" in the weights file)."""

    out: Path
    steps: int
    seed: int
    pool_size: int
    first_loss: float
    final_loss: float  # mean of the last 10% of steps
    seconds: float
    samples_per_s: float
    device: str
    preset: str
    losses: list[float] = field(default_factory=list, repr=False)

    def stored(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        data.pop("losses")
        return data


FigureSource = Sequence[Image.Image] | Callable[[random.Random], SyntheticFigure]


def train_detector(pool: FigureSource, config: DetectorConfig, out: Path, seed: int = 0, device: str = "auto",
                   progress: Callable[[int, float], None] | None = None,
                   synthetic: SyntheticConfig | None = None, max_seconds: float | None = None,
                   overwrite: bool = False) -> TrainReport:
    """Train a panel detector on figures generated on the fly (seeded) and write `out` atomically.

    `pool`: single-panel images for `generate_figure`, or a callable `rng -> SyntheticFigure`.
    `progress(steps_done, loss)` is called after every step. `max_seconds`: stop after this
    much training time (the learning rate anneals to it), saving the steps done so far. An
    existing `out` (weights a subfigures table may be recorded against) is refused before any
    training unless `overwrite`.
    """
    if Path(out).exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (weights a `curate subfigures` run may be recorded against); "
                              "choose another --out, or pass --overwrite to replace it")
    import torch

    from biomedica.io.atomic import atomic_path
    from biomedica.models.device import check_device, pick_device

    device = pick_device(device)
    check_device(device)
    synthetic = synthetic or SyntheticConfig(max_side=config.figure_max_side)
    if callable(pool):
        make, pool_size = pool, 0
    else:
        pool_images = list(pool)
        pool_size = len(pool_images)

        def make(rng: random.Random) -> SyntheticFigure:
            return generate_figure(pool_images, rng, synthetic)

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = build_model(config).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def lr_at(step: int, elapsed: float) -> float:
        """Linear warm-up, then cosine to 5% over the steps or the time budget, whichever runs out first."""
        if step < config.warmup_steps:
            return config.lr * (step + 1) / config.warmup_steps
        done = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        if max_seconds:
            done = max(done, elapsed / max_seconds)
        return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, done))))

    losses: list[float] = []
    start = time.perf_counter()
    for step in range(config.steps):
        elapsed = time.perf_counter() - start
        if max_seconds and step and elapsed >= max_seconds:  # at least one step
            break
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, elapsed)
        batch = [_training_sample(make(rng), config, rng) for _ in range(config.batch_size)]
        tensors = [img.to(device) for img, _ in batch]
        targets = [{k: v.to(device) for k, v in t.items()} for _, t in batch]
        loss_parts = model(tensors, targets)
        loss = sum(loss_parts.values())
        if not torch.isfinite(loss):
            raise ValueError(f"training diverged at step {step + 1} (loss {loss.item()}); lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(float(loss.item()))
        if progress is not None:
            progress(step + 1, losses[-1])
    seconds = time.perf_counter() - start
    tail = losses[-max(1, len(losses) // 10):]
    report = TrainReport(out=Path(out), steps=len(losses), seed=seed, pool_size=pool_size, first_loss=losses[0],
                         final_loss=sum(tail) / len(tail), seconds=round(seconds, 2),
                         samples_per_s=round(len(losses) * config.batch_size / max(seconds, 1e-9), 2),
                         device=device, preset=config.name, losses=losses)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": WEIGHTS_FORMAT, "config": config.to_json(), "state_dict": state, "train": report.stored()}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(out)) as temporary:
        torch.save(payload, temporary)
    return report


# --- inference -----------------------------------------------------------------------------

def load_weights(weights: Path) -> tuple[DetectorConfig, dict, dict]:
    """(config, state dict, train info) of a weights file; one clear error naming the file otherwise."""
    import torch
    from pydantic import ValidationError

    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: subfigure detector weights not found; {TRAIN_HINT}")
    try:
        payload = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated, foreign or pickled-object file: one message
        raise ValueError(f"{weights}: not a readable subfigure detector weights file ({type(exc).__name__}); "
                         f"{TRAIN_HINT}") from None
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{weights}: not a subfigure detector (format {found!r}, expected {WEIGHTS_FORMAT!r}); "
                         f"{TRAIN_HINT}")
    try:
        config = DetectorConfig(**payload["config"])
    except (ValidationError, TypeError, KeyError) as exc:
        raise ValueError(f"{weights}: its detector config is not valid ({str(exc).splitlines()[0]}); {TRAIN_HINT}") from None
    return config, payload.get("state_dict") or {}, payload.get("train") or {}


class ModelDetector:
    """A trained FCOS panel detector (PanelDetector): boxes in the image's own pixels, score >= threshold, NMS'd."""

    name = "model"

    def __init__(self, weights: Path, device: str = "auto", score_threshold: float | None = None,
                 nms_iou: float | None = None):
        import torch

        from biomedica.models.device import check_device, pick_device

        self.weights = Path(weights)
        self.config, state, self.train_info = load_weights(self.weights)
        self.device = pick_device(device)
        check_device(self.device)
        self.score_threshold = self.config.score_threshold if score_threshold is None else float(score_threshold)
        self.nms_iou = self.config.nms_iou if nms_iou is None else float(nms_iou)
        model = build_model(self.config.model_copy(update={"backbone_weights": None}))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{self.weights}: its tensors do not fit the {self.config.backbone} FCOS it names "
                             f"({str(exc).splitlines()[0]}); {TRAIN_HINT}") from None
        self.model = model.to(self.device).eval()
        self._torch = torch

    def detect(self, image: Image.Image, expected_panels: int | None = None) -> list[Box]:
        return self.detect_batch([image], [expected_panels])[0]

    def detect_batch(self, images: Sequence[Image.Image],
                     expected_panels: Sequence[int | None] | None = None) -> list[list[Box]]:
        """Boxes for several images in one forward pass (a GPU's throughput).

        With a caption count hint K (PanelDetector), the K best boxes are kept when the boxes
        scoring at least HINT_SCORE_FLOOR x the threshold reach K (so a few just under the threshold
        may complete the count); otherwise the result is what it is without the hint. The hint
        picks among what the model saw, never adds a box it did not score.
        """
        from torchvision.ops import nms

        torch = self._torch
        tensors, scales, sizes = [], [], []
        for image in images:
            width, height = image.size  # no JPEG draft: it would shrink the caller's image in place
            resized, _, _ = _resize(image, self.config.input_size)
            tensors.append(_to_tensor(resized).to(self.device))
            scales.append((width / resized.width, height / resized.height))
            sizes.append((width, height))
        with torch.inference_mode():
            outputs = self.model(tensors)
        results = []
        hints = list(expected_panels) if expected_panels is not None else [None] * len(images)
        for output, (sx, sy), (width, height), hint in zip(outputs, scales, sizes, hints, strict=True):
            floor = self.score_threshold * (HINT_SCORE_FLOOR if hint and hint >= 2 else 1.0)
            keep = output["scores"] >= floor
            boxes, scores = output["boxes"][keep], output["scores"][keep]
            order = nms(boxes, scores, self.nms_iou)[: self.config.max_detections]  # by score, best first
            if hint and hint >= 2:
                confident = int((scores[order] >= self.score_threshold).sum())
                # the best K when the boxes (down to the floor) reach the caption's count, else as without a hint
                order = order[:hint] if len(order) >= hint else order[:confident]
            found = []
            for (x0, y0, x1, y1), score in zip(boxes[order].tolist(), scores[order].tolist()):
                box = Box(round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy),
                          float(score)).clipped(width, height)
                if box.area > 0:
                    found.append(box)
            results.append(found)
        return results


# --- evaluation ----------------------------------------------------------------------------

SCORE_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
NMS_GRID = (0.2, 0.3, 0.5)


def calibrate_thresholds(weights: Path, figures: Sequence[tuple], device: str = "auto") -> dict[str, Any]:
    """Pick the (score, NMS) pair with the best figure accuracy on `figures` and store it in `weights`.

    `figures`: (name, image, truth boxes, ...) as `evaluate.synthetic_figures` makes them, of the TRAINING
    pool with another seed, never the evaluation figures. Returns
    {"score_threshold", "nms_iou", "figure_accuracy", "figures"}; the weights file is rewritten atomically.
    """
    import torch

    from biomedica.curate.subfigures.metrics import figure_accuracy, figure_boxes
    from biomedica.io.atomic import atomic_path

    loose = ModelDetector(weights, device=device, score_threshold=min(SCORE_GRID), nms_iou=1.0)
    found = []
    for start in range(0, len(figures), 8):
        found += loose.detect_batch([f[1] for f in figures[start:start + 8]])
    truths = [figure_boxes(list(f[2]), *f[1].size) for f in figures]
    best: dict[str, Any] = {}
    for nms_iou in NMS_GRID:
        for score in SCORE_GRID:
            preds = [figure_boxes(_nms_boxes([b for b in boxes if b.score >= score], nms_iou), *f[1].size)
                     for boxes, f in zip(found, figures)]
            accuracy = figure_accuracy(preds, truths)
            if not best or accuracy > best["figure_accuracy"]:
                best = {"score_threshold": score, "nms_iou": nms_iou, "figure_accuracy": round(accuracy, 4),
                        "figures": len(figures)}
    payload = torch.load(Path(weights), map_location="cpu", weights_only=True)
    payload["config"] = {**payload["config"], "score_threshold": best["score_threshold"], "nms_iou": best["nms_iou"]}
    payload["calibration"] = best
    with atomic_path(Path(weights)) as temporary:
        torch.save(payload, temporary)
    return best


def _nms_boxes(boxes: list[Box], iou: float) -> list[Box]:
    """The boxes torchvision's NMS keeps (best score first), as ModelDetector applies it."""
    if not boxes:
        return []
    import torch
    from torchvision.ops import nms

    coords = torch.tensor([box.as_tuple() for box in boxes], dtype=torch.float32)
    keep = nms(coords, torch.tensor([box.score for box in boxes], dtype=torch.float32), iou)
    return [boxes[i] for i in keep.tolist()]


__all__ = [
    "WEIGHTS_FORMAT",
    "DetectorConfig",
    "ModelDetector",
    "TrainReport",
    "build_model",
    "calibrate_thresholds",
    "load_weights",
    "train_detector",
]
