"""The one device picker and precision rule for model inference and training plans.

`auto` is the first CUDA GPU when torch sees one, else the CPU. Precision `auto` is fp32 off
CUDA and mixed bf16 (fp16 where the GPU lacks bf16) on CUDA. torch is imported only when a
choice needs it.
"""

from __future__ import annotations

import re

from biomedica.models.spec import MISSING_EXTRA, ModelLoadError

DEVICE_HELP = "use auto, cpu, cuda, cuda:N or mps"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _torch():
    try:
        import torch
    except ImportError:
        raise ModelLoadError(MISSING_EXTRA) from None
    return torch


def pick_device(requested: str = "auto") -> str:
    """The device `requested` names, `auto` resolved; a malformed name is a one-line ModelLoadError."""
    requested = requested.strip()
    if requested == "auto":
        return "cuda" if _torch().cuda.is_available() else "cpu"
    if requested in ("cpu", "mps") or re.fullmatch(r"cuda(:\d+)?", requested):
        return requested
    raise ModelLoadError(f"device {requested!r}: {DEVICE_HELP}")


def check_device(device: str) -> None:
    """Fail in one line when `device` is not usable here (checked before a model is loaded, not when planning)."""
    torch = _torch()
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ModelLoadError(f"device {device}: torch sees {torch.cuda.device_count()} CUDA GPU(s); use --device auto or cpu")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError("device mps: not available here; use --device auto or cpu")


def resolve_precision(precision: str, device: str) -> str:
    """fp32, bf16 or fp16 for inference on `device` (mixed precision applies on CUDA only)."""
    if precision not in PRECISIONS:
        raise ModelLoadError(f"precision {precision!r}: use {', '.join(PRECISIONS)}")
    if not device.startswith("cuda"):
        return "fp32"
    if precision == "auto":
        return "bf16" if _torch().cuda.is_bf16_supported() else "fp16"
    return precision
