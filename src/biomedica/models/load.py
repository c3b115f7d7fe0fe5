"""One `load_model(spec, device, precision)` for every stage, returning one `Model`.

A `Model` is an OpenCLIP model or an image-only timm model in eval mode on one device, with
its preprocess, tokenizer (None for timm), input side and a fingerprint that changes whenever
its weights, preprocessing or image decode may change (a cache key). Random weights are drawn
from their spec's seed in a forked RNG, on the CPU, so every stage builds the same model.
torch, open_clip and timm are imported here, when a model is loaded, never by the core.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from biomedica.models.configs import register_builtin_configs, register_model_config
from biomedica.models.decode import DECODE_RULE
from biomedica.models.device import check_device, pick_device, resolve_precision
from biomedica.models.hub import cache_only, offline_reason
from biomedica.models.spec import (
    MISSING_EXTRA,
    TINY_PREFIX,
    ModelFileNotFound,
    ModelLoadError,
    ModelSpec,
    no_text_tower,
    parse_model_spec,
)


@runtime_checkable
class ClipModel(Protocol):
    """What evaluation needs from a model: two encoders, a tokenizer, a preprocess and identity."""

    name: str
    fingerprint: str  # changes whenever the weights or preprocessing may change (cache key)
    preprocess: Callable[[Any], Any]  # PIL image -> CHW tensor
    tokenizer: Callable[[list[str]], Any] | None  # texts -> token tensor; None: no text tower

    def encode_image(self, images: Any) -> Any: ...

    def encode_text(self, tokens: Any) -> Any: ...  # a token tensor, or a list of texts to tokenise


def l2_normalise(array: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, 1e-12)


class Model:
    """A loaded model in eval mode on one device; mixed precision (see models.device) on CUDA."""

    def __init__(
        self, model, preprocess, tokenizer, name: str, fingerprint: str, device: str, precision: str = "auto",
        *, kind: str = "open_clip", image_size: int | None = None,
    ) -> None:
        self.model = model.eval().to(device)
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        self.fingerprint = fingerprint
        self.device = str(device)
        self.kind = kind
        self.image_size = image_size or _visual_size(model)
        self.precision = resolve_precision(precision, self.device)

    def _autocast(self):
        import torch

        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)

    def encode_image(self, images):
        """Image features (float32 tensor, not normalised) of a preprocessed batch."""
        import torch

        with torch.inference_mode(), self._autocast():
            batch = images.to(self.device, non_blocking=True)
            features = self.model(batch) if self.kind == "timm" else self.model.encode_image(batch)
            return features.float()

    def encode_text(self, tokens):
        """Text features (float32 tensor, not normalised) of a tokenised batch or of a list of texts (tokenised here).

        The one check of a text tower: an image-only model raises NoTextTower (a ModelLoadError and ValueError).
        """
        import torch

        if self.tokenizer is None:
            raise no_text_tower(self.name, "text embedding")
        if isinstance(tokens, (list, tuple)):
            tokens = self.tokenizer(list(tokens))
        with torch.inference_mode(), self._autocast():
            return self.model.encode_text(tokens.to(self.device, non_blocking=True)).float()

    def image_vectors(self, images: list) -> np.ndarray:
        """float32 [n, dim] L2-normalised embeddings of decoded RGB images."""
        import torch

        batch = torch.stack([self.preprocess(image) for image in images])
        return l2_normalise(self.encode_image(batch).cpu().numpy())

    def text_vectors(self, texts: list[str]) -> np.ndarray:
        """float32 [n, dim] L2-normalised embeddings of texts."""
        return l2_normalise(self.encode_text(list(texts)).cpu().numpy())


def _visual_size(model) -> int | None:
    size = getattr(getattr(model, "visual", None), "image_size", None)
    if size is None:
        return None
    return int(size[0] if isinstance(size, (tuple, list)) else size)


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Random initialisation from `seed`, leaving the caller's RNG state as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def _quiet(on: bool) -> Iterator[None]:
    """Mute open_clip's "initialized randomly" warning when random weights are the point."""
    root = logging.getLogger()
    level = root.level
    if on:
        root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _fingerprint(spec: ModelSpec) -> str:
    parts: dict[str, Any] = {"arch": spec.arch, "pretrained": spec.pretrained, "seed": spec.seed, "decode": DECODE_RULE}
    if spec.kind != "open_clip":
        parts["kind"] = spec.kind
    if spec.path is not None and spec.path.is_file():
        stat = spec.path.resolve().stat()
        parts["file"] = [str(spec.path.resolve()), stat.st_size, stat.st_mtime_ns]
    if spec.kind == "open_clip" and not spec.is_hub:  # a registered JSON may change under the same name
        import open_clip

        parts["config"] = open_clip.get_model_config(spec.arch)
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _missing(spec: ModelSpec, what: str) -> ModelFileNotFound:
    return ModelFileNotFound(
        f"{spec.path}: {what} file not found (a file named in a model spec is never downloaded); fix the path in {spec.text!r}"
    )


