"""Checkpoint files: read any OpenCLIP weights, WiSE-FT interpolation, export to an OpenCLIP folder.

Reads plain state dicts (`open_clip_pytorch_model.bin`, OpenCLIP pretrained files),
`open_clip_train` checkpoints (`{"epoch", "state_dict", "optimizer", ...}`, with or without
DDP's `module.` prefix) and `.safetensors`. Loading uses `weights_only=True`: a checkpoint is
data, never code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from biomedica.io.atomic import atomic_path
from biomedica.models.configs import register_builtin_configs as register_builtin_models  # noqa: F401 - train's name
from biomedica.models.configs import register_model_config
from biomedica.models.spec import ModelLoadError

WEIGHTS_NAME = "open_clip_pytorch_model.bin"
CONFIG_NAME = "open_clip_config.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked; the message names the file and the fix."""


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The model weights in `path`, keys without a DDP `module.` prefix."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - pickle, zip and format errors all mean "not a checkpoint"
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors (or a training checkpoint holding one)")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def save_state_dict(state: dict[str, torch.Tensor], path: Path) -> Path:
    """Write weights as `.safetensors` when the name says so, else `torch.save` (atomically)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in state.items()}, str(temporary))
        else:
            torch.save(state, temporary)
    return path


def wise_ft(base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """WiSE-FT weights `(1 - alpha) * base + alpha * tuned` (alpha 0: base exactly, 1: tuned exactly).

    Floating tensors are mixed in float32 and cast back to their dtype; integer buffers
    (e.g. position ids) must be equal and are copied.
    """
    if not 0.0 <= alpha <= 1.0:
        raise CheckpointError(f"alpha must be within [0, 1], got {alpha}")
    missing, extra = sorted(set(base) - set(tuned)), sorted(set(tuned) - set(base))
    if missing or extra:
        raise CheckpointError(
            f"the two checkpoints hold different parameters (only in the first: {missing[:3]}, only in the second: "
            f"{extra[:3]}); interpolate checkpoints of the same architecture"
        )
    merged = {}
    for name, a in base.items():
        b = tuned[name]
        if a.shape != b.shape:
            raise CheckpointError(f"parameter {name}: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
        if alpha == 0.0:
            merged[name] = a.clone()
        elif alpha == 1.0:
            merged[name] = b.clone()
        elif a.is_floating_point():
            merged[name] = ((1.0 - alpha) * a.float() + alpha * b.float()).to(a.dtype)
        else:
            if not torch.equal(a, b):
                raise CheckpointError(f"non-float buffer {name} differs between the checkpoints; cannot interpolate it")
            merged[name] = a.clone()
    return merged


def wise_ft_files(base: Path, tuned: Path, alpha: float, out: Path) -> Path:
    """Interpolate two checkpoint files into `out` (a plain state dict OpenCLIP loads as `pretrained`)."""
    return save_state_dict(wise_ft(load_state_dict(base), load_state_dict(tuned), alpha), out)


@dataclass
class ExportedModel:
    folder: Path
    weights: Path
    config: Path
    model_name: str


def export_model(checkpoint: Path, model_name: str, out_dir: Path, model_config_file: Path | None = None) -> ExportedModel:
    """Write an OpenCLIP model folder: weights + `open_clip_config.json` (model and preprocess config).

    Load it with `open_clip.create_model_and_transforms(model_name, pretrained=<folder>/open_clip_pytorch_model.bin)`
    or `open_clip.create_model_and_transforms("local-dir:<folder>")`; the weights are checked
    against the architecture before anything is written.
    """
    import open_clip

    if model_config_file is not None:
        try:
            register_model_config(model_config_file)
        except ModelLoadError as exc:
            raise CheckpointError(str(exc)) from None
    model_cfg = open_clip.get_model_config(model_name)
    if model_cfg is None:
        raise CheckpointError(
            f"unknown OpenCLIP architecture {model_name!r}; pass its JSON with --model-config (see open_clip.list_models())"
        )
    state = load_state_dict(checkpoint)
    model = open_clip.create_model(model_name, pretrained=None, device="cpu")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{checkpoint}: weights do not fit {model_name} ({first})") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = save_state_dict(state, out_dir / WEIGHTS_NAME)
    preprocess = getattr(model.visual, "preprocess_cfg", None) or {}
    config = out_dir / CONFIG_NAME
    config.write_text(
        json.dumps({"model_cfg": model_cfg, "preprocess_cfg": dict(preprocess), "model_name": model_name}, indent=2),
        encoding="utf-8",
    )
    return ExportedModel(out_dir, weights, config, model_name)
