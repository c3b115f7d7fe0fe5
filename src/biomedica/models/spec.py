"""The one model spec every stage's `--model` takes, parsed without importing torch.

    tiny-random[@SEED]             the shipped tiny CLIP (biomedica-tiny) with seeded random weights (tests, demo)
    ARCH:TAG                       an OpenCLIP architecture with a pretrained tag (ViT-B-16:laion2b_s34b_b88k)
    ARCH:/path/to/weights.pt       an OpenCLIP architecture with a local checkpoint (.pt/.bin/.safetensors,
                                   `biomedica train` or open_clip_train output)
    ARCH:random[@SEED]             an OpenCLIP architecture with seeded random weights (timing, smoke runs)
    hf-hub:ORG/NAME                an OpenCLIP model on the Hugging Face Hub (BiomedCLIP, BMC-CLIP)
    timm:NAME                      an image-only timm model with timm's pretrained weights (hub or HF cache)
    timm:NAME:/path/to/weights     the same with local weights (.safetensors or a state-dict .pt/.pth)
    timm:NAME:random[@SEED]        the same with seeded random weights

The weights part is a path when it contains `/` (or `\\`), starts with `~`, names an existing
file or ends in a weights suffix; otherwise it is a tag. SEED defaults to 0, so a random model
is the same in every stage and every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TINY_ARCH = "biomedica-tiny"
TINY_PREFIX = "tiny-random"
RANDOM = "random"
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
MISSING_EXTRA = "models need torch and open-clip-torch: pip install 'biomedica[clip]'"
SPEC_HELP = "give ARCH:TAG, ARCH:/path/to/weights.pt, ARCH:random, hf-hub:ORG/NAME, timm:NAME[:/path/to/weights] or tiny-random"


class ModelLoadError(RuntimeError):
    """A model spec that cannot be loaded; the message is one line saying what to do."""


class ModelFileNotFound(ModelLoadError, FileNotFoundError):
    """A weights or architecture file named by a spec does not exist."""


class NoTextTower(ModelLoadError, ValueError):
    """An image-only (timm) model where text embeddings are needed (zero-shot, eval, captions)."""


def no_text_tower(model: str, needed_by: str) -> NoTextTower:
    """The one line for an image-only model given where text embeddings are needed."""
    return NoTextTower(
        f"{needed_by} needs a model with a text tower; {model!r} is an image-only timm model (no text tower): "
        "give an OpenCLIP spec (ARCH:TAG, ARCH:/path/to/weights.pt, hf-hub:ORG/NAME, tiny-random)"
    )


@dataclass(frozen=True)
class ModelSpec:
    """A parsed `--model` string."""

    text: str
    arch: str  # OpenCLIP architecture, `hf-hub:ORG/NAME`, or the timm model name
    pretrained: str | None  # tag, path, "random", or None (hf-hub; timm's own weights)
    seed: int = 0
    kind: Literal["open_clip", "timm"] = "open_clip"

    @property
    def is_hub(self) -> bool:
        return self.arch.startswith("hf-hub:")

    @property
    def is_random(self) -> bool:
        return self.pretrained == RANDOM

    @property
    def is_path(self) -> bool:
        return self.pretrained is not None and looks_like_path(self.pretrained)

    @property
    def path(self) -> Path | None:
        return Path(self.pretrained).expanduser() if self.is_path else None

    def openclip_args(self) -> tuple[str, str | None]:
        """(model, pretrained) as open_clip_train's `--model`/`--pretrained` take them (None: random init)."""
        if self.kind == "timm":
            raise ModelLoadError(f"model {self.text!r} is an image-only timm model; training needs an OpenCLIP spec ({SPEC_HELP})")
        if self.is_random:
            return self.arch, None
        return self.arch, str(self.path) if self.is_path else self.pretrained


def looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.startswith("~") or text.endswith(WEIGHT_SUFFIXES) or Path(text).expanduser().exists()