def _open_clip_model(spec: ModelSpec, offline: str | None):
    """(model, preprocess, tokenizer, None) of an OpenCLIP spec, built on the CPU (Model reads the side from model.visual)."""
    try:
        import open_clip
    except ImportError:
        raise ModelLoadError(MISSING_EXTRA) from None
    kwargs: dict[str, Any] = {}
    if not spec.is_hub:
        if spec.arch not in open_clip.list_models():
            raise ModelLoadError(f"unknown OpenCLIP architecture {spec.arch!r}{_closest(spec.arch, open_clip.list_models())}")
        if spec.is_path and not spec.path.is_file():
            raise _missing(spec, "checkpoint")
        tags = open_clip.list_pretrained_tags_by_model(spec.arch)
        if not spec.is_random and not spec.is_path and spec.pretrained not in tags:
            raise ModelLoadError(
                f"unknown pretrained tag {spec.pretrained!r} for {spec.arch}{_closest(spec.pretrained, tags)} "
                "(or give ARCH:/path/to/weights.pt, ARCH:random)"
            )
        kwargs["pretrained"] = None if spec.is_random else str(spec.path) if spec.is_path else spec.pretrained
    with cache_only(offline):
        try:
            with _quiet(spec.is_random), _seeded(spec.seed) if spec.is_random else nullcontext():
                model, _, preprocess = open_clip.create_model_and_transforms(spec.arch, device="cpu", **kwargs)
            tokenizer = open_clip.get_tokenizer(spec.arch)
        except Exception as exc:  # noqa: BLE001 - network, hub, pickle and shape errors all end here
            where = "the checkpoint" if spec.is_path else "the Hugging Face cache" if offline else "the Hugging Face Hub"
            raise ModelLoadError(
                f"could not load model {spec.text!r} from {where} ({type(exc).__name__}: {_first_line(exc)}); "
                + (f"{offline}: " if offline else "offline, ")
                + "download the weights elsewhere and pass ARCH:/path/to/weights (or fill the HF cache and set HF_HUB_OFFLINE=1)"
            ) from None
    return model, preprocess, tokenizer, None


def _closest(name: str, known: list[str]) -> str:
    """`; did you mean A, B?` from the names most like `name` (difflib), or the list's size when none is close."""
    import difflib

    by_lower = {k.lower(): k for k in known}  # ViT-B-16 for vit-b-16
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    if close:
        return "; did you mean " + ", ".join(by_lower[c] for c in close) + "?"
    return f" ({len(known)} known)"


def _timm_model(spec: ModelSpec, offline: str | None):
    """(model, preprocess, None, input side) of a timm spec: classifier head removed, image features out."""
    try:
        import timm
        import torch
    except ImportError:
        raise ModelLoadError(MISSING_EXTRA) from None
    if spec.is_path and not spec.path.is_file():
        raise _missing(spec, "timm weights")
    if not timm.is_model(spec.arch):
        raise ModelLoadError(f"unknown timm model {spec.arch!r}{_closest(spec.arch.partition('.')[0], timm.list_models())}")
    with cache_only(offline):
        try:
            with _seeded(spec.seed) if spec.is_random else nullcontext():
                model = timm.create_model(spec.arch, pretrained=spec.pretrained is None, num_classes=0)
        except Exception as exc:  # noqa: BLE001 - network and hub errors
            raise ModelLoadError(
                f"could not build timm model {spec.arch!r} ({type(exc).__name__}: {_first_line(exc)}); "
                + (f"{offline}; " if offline else "")
                + "pass local weights as timm:NAME:/path/to/weights"
            ) from None
    if spec.is_path:
        try:
            if spec.path.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(spec.path))
            else:
                state = torch.load(spec.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - pickle, zip and header errors all mean "not a weights file"
            raise ModelLoadError(f"{spec.path}: not a readable weights file ({type(exc).__name__}: {_first_line(exc)})") from None
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [m for m in missing if not m.startswith("head")]:
            raise ModelLoadError(
                f"{spec.path}: weights do not fit timm model {spec.arch!r} (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
    data_config = timm.data.resolve_data_config({}, model=model)
    return model, timm.data.create_transform(**data_config), None, int(data_config["input_size"][-1])


def load_model(
    spec: str | ModelSpec, device: str = "auto", precision: str = "auto", *, config_file: Path | None = None,
) -> Model:
    """Build the model a spec names (models.spec), after registering `config_file` (an architecture JSON).

    Any failure is a ModelLoadError whose message is one line saying what to do
    (ModelFileNotFound, also a FileNotFoundError, when a named file is missing).
    """
    spec = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
    if spec.kind == "timm" and config_file is not None:
        raise ModelLoadError(f"{config_file}: an OpenCLIP architecture JSON does not apply to timm model {spec.text!r}; drop it")
    offline = offline_reason(spec)  # before torch is imported: offline, a missing hub model fails in seconds
    device = pick_device(device)
    check_device(device)
    if spec.kind == "timm":
        model, preprocess, tokenizer, size = _timm_model(spec, offline)
    else:
        register_builtin_configs()
        if config_file is not None:
            register_model_config(config_file)
        model, preprocess, tokenizer, size = _open_clip_model(spec, offline)
    name = TINY_PREFIX + (f"@{spec.seed}" if spec.seed else "") if spec.text.startswith(TINY_PREFIX) else spec.text
    return Model(model, preprocess, tokenizer, name, _fingerprint(spec), device, precision, kind=spec.kind, image_size=size)
