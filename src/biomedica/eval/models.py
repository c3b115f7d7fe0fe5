"""CLIP-style models behind one small interface, and the loaders that build them with OpenCLIP.

Model specs (the `--model` option):
  tiny-random[@SEED]       a tiny ViT/text transformer with seeded random weights (tests, demo)
  ARCH:TAG                 an OpenCLIP architecture with a pretrained tag (e.g. ViT-B-16:laion2b_s34b_b88k)
  ARCH:/path/to/ckpt.pt    a local checkpoint (OpenCLIP, or `biomedica train` / open_clip_train output)
  ARCH:random              untrained weights (throughput timing only)
  hf-hub:ORG/NAME          a hub model such as BiomedCLIP or BMC-CLIP (needs network or a filled HF cache)
torch and open_clip are imported here, never by the core.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

TINY_ARCH = "biomedica-tiny"
TINY_PREFIX = "tiny-random"


class ModelLoadError(RuntimeError):
    """A model spec that cannot be loaded; the message is one line saying what to do."""


@runtime_checkable
class ClipModel(Protocol):
    """What evaluation needs from a model: two encoders, a tokenizer, a preprocess and identity."""

    name: str
    fingerprint: str  # changes whenever the weights or preprocessing may change (cache key)
    preprocess: Callable[[Any], Any]  # PIL image -> CHW tensor
    tokenizer: Callable[[list[str]], Any]  # texts -> token tensor

    def encode_image(self, images: Any) -> Any: ...

    def encode_text(self, tokens: Any) -> Any: ...


@dataclass(frozen=True)
class ModelSpec:
    """A parsed `--model` string."""

    text: str
    arch: str
    pretrained: str | None  # tag, path, "random", or None for hf-hub
    seed: int = 0

    @property
    def is_hub(self) -> bool:
        return self.arch.startswith("hf-hub:")

    @property
    def is_path(self) -> bool:
        return self.pretrained is not None and (Path(self.pretrained).expanduser().exists() or "/" in self.pretrained)


def parse_model_spec(text: str) -> ModelSpec:
    """Split a `--model` string into architecture, pretrained tag/path and seed (see module docstring)."""
    text = text.strip()
    if text == TINY_PREFIX or text.startswith(TINY_PREFIX + "@"):
        seed_text = text.partition("@")[2] or "0"
        if not seed_text.isdigit():
            raise ModelLoadError(f"bad seed in {text!r}; use tiny-random@<integer>")
        return ModelSpec(text, TINY_ARCH, "random", int(seed_text))
    if text.startswith("hf-hub:"):
        return ModelSpec(text, text, None)
    arch, sep, pretrained = text.partition(":")
    if not sep or not pretrained:
        raise ModelLoadError(
            f"model {text!r}: give ARCH:TAG, ARCH:/path/to/checkpoint.pt, hf-hub:ORG/NAME or tiny-random "
            "(`python -c 'import open_clip; print(open_clip.list_pretrained())'` lists tags)"
        )
    return ModelSpec(text, arch, pretrained)


def register_tiny_config() -> None:
    """Make the shipped tiny architecture known to OpenCLIP (idempotent)."""
    import open_clip

    if TINY_ARCH not in open_clip.list_models():
        open_clip.add_model_config(Path(str(resources.files("biomedica") / "models" / "configs")))


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


class OpenClipModel:
    """An OpenCLIP model in eval mode on one device; mixed precision (bf16, else fp16) on GPU."""

    def __init__(self, model, preprocess, tokenizer, name: str, fingerprint: str, device: str, precision: str) -> None:
        import torch

        self.model = model.eval().to(device)
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        self.fingerprint = fingerprint
        self.device = device
        if precision == "auto":
            precision = "fp32" if device == "cpu" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
        self.precision = precision
        self._dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def _autocast(self):
        import torch

        if self._dtype is None or self.device == "cpu":
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=self._dtype)

    def encode_image(self, images):
        import torch

        with torch.inference_mode(), self._autocast():
            return self.model.encode_image(images.to(self.device, non_blocking=True)).float()

    def encode_text(self, tokens):
        import torch

        with torch.inference_mode(), self._autocast():
            return self.model.encode_text(tokens.to(self.device, non_blocking=True)).float()


def _fingerprint(spec: ModelSpec) -> str:
    parts: dict[str, Any] = {"arch": spec.arch, "pretrained": spec.pretrained, "seed": spec.seed}
    if spec.pretrained and Path(spec.pretrained).expanduser().is_file():
        stat = Path(spec.pretrained).expanduser().resolve().stat()
        parts["file"] = [str(Path(spec.pretrained).expanduser().resolve()), stat.st_size, stat.st_mtime_ns]
    if spec.arch == TINY_ARCH:
        import open_clip

        parts["config"] = open_clip.get_model_config(TINY_ARCH)
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_model(text: str, device: str = "auto", precision: str = "auto") -> OpenClipModel:
    """Build the model a `--model` string names; ModelLoadError (one line) when it cannot be had."""
    try:
        import open_clip
        import torch
    except ImportError:
        raise ModelLoadError("evaluation needs torch and open-clip-torch: pip install 'biomedica[clip]'") from None
    spec = parse_model_spec(text)
    register_tiny_config()
    device = pick_device(device)
    if spec.is_hub:
        kwargs: dict[str, Any] = {}
    elif spec.pretrained == "random":
        if spec.arch not in open_clip.list_models():
            raise ModelLoadError(f"unknown OpenCLIP architecture {spec.arch!r}; see open_clip.list_models()")
        torch.manual_seed(spec.seed)
        kwargs = {"pretrained": None}
    else:
        if spec.arch not in open_clip.list_models():
            raise ModelLoadError(f"unknown OpenCLIP architecture {spec.arch!r}; see open_clip.list_models()")
        path = Path(spec.pretrained).expanduser()
        if spec.is_path and not path.is_file():
            raise ModelLoadError(f"checkpoint {path} not found")
        kwargs = {"pretrained": str(path) if path.is_file() else spec.pretrained}
    quiet = logging.getLogger()
    level = quiet.level
    if spec.pretrained == "random":  # open_clip warns "initialized randomly", which is the point here
        quiet.setLevel(logging.ERROR)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(spec.arch, device="cpu", **kwargs)
        tokenizer = open_clip.get_tokenizer(spec.arch)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - network, hub, pickle and shape errors all end here
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        where = "the Hugging Face Hub" if spec.is_hub or not spec.is_path else "the checkpoint"
        raise ModelLoadError(
            f"could not load model {text!r} from {where} ({type(exc).__name__}: {reason}); offline, download the "
            "weights elsewhere and pass ARCH:/path/to/weights (or fill the HF cache and set HF_HUB_OFFLINE=1)"
        ) from None
    finally:
        quiet.setLevel(level)
    name = "tiny-random" + (f"@{spec.seed}" if spec.seed else "") if spec.arch == TINY_ARCH else text
    return OpenClipModel(model, preprocess, tokenizer, name, _fingerprint(spec), device, precision)