def _weights(text: str, weights: str) -> tuple[str, int]:
    """(pretrained, seed) of the part after the architecture: `random@SEED` carries a seed."""
    if weights == RANDOM or weights.startswith(RANDOM + "@"):
        seed_text = weights.partition("@")[2] or "0"
        if not seed_text.isdigit():
            raise ModelLoadError(f"bad seed in {text!r}; use {RANDOM}@<integer>")
        return RANDOM, int(seed_text)
    return weights, 0


def parse_model_spec(text: str) -> ModelSpec:
    """Split a `--model` string into architecture, weights and seed (grammar in the module docstring)."""
    text = text.strip()
    if text == TINY_PREFIX or text.startswith(TINY_PREFIX + "@"):
        pretrained, seed = _weights(text, RANDOM + text[len(TINY_PREFIX):])
        return ModelSpec(text, TINY_ARCH, pretrained, seed)
    if text.startswith("hf-hub:"):
        if not text.removeprefix("hf-hub:").strip("/"):
            raise ModelLoadError(f"model {text!r}: give hf-hub:ORG/NAME")
        return ModelSpec(text, text, None)
    if text.startswith("timm:"):
        name, sep, weights = text.removeprefix("timm:").partition(":")
        if not name or (sep and not weights):
            raise ModelLoadError(f"model {text!r}: give timm:NAME, timm:NAME:/path/to/weights or timm:NAME:random")
        pretrained, seed = _weights(text, weights) if weights else (None, 0)
        if pretrained not in (None, RANDOM) and not looks_like_path(pretrained):
            raise ModelLoadError(f"model {text!r}: timm weights are a file path or random; a timm tag goes in the name (timm:NAME.TAG)")
        return ModelSpec(text, name, pretrained, seed, "timm")
    arch, sep, weights = text.partition(":")
    if not arch or not sep or not weights:
        raise ModelLoadError(
            f"model {text!r}: {SPEC_HELP} (`python -c 'import open_clip; print(open_clip.list_pretrained())'` lists tags)"
        )
    pretrained, seed = _weights(text, weights)
    return ModelSpec(text, arch, pretrained, seed)


HUB_WEIGHTS = "hub"  # a recorded pair's pretrained for timm's own weights (the spec names none)


def recorded_pair(spec: ModelSpec) -> tuple[str, str | None]:
    """(model, pretrained): how curate embed's meta.json records a spec, the older two-field form.

    Two specs naming the same weights record the same pair; `spec_from_recorded` turns it back.
    """
    if spec.arch == TINY_ARCH or spec.is_hub:
        return spec.text, None
    model = f"timm:{spec.arch}" if spec.kind == "timm" else spec.arch
    if spec.is_random:  # a bare OpenCLIP ARCH means random weights; a bare timm:NAME means timm's own
        if spec.seed:
            return model, f"{RANDOM}@{spec.seed}"
        return model, RANDOM if spec.kind == "timm" else None
    return model, spec.pretrained or HUB_WEIGHTS


def spec_from_recorded(model: str, pretrained: str | None) -> str:
    """The spec of a (model, pretrained) pair: a bare ARCH without weights is ARCH:random, `hub` timm's own weights.

    Reads what `recorded_pair` writes (an embeddings folder's meta.json) and the older config form
    (`model: ViT-B-16`, `pretrained: /path.pt`); a model that already names its weights takes no pretrained.
    """
    timm_name = model.startswith("timm:") and model.count(":") == 1
    if pretrained is None:
        return model if ":" in model or model.startswith(TINY_PREFIX) else f"{model}:{RANDOM}"
    if (":" in model and not timm_name) or model.startswith(TINY_PREFIX):
        raise ValueError(f"model {model!r} already names its weights; drop pretrained {pretrained!r} (or give a bare ARCH)")
    if pretrained == HUB_WEIGHTS and timm_name:
        return model
    return f"{model}:{pretrained}"
